"""The simulator's targets against real Kafka and a real ``encore api`` server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from encore import services
from encore.events import PlayEventV1
from encore.settings import Settings, settings_env
from pipelines.simulation import (
    FaultStats,
    SimulationConfig,
    generate_events,
    inject_faults,
    post_to_api,
    send_to_kafka,
)
from tests.conftest import free_port
from tests.streaming_api.conftest import create_topic, with_topic

pytestmark = pytest.mark.integration

CONFIG = SimulationConfig(seed=5, users=400, artists=100, duration=timedelta(hours=3))
ENCORE = str(Path(sys.executable).parent / "encore")


# the API refuses its default secrets outside development mode
DEVELOPMENT = {"ENCORE_DEVELOPMENT": "true"}


def with_api_port(settings: Settings) -> Settings:
    """``settings`` with the API on a free port of its own."""
    return settings.model_copy(
        update={"api": settings.api.model_copy(update={"port": free_port()})}
    )


def fresh_topic(platform: Settings) -> Settings:
    topic = f"test-sim-{uuid.uuid4().hex[:8]}"
    create_topic(platform, topic)
    return with_topic(platform, topic)


@pytest.fixture()
def fresh(platform: Settings) -> Settings:
    return fresh_topic(platform)


@pytest.fixture(scope="module")
def served(platform: Settings) -> Iterator[tuple[Settings, str]]:
    """An ``encore api`` server writing to a topic of this module, and its URL."""
    settings = with_api_port(fresh_topic(platform))
    with services.running(settings, "api", instance="api-sending", env=DEVELOPMENT) as api:
        yield settings, api.address(settings)


def read_n(settings: Settings, count: int, timeout_s: float = 30) -> list:
    """The first ``count`` records of the test's topic (fails if fewer arrive)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        settings.kafka.play_events_topic,
        bootstrap_servers=settings.kafka.servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    records, deadline = [], time.monotonic() + timeout_s
    try:
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
    finally:
        consumer.close()
    assert len(records) >= count, f"{len(records)} of {count} records within {timeout_s} s"
    return records


def test_send_to_kafka_delivers_every_record_keyed_by_user(fresh: Settings) -> None:
    events = list(generate_events(CONFIG))
    stats = FaultStats()
    records = list(inject_faults(events, duplicates=0.05, malformed=0.05, seed=2, stats=stats))
    report = send_to_kafka(fresh, records, faults=stats)
    assert report.sent == len(records) and report.failed == 0
    assert (report.duplicates, report.malformed) == (stats.duplicates, stats.malformed)

    on_topic = read_n(fresh, len(records))
    assert sorted(r.value for r in on_topic) == sorted(
        r if isinstance(r, bytes) else json.dumps(r, separators=(",", ":")).encode()
        for r in records
    )
    valid = {e["event_id"]: e for e in events}
    seen = set()
    for record in on_topic:
        try:
            parsed = PlayEventV1.model_validate_json(record.value)
        except ValueError:
            continue
        event_id = str(parsed.event_id)
        if event_id in valid:
            seen.add(event_id)
            assert record.key == parsed.user_id.encode()
            assert record.value == parsed.to_json_bytes()
            assert parsed.to_record() == valid[event_id]
    assert seen == set(valid)


def test_post_to_api_counts_malformed_as_rejected(served: tuple[Settings, str]) -> None:
    fresh, api_url = served
    events = list(generate_events(CONFIG))
    stats = FaultStats()
    records = inject_faults(events, duplicates=0.05, malformed=0.03, seed=4, stats=stats)
    token = fresh.api.service_token.get_secret_value()
    report = post_to_api(api_url, token, records, batch_size=200, concurrency=2, faults=stats)
    assert report.failed == 0, report.errors
    assert report.rejected == stats.malformed > 0
    assert report.sent == len(events) + stats.duplicates
    on_topic = read_n(fresh, report.sent)
    ids = [str(PlayEventV1.model_validate_json(r.value).event_id) for r in on_topic]
    assert sorted(set(ids)) == sorted(e["event_id"] for e in events)
    assert len(ids) == len(events) + stats.duplicates


def test_post_to_api_reports_a_wrong_token(served: tuple[Settings, str]) -> None:
    _, api_url = served
    events = list(generate_events(SimulationConfig(users=50, max_events=10)))
    report = post_to_api(api_url, "not-the-token", events, batch_size=5, concurrency=1)
    assert report.sent == 0 and report.failed == 10
    assert "401" in report.errors[0]


def test_encore_simulate_to_kafka(fresh: Settings) -> None:
    done = subprocess.run(
        [ENCORE, "simulate", "--target", "kafka", "--users", "200", "--duration", "30m",
         "--seed", "9", "--duplicates", "0.1", "--malformed", "0.1"],
        env={**os.environ, **settings_env(fresh)},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for label in ("duplicates re-sent", "malformed added", "sent (acknowledged)", "events/s"):
        assert label in done.stdout


def test_post_to_api_retries_503_then_reports_failure(platform: Settings) -> None:
    broken = platform.model_copy(
        update={
            "kafka": platform.kafka.model_copy(
                update={"bootstrap_servers": f"localhost:{free_port()}"}
            ),
            "api": platform.api.model_copy(update={"produce_timeout_ms": 1000}),
        }
    )
    broken = with_api_port(broken)
    with services.running(broken, "api", instance="api-broken-kafka", env=DEVELOPMENT) as api:
        events = list(generate_events(SimulationConfig(users=50, max_events=10)))
        token = broken.api.service_token.get_secret_value()
        report = post_to_api(
            api.address(broken), token, events, batch_size=10, concurrency=1, max_retries=2
        )
    assert (report.sent, report.failed, report.retries, report.requests) == (0, 10, 2, 3)
    assert "HTTP 503" in report.errors[0]
