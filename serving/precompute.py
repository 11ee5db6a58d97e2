"""Precomputed top lists of the active listeners, in Redis (issue 11, item 8).

Inputs: ``silver.plays`` (who listened in the last ``serving.recs_active_days`` days, counted
back from the newest day the table holds, so an old demo lake still has active listeners)
and the registered model behind an alias (``serving.model_name`` at ``serving.model_alias``
unless told otherwise), loaded as the service loads it (:class:`serving.bundle.ModelBundle`).

Outputs: one ``recs:v1:<model>:<user>`` key per active listener the alias serves (their A/B
variant, :func:`serving.experiments.assign_variant`) and the model knows (the key contract,
:func:`encore.keys.write_recs`): the version's top ``serving.recs_top_n`` unplayed songs, the
version named in the value, with a TTL of ``serving.recs_ttl_s``. The service serves such a
list (blended with the listener's last minutes) instead of searching the index per request,
when the version in it is the one serving the listener. A rerun writes the same lists to the
same keys (and resets their TTL); a new version simply overwrites them. Listeners no longer
active keep theirs until it expires.

Why by variant: the key names the registered model, not the alias, and in an A/B test the
champion and the challenger are two versions of one model. Each listener has one variant, so
each alias writes its own listeners' keys and neither run overwrites the other's lists.

Schedule: daily after the lake build and after each promotion, ``encore recs precompute``
(once per alias of ``serving.ab_split`` during an A/B test).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import typer

from encore.delta import read_lake_table
from encore.errors import NotFoundError, ServiceError
from encore.keys import PrecomputedRecs, write_recs
from encore.settings import Settings
from encore.tables import SILVER_PLAYS

if TYPE_CHECKING:
    from serving.bundle import ModelBundle

CHUNK = 1000
"""Listeners per FAISS batch and per Redis round-trip (one pipeline of SETs)."""

Progress = Callable[[int, int], None]
"""Called with (listeners done, listeners to do) after each chunk."""


@dataclass(frozen=True)
class PrecomputeResult:
    model: str
    version: str
    alias: str
    listeners: int
    """Active listeners in ``silver.plays``."""
    served: int
    """Of those, the ones whose A/B variant is ``alias`` (all of them without a test)."""
    written: int
    """Lists written: the served listeners the model knows."""
    seconds: float

    @property
    def unknown_to_model(self) -> int:
        """Served listeners the version was not trained on (the service cold-starts them)."""
        return self.served - self.written


def active_listeners(settings: Settings) -> list[str]:
    """Listeners with a play in the last ``recs_active_days`` days of ``silver.plays``, sorted.

    "Today" is the newest day the table holds, not the clock's: a lake built from old
    (demo, replayed) events still has active listeners.

    Raises:
        NotFoundError: ``silver.plays`` holds no play (nothing built yet).
    """
    days = read_lake_table(settings, SILVER_PLAYS, columns=["event_date"]).column("event_date")
    if len(days) == 0:
        raise NotFoundError(
            f"{SILVER_PLAYS.qualified_name} holds no plays at {SILVER_PLAYS.path(settings)}, "
            "so no listener is active: build the lake first (encore lake build)"
        )
    newest: date = max(days.unique().to_pylist())
    since = newest - timedelta(days=settings.serving.recs_active_days - 1)
    users = read_lake_table(
        settings, SILVER_PLAYS, columns=["user_id"], filters=[("event_date", ">=", since)]
    ).column("user_id")
    return sorted(str(u) for u in users.unique().to_pylist())


def write_lists(
    client: Any,
    bundle: ModelBundle,
    user_ids: Iterable[str],
    *,
    top_n: int,
    ttl_s: int,
    created_at: datetime | None = None,
    progress: Progress | None = None,
) -> int:
    """Write ``bundle``'s top ``top_n`` list of each listener it knows under
    ``recs:v1:<bundle.name>:<user>``, ``CHUNK`` listeners per search and per pipeline;
    how many were written.
    """
    users = [u for u in user_ids if bundle.knows_user(u)]
    created_at = created_at or datetime.now(UTC)
    written = 0
    for start in range(0, len(users), CHUNK):
        lists = bundle.recommend_many(users[start : start + CHUNK], top_n)
        with client.pipeline(transaction=False) as pipe:
            for user, songs in lists.items():
                recs = PrecomputedRecs(bundle.version, created_at, songs)
                write_recs(pipe, bundle.name, user, recs, ttl_s)
            pipe.execute()
        written += len(lists)
        if progress:
            progress(min(start + CHUNK, len(users)), len(users))
    return written


def served_by(settings: Settings, alias: str, user_ids: Iterable[str]) -> list[str]:
    """The listeners among ``user_ids`` whose A/B variant is ``alias``."""
    from serving.experiments import assign_variant

    return [u for u in user_ids if assign_variant(settings, u) == alias]


def load_serving_bundle(settings: Settings, model_alias: str | None = None) -> ModelBundle:
    """The version ``serving.model_name`` has at ``model_alias`` (default: the serving
    alias), loaded with its index.

    Raises:
        ServiceError: the tracking server cannot be reached.
        NotFoundError: the alias names no version, or it could not be loaded.
    """
    from models.registry import registry_client
    from models.tracking import require as require_tracking_server
    from serving.bundle import ModelHolder

    serving = settings.serving
    alias = model_alias or serving.model_alias
    require_tracking_server(settings.mlflow.effective_tracking_uri)
    # the process-wide tracking and registry URIs: a models:/ download resolves through
    # them, and a fresh process (a scheduled task) has MLflow's local default otherwise
    registry_client(settings.mlflow.effective_tracking_uri)
    holder = ModelHolder(settings, alias=alias)
    holder.refresh()
    if holder.current is None:
        raise NotFoundError(
            f"registered model {serving.model_name} has no loadable version at alias "
            f"{alias} on {settings.mlflow.effective_tracking_uri} (train and promote one)"
        )
    return holder.current


def precompute_lists(
    settings: Settings, *, model_alias: str | None = None, progress: Progress | None = None
) -> PrecomputeResult:
    """Write the top lists of the active listeners ``model_alias`` serves (default: the
    serving alias) for the version it names.

    Raises:
        NotFoundError: no plays in ``silver.plays``, or no loadable version at the alias.
        ServiceError: MLflow or Redis cannot be reached.
    """
    import redis

    started = time.perf_counter()
    serving = settings.serving
    alias = model_alias or serving.model_alias
    listeners = active_listeners(settings)
    served = served_by(settings, alias, listeners)
    bundle = load_serving_bundle(settings, alias)
    try:
        with redis.Redis.from_url(settings.redis.effective_url) as client:
            written = write_lists(
                client,
                bundle,
                served,
                top_n=serving.recs_top_n,
                ttl_s=serving.recs_ttl_s,
                progress=progress,
            )
    except redis.RedisError as error:
        raise ServiceError("redis", f"writing the recs:v1 lists failed: {error}") from error
    seconds = time.perf_counter() - started
    return PrecomputeResult(
        bundle.name, bundle.version, alias, len(listeners), len(served), written, seconds
    )


def register_recs_commands(app: typer.Typer) -> None:
    """Add ``encore recs precompute`` to ``app``."""
    recs_app = typer.Typer(help="Precomputed recommendation lists in Redis.", no_args_is_help=True)

    @recs_app.command("precompute")
    def precompute_command(
        alias: str | None = typer.Option(
            None, "--alias", help="Model alias to precompute for (default: serving.model_alias)."
        ),
    ) -> None:
        """Write to Redis the top lists of the listeners active in the last days that the
        alias serves (all of them, or its A/B variant's)."""
        from rich.console import Console
        from rich.markup import escape
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        from encore.errors import EncoreError
        from encore.settings import get_settings

        console = Console(stderr=True)
        columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        try:
            with Progress(*columns, console=console, transient=True) as bar:
                task = bar.add_task("precomputing lists", total=None)

                def report(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                result = precompute_lists(get_settings(), model_alias=alias, progress=report)
        except EncoreError as error:
            console.print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)
            raise typer.Exit(code=1) from None
        variants = (
            f", {result.served:,} of them served by {result.alias}"
            if result.served != result.listeners
            else ""
        )
        typer.echo(
            f"recs:v1:{result.model}: {result.written:,} lists of version {result.version} "
            f"({result.alias}) written for {result.listeners:,} active listeners{variants} "
            f"({result.unknown_to_model:,} unknown to the model) in {result.seconds:.1f} s"
        )

    app.add_typer(recs_app, name="recs")
