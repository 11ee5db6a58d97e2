"""The recommendation step of ``encore demo``: the loop closed, from the lake to a listener.

Inputs: the lake the earlier steps built (bronze -> silver -> gold -> features) and the
running platform. Outputs: an ALS model trained on the lake's ``training.interactions`` and
registered as the serving model (with its FAISS index), precomputed lists in Redis, the
``serving`` service up for the step, and printed: one listener's for-you list, then a few
plays of one genre posted through the listener API, carried by the ingestion job into Redis,
and the list again, changed by the session. Schedule: once, in ``encore demo``, after the
recommenders' step; a minute or two (the ingestion job's start-up is most of it).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
from rich.console import Console

from encore import keys, services
from encore.errors import EncoreError
from encore.settings import Settings

console = Console(stderr=True)

SESSION_PLAYS = 6
ALS_PARAMS = {"factors": 32, "iterations": 10}


def demo_step(settings: Settings) -> None:
    from models.training import train
    from pipelines.ingest import control
    from serving.precompute import precompute_lists

    trained = train(
        settings,
        "als",
        "lake",
        params=ALS_PARAMS,  # type: ignore[arg-type]
        registered_name=settings.serving.model_name,
        report=lambda m: console.print(f"  {m}"),
    )
    registered = trained.registered
    if registered is not None and not registered.promoted:
        # an ENCORE_HOME from earlier runs may hold a champion of another catalogue, which
        # the registry rightly never replaces by itself; the demo serves what it just built
        _promote(settings, registered.name, registered.version)
    _train_ranker(settings)
    listed = precompute_lists(settings)
    console.print(
        f"  precomputed lists: {listed.written} listeners ({listed.model} v{listed.version})"
    )
    ours = control.running_pid(settings) is None
    if ours:
        control.start(settings)
    dev = {"ENCORE_DEVELOPMENT": "true"}
    try:
        with (
            services.running(settings, "api", env=dev) as api,
            services.running(settings, "serving", env=dev) as serving,
        ):
            _loop(settings, api.address(settings), serving.address(settings))
    finally:
        if ours:
            control.stop(settings)


def _promote(settings: Settings, name: str, version: str) -> None:
    from mlflow import MlflowClient

    uri = settings.mlflow.effective_tracking_uri
    MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(
        name, settings.serving.model_alias, version
    )
    console.print(f"  the demo serves {name} v{version}: alias {settings.serving.model_alias} set")


def _train_ranker(settings: Settings) -> None:
    from models.ranker_training import train_ranker_on_lake

    try:
        trained = train_ranker_on_lake(settings, fit_to_lake=True)
    except EncoreError as error:  # a young lake has too few days for a time split
        console.print(f"  ranker: not trained ({error}); the service keeps the candidate order")
        return
    metrics, reg = trained.metrics, trained.registered
    alone, ranked = metrics["candidates"], metrics["ranker"]
    console.print(
        f"  ranker: NDCG@10 {alone['ndcg@10']:.3f} (candidate model alone) -> "
        f"{ranked['ndcg@10']:.3f}, recall@50 {alone['recall@50']:.3f} -> "
        f"{ranked['recall@50']:.3f} on {ranked['queries']} test requests"
        + (f"; registered {reg.name} v{reg.version}" if reg else "")
    )


def _loop(settings: Settings, api: str, serving: str) -> None:
    token = settings.api.service_token.get_secret_value()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=30) as client:
        user, country = _most_active_listener(settings)
        if user is None:
            console.print("  no listener in the lake: nothing to recommend")
            return
        before = _for_you(client, serving, user)
        _print(f"for-you of listener {user}", before)
        genre = _genre_to_play(before)
        songs = [
            item["song_id"]
            for item in _trending_or_popular(client, serving, genre)
            if item["genre"] == genre
        ][:SESSION_PLAYS]
        if not songs:
            console.print(f"  no {genre} song to play")
            return
        variant = before.get("variant")
        events = _plays(user, country, songs, variant)
        posted = client.post(f"{api}/api/v1/playback-events", json={"events": events})
        posted.raise_for_status()
        console.print(
            f"  posted {len(events)} plays of {genre} for {user} "
            f"(variant {variant}) through the listener API"
        )
        seen = _wait_for_session(settings, user, {e["event_id"] for e in events})
        console.print(f"  the ingestion job wrote them to Redis recent:v1 in {seen:.1f} s")
        after = _for_you(client, serving, user)
        _print("for-you again", after)
        count = lambda body: sum(i["genre"] == genre for i in body["items"][:10])  # noqa: E731
        console.print(
            f"  {genre} in the top 10: {count(before)} before the session, {count(after)} after"
        )


def _for_you(client: httpx.Client, serving: str, user: str) -> dict:
    answer = client.get(
        f"{serving}/api/v1/recommendations/for-you", params={"user_id": user, "limit": 10}
    )
    answer.raise_for_status()
    return answer.json()


def _trending_or_popular(client: httpx.Client, serving: str, genre: str) -> list[dict]:
    # the genre's popular songs come with a genre request for a newcomer
    answer = client.get(
        f"{serving}/api/v1/recommendations/for-you",
        params={"user_id": f"demo-newcomer-{uuid.uuid4().hex[:6]}", "genre": genre, "limit": 20},
    )
    answer.raise_for_status()
    return answer.json()["items"]


def _genre_to_play(body: dict) -> str:
    """A genre the list has little of, so the session's effect shows."""
    counts = Counter(item["genre"] for item in body["items"])
    for genre in ("jazz", "classical", "folk", "metal", "blues", "reggae", "country"):
        if counts[genre] == 0:
            return genre
    return min(counts, key=counts.get)


