"""The simulator's targets against real Kafka and a real ``encore api`` server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from encore import services
from encore.events import PlayEventInvalid, PlayEventV1, validate_play_event_json
from encore.settings import EventsSettings, Settings, settings_env
from pipelines.simulation import (
    FaultStats,
    SimulationConfig,
    generate_events,
    inject_faults,
    post_to_api,
    send_to_kafka,
)
from streaming_api.catalog.load import load_catalog
from tests.conftest import free_port, fresh_database
from tests.pipelines.simulation.catalogs import synthetic_catalog
from tests.streaming_api.conftest import create_topic, with_topic
from tests.topics import read_all

pytestmark = pytest.mark.integration

# the last few hours: the API's contract bounds how old an event may be
RECENT = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)
CONFIG = SimulationConfig(seed=5, users=400, start=RECENT, duration=timedelta(hours=3))
CATALOG = synthetic_catalog(artists=100)
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


@pytest.fixture(scope="module")
def with_catalog(platform: Settings) -> Settings:
    """A database of this module's own, holding a small catalog for ``encore simulate``."""
    settings = fresh_database(platform, "simulation_sending")
    load_catalog(settings, artists=100, songs_per_artist=10, seed=1)
    return settings


@pytest.fixture()
def fresh(with_catalog: Settings) -> Settings:
    return fresh_topic(with_catalog)


@pytest.fixture(scope="module")
def served(platform: Settings) -> Iterator[tuple[Settings, str]]:
    """An ``encore api`` server writing to a topic of this module, and its URL."""
    settings = with_api_port(fresh_topic(platform))
    with services.running(settings, "api", instance="api-sending", env=DEVELOPMENT) as api:
        yield settings, api.address(settings)


def encoded(record: bytes | dict) -> bytes:
    return (
        record if isinstance(record, bytes) else json.dumps(record, separators=(",", ":")).encode()
    )


def test_send_to_kafka_delivers_every_record_keyed_by_user(fresh: Settings) -> None:
    events = list(generate_events(CONFIG, CATALOG))
    stats = FaultStats()
    records = list(inject_faults(events, duplicates=0.05, malformed=0.05, seed=2, stats=stats))
    report = send_to_kafka(fresh, records, faults=stats)
    assert report.sent == len(records) and report.failed == 0
    assert (report.duplicates, report.malformed) == (stats.duplicates, stats.malformed)

    on_topic = read_all(fresh)
    assert sorted(r.value for r in on_topic) == sorted(encoded(r) for r in records)
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
    events = list(generate_events(CONFIG, CATALOG))
    stats = FaultStats()
    records = list(inject_faults(events, duplicates=0.05, malformed=0.03, seed=4, stats=stats))
    # what the contract refuses, decided here record by record, not taken from the stats
    refused = [r for r in records if not follows_contract(r)]
    assert len(refused) == stats.malformed and len(stats.malformed_kinds) >= 5
    token = fresh.api.service_token.get_secret_value()
    report = post_to_api(api_url, token, records, batch_size=200, concurrency=2, faults=stats)
    assert report.failed == 0, report.errors
    assert report.rejected == len(refused)
    assert report.sent == len(records) - len(refused) == len(events) + stats.duplicates
    on_topic = read_all(fresh)
    ids = [str(PlayEventV1.model_validate_json(r.value).event_id) for r in on_topic]
    assert sorted(ids) == sorted(r["event_id"] for r in records if follows_contract(r))


def test_post_to_api_reports_a_wrong_token(served: tuple[Settings, str]) -> None:
    _, api_url = served
    events = list(
        generate_events(SimulationConfig(users=500, start=RECENT, max_events=10), CATALOG)
    )
    report = post_to_api(api_url, "not-the-token", events, batch_size=5, concurrency=1)
    assert report.sent == 0 and report.failed == 10
    assert "401" in report.errors[0]


def follows_contract(record: bytes | dict) -> bool:
    """Whether the one validator the API and the job share accepts ``record`` now."""
    try:
        validate_play_event_json(encoded(record), datetime.now(UTC), EventsSettings())
    except PlayEventInvalid:
        return False
    return True


def summary(stdout: str) -> dict[str, str]:
    """The rows of ``encore simulate``'s summary table, label -> value."""
    rows = (line.strip().strip("│").split("│") for line in stdout.splitlines())
    return {row[0].strip(): row[1].strip() for row in rows if len(row) == 2}


def test_encore_simulate_to_kafka(fresh: Settings) -> None:
    done = subprocess.run(
        [ENCORE, "simulate", "--target", "kafka", "--users", "1000", "--duration", "30m",
         "--seed", "9", "--duplicates", "0.1", "--malformed", "0.1",
         "--start", SimulationConfig().start.isoformat()],
        env={**os.environ, **settings_env(fresh)},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # the same run through the library: what the command must have sent and reported
    stats = FaultStats()
    config = SimulationConfig(seed=9, users=1000, duration=timedelta(minutes=30))
    events = generate_events(config, settings=fresh)  # the catalog the command read
    records = list(inject_faults(events, 0.1, 0.1, seed=9, stats=stats))
    numbers = {
        label: int(value.replace(",", ""))
        for label, value in summary(done.stdout).items()
        if value.replace(",", "").isdigit()
    }
    assert numbers.pop("events/s") >= 1, done.stdout  # the rest must match exactly
    assert numbers == {
        "valid events": stats.valid,
        "duplicates re-sent": stats.duplicates,
        "malformed added": stats.malformed,
        "sent (acknowledged)": len(records),
        "rejected by API (422)": 0,
        "failed": 0,
        "retries": 0,
    }, done.stdout
    on_topic = read_all(fresh)
    assert sorted(r.value for r in on_topic) == sorted(encoded(r) for r in records)


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
        events = list(
            generate_events(SimulationConfig(users=500, start=RECENT, max_events=10), CATALOG)
        )
        token = broken.api.service_token.get_secret_value()
        report = post_to_api(
            api.address(broken), token, events, batch_size=10, concurrency=1, max_retries=2
        )
    assert (report.sent, report.failed, report.retries, report.requests) == (0, 10, 2, 3)
    assert "HTTP 503" in report.errors[0]
