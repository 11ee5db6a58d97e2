"""Fixtures for the ingestion tests: an isolated job (own topic, lake, Redis db, state folder)
on the session's real platform, stopped after each test."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from encore import services
from encore.delta import delta_dataset
from encore.settings import Settings
from pipelines.ingest import control

_redis_dbs = itertools.count(1)


@pytest.fixture()
def ingest_settings(platform: Settings, tmp_path: Path) -> Iterator[Settings]:
    """The platform's services, but this test's own topic, lake, Redis db and job state.

    ``home`` holds only the job's pid file, logs and checkpoints; the services keep running
    from the platform's home (stop/start Kafka with ``platform``, not these settings).
    """
    home = tmp_path / "home"
    home.mkdir()
    topic = f"play-events-{uuid.uuid4().hex[:8]}"
    settings = platform.model_copy(
        update={
            "home": home,
            "kafka": platform.kafka.model_copy(
                update={"play_events_topic": topic, "play_events_partitions": 3}
            ),
            "redis": platform.redis.model_copy(
                update={"url": f"redis://localhost:{platform.redis.port}/{next(_redis_dbs)}"}
            ),
            "lake": platform.lake.model_copy(update={"root": str(tmp_path / "lake")}),
            "flink": platform.flink.model_copy(update={"checkpoint_interval_ms": 1000}),
        }
    )
    services.ensure_topics(settings)
    try:
        yield settings
    finally:
        control.stop(settings, timeout_s=10)


def produce(settings: Settings, records: list[tuple[str, bytes]], rate: float = 0) -> None:
    """Send (key, value) records to the play-events topic; ``rate`` > 0 paces them (per s)."""
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka.servers,
        acks="all",
        linger_ms=5,
        retries=10,
        reconnect_backoff_max_ms=2000,
    )
    started = time.monotonic()
    try:
        for i, (key, value) in enumerate(records):
            producer.send(settings.kafka.play_events_topic, key=key.encode(), value=value)
            if rate and i % 200 == 0:
                ahead = started + i / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        producer.flush()
    finally:
        producer.close()


def wait_for(
    check: Callable[[], Any],
    what: str,
    timeout_s: float = 180,
    interval_s: float = 0.25,
    tolerate: tuple[type[BaseException], ...] = (),
) -> Any:
    """Poll ``check`` until it returns something truthy and return that; fail naming ``what``.
    Exceptions of the ``tolerate`` types count as "not yet" (a table the job has not made)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = check()
        except tolerate:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:.0f} s: {what}")
        time.sleep(interval_s)


def wait_for_rows(settings: Settings, minimum: int, timeout_s: float = 120) -> int:
    """Block until bronze holds at least ``minimum`` rows; returns the count."""
    from deltalake import DeltaTable

    from encore.tables import PLAY_EVENTS

    def enough_rows() -> int | None:
        count = delta_dataset(DeltaTable(PLAY_EVENTS.path(settings))).count_rows()
        return count if count >= minimum else None

    # the job creates the table when it opens: an error reading it means "not yet"
    return wait_for(
        enough_rows, f"bronze to hold {minimum} rows", timeout_s, 0.5, tolerate=(Exception,)
    )