def _print(title: str, body: dict) -> None:
    model = body.get("model") or {}
    console.print(
        f"  {title} (variant {body.get('variant')}, model {model.get('name')} "
        f"v{model.get('version')}, ranker {body.get('ranker')}, degraded {body['degraded']}):"
    )
    for rank, item in enumerate(body["items"], start=1):
        console.print(
            f"    {rank:2d}. {item['song_id']:<14} {item['genre']:<12} {item['artist_id']:<14} "
            f"{'+'.join(item['sources'])}"
        )


def _most_active_listener(settings: Settings) -> tuple[str | None, str]:
    """The listener with most plays in the training table, and their country."""
    import polars as pl

    from encore.delta import read_lake_table
    from encore.tables import DIM_USERS, TRAINING_INTERACTIONS

    rows = pl.from_arrow(read_lake_table(settings, TRAINING_INTERACTIONS, ["user_id", "plays"]))
    if rows.is_empty():
        return None, "US"
    top = rows.group_by("user_id").agg(pl.col("plays").sum()).sort(["plays", "user_id"])
    user = str(top["user_id"][-1])
    users = pl.from_arrow(read_lake_table(settings, DIM_USERS, ["user_id", "country"]))
    country = users.filter(pl.col("user_id") == user)["country"].to_list()
    return user, (country[0] if country and country[0] else "US")


def _plays(user: str, country: str, songs: list[str], variant: str | None) -> list[dict]:
    start = datetime.now(UTC) - timedelta(minutes=len(songs) * 4)
    events = []
    for index, song_id in enumerate(songs):
        begin = start + timedelta(minutes=4 * index)
        event = {
            "event_id": str(uuid.uuid4()),
            "user_id": user,
            "song_id": song_id,
            "event_type": "complete",
            "start_time": begin.isoformat(),
            "end_time": (begin + timedelta(minutes=3)).isoformat(),
            "ms_played": 180_000,
            "device_type": "mobile",
            "country_code": country,
        }
        if variant:
            event["variant"] = variant
        events.append(event)
    return events


def _wait_for_session(
    settings: Settings, user: str, event_ids: set[str], timeout_s: float = 120
) -> float:
    """Seconds until every posted play is in ``recent:v1:<user>`` (the job's write)."""
    import redis

    client = redis.Redis.from_url(settings.redis.effective_url)
    started = time.monotonic()
    with contextlib.closing(client):
        while time.monotonic() - started < timeout_s:
            seen = {p.event_id for p in keys.read_recent_plays(client, user, 50)}
            if event_ids <= seen:
                return time.monotonic() - started
            time.sleep(0.5)
    raise EncoreError(f"the ingestion job did not write the plays to Redis within {timeout_s} s")
