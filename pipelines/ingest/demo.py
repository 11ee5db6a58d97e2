"""The ingestion step of ``encore demo``: a simulated hour of listening, end to end.

Inputs: the running platform (``encore demo`` has brought it up). Outputs: rows in
``bronze.play_events``, ``bronze.play_events_rejected`` and ``gold.trending_songs_realtime``,
Redis ``trending:v1:*`` and ``recent:v1:*`` keys, and a printed summary. Schedule: once, in
``encore demo``; about a minute or two on two cores (most of it the Flink job's start-up).

It starts what it needs and stops what it started: the ingestion job (unless one already
runs) and the registered ``api`` service, both through the supervisor. The hour is posted
through the API with the service token, re-sent duplicates included (a flaky client); a small
stream of malformed records goes straight to Kafka (a buggy producer bypassing the API, whose
422s would stop them) so the dead-letter table has something to show.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from encore import services
from encore.delta import delta_dataset, open_delta, read_lake_table
from encore.settings import Settings
from encore.tables import PLAY_EVENTS, PLAY_EVENTS_REJECTED, TRENDING_SONGS
from encore.tables import Table as LakeTable
from pipelines.ingest import control

console = Console(stderr=True)

DEMO_USERS = 20_000
DUPLICATES = 0.02
MALFORMED_DIRECT = 200


@contextlib.contextmanager
def running_api(settings: Settings) -> Iterator[str]:
    """The registered ``api`` service for the duration, in development mode; yields its URL.

    Development mode lets it start with the embedded platform's default secrets.
    """
    with services.running(settings, "api", env={"ENCORE_DEVELOPMENT": "true"}) as api:
        yield api.address(settings)


def table_rows(settings: Settings, table: LakeTable) -> int:
    """Rows in ``table``; 0 before anything was ingested."""
    delta = open_delta(settings, table)
    return delta_dataset(delta).count_rows() if delta else 0


def trending_top(
    settings: Settings, since: datetime, until: datetime, n: int = 10
) -> list[tuple[str, int]]:
    """Songs by plays over the closed windows starting in [since, until)."""
    import polars as pl

    frame = pl.from_arrow(read_lake_table(settings, TRENDING_SONGS))
    top = (
        frame.filter((pl.col("window_start") >= since) & (pl.col("window_start") < until))
        .group_by("song_id")
        .agg(pl.col("plays").sum())
        .sort(["plays", "song_id"], descending=[True, False])
        .head(n)
    )
    return [(row["song_id"], row["plays"]) for row in top.iter_rows(named=True)]


def run_demo_step(settings: Settings) -> None:
    """Stream a simulated hour through the API and the pipeline; print what landed."""
    from pipelines.simulation import (
        FaultStats,
        SimulationConfig,
        generate_events,
        inject_faults,
        post_to_api,
        send_to_kafka,
    )

    started = time.monotonic()
    bronze_before = table_rows(settings, PLAY_EVENTS)
    rejected_before = table_rows(settings, PLAY_EVENTS_REJECTED)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    config = SimulationConfig(seed=42, start=hour, duration=timedelta(hours=1), users=DEMO_USERS)
    events = list(generate_events(config, settings=settings))  # the catalog step loaded it
    stats = FaultStats()
    records = list(inject_faults(events, duplicates=DUPLICATES, seed=42, stats=stats))
    console.print(
        f"  simulated {hour:%Y-%m-%d %H:%M}-{hour + timedelta(hours=1):%H:%M} UTC: "
        f"{len(events):,} plays by {DEMO_USERS:,} listeners, {stats.duplicates} re-sent"
    )

    ours = control.running_pid(settings) is None
    if ours:
        control.start(settings)
        console.print("  started the ingestion job (Flink mini-cluster)")
    try:
        with running_api(settings) as base, Progress(console=console, transient=True) as bar:
            task = bar.add_task("posting to the API", total=len(records))
            sent = post_to_api(
                base,
                settings.api.service_token.get_secret_value(),
                records,
                batch_size=500,
                concurrency=2,
                progress=lambda n: bar.advance(task, n),
            )
        console.print(
            f"  API accepted {sent.sent:,} events in {sent.elapsed_s:.1f} s "
            f"({sent.events_per_s:,.0f}/s); {sent.failed} failed"
        )
        # a buggy producer writing straight to Kafka: the pipeline's dead-letter path
        broken = [
            record
            for record in inject_faults(events[:MALFORMED_DIRECT], malformed=1.0, seed=7)
            if record not in events[:MALFORMED_DIRECT]
        ]
        send_to_kafka(settings, broken)
        console.print(f"  sent {len(broken)} malformed records straight to Kafka")
        with console.status("  waiting for the pipeline to commit everything"):
            control.wait_until_caught_up(settings, timeout_s=300)
    finally:
        if ours:
            control.stop(settings)

    bronze = table_rows(settings, PLAY_EVENTS)
    rejected = table_rows(settings, PLAY_EVENTS_REJECTED)
    counts = Table("table", "rows", "added now")
    counts.add_row(PLAY_EVENTS.qualified_name, f"{bronze:,}", f"+{bronze - bronze_before:,}")
    counts.add_row(
        PLAY_EVENTS_REJECTED.qualified_name, f"{rejected:,}", f"+{rejected - rejected_before:,}"
    )
    Console().print(counts)
    top = Table("#", "song", "plays", title=f"trending since {hour:%H:%M} UTC (closed windows)")
    for rank, (song, plays) in enumerate(
        trending_top(settings, hour, hour + timedelta(hours=1)), start=1
    ):
        top.add_row(str(rank), song, str(plays))
    Console().print(top)
    import redis

    from encore.keys import read_current_trending, trending_key

    client = redis.Redis.from_url(settings.redis.effective_url)
    live = read_current_trending(client, "US", n=5)
    console.print(
        f"  Redis {trending_key('US')} (current window): "
        + (", ".join(f"{song} ({plays})" for song, plays in live) or "-")
    )
    console.print(f"  ingestion step took {time.monotonic() - started:.0f} s")
