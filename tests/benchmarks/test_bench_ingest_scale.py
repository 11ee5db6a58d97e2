"""benchmarks/bench_ingest_scale.py: the generated events against the contract, the Flink log
parsing and the per-minute summary, and the whole benchmark at a tiny size (a subprocess:
it starts its own Kafka, Redis and ingestion job)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from encore.events import PlayEventV1
from pipelines.ingest.parse import parse_record
from streaming_api.playback import encode_event

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_ingest_scale as scale  # noqa: E402
from simulated_events import simulated_events  # noqa: E402


@pytest.fixture(scope="module")
def template() -> list[scale.TemplateEvent]:
    return [scale.template_event(e) for e in simulated_events(300, seed=5, days=1)]


def test_copies_are_valid_distinct_events_in_the_apis_bytes(template):
    span = timedelta(hours=24)
    first = datetime.now(UTC) - span - timedelta(hours=1)
    prefix = scale.run_prefix()
    count = 1000  # more than the template: every template event is copied
    values = list(scale.event_values(template, count, first, span, prefix))
    now = datetime.now(UTC)

    events = []
    for index, (key, value) in enumerate(values):
        parsed = parse_record(value, now)
        assert parsed.reason is None, (value, parsed.reason)
        event = PlayEventV1.model_validate_json(value)
        assert encode_event(event) == value  # what the API would have put on Kafka
        assert key == event.user_id.encode()
        assert str(event.event_id) == f"{prefix}-{index:012d}"
        copied = template[index % len(template)]
        assert (event.end_time - event.start_time) // timedelta(
            microseconds=1
        ) == copied.duration_us
        events.append(event)
    starts = [event.start_time for event in events]
    assert starts == sorted(starts)
    assert first <= starts[0] and starts[-1] < first + span
    assert starts[-1] - starts[0] > span * 0.99
    assert len({event.event_id for event in events}) == count
    assert str(events[0].event_id)[14] == "4"  # still a version-4 UUID


def test_times_are_formatted_as_pydantic_does():
    moment = datetime(2026, 11, 30, 20, 0, 3, tzinfo=UTC)
    as_json = TypeAdapter(datetime).dump_json
    for micros in (0, 495_000, 7):
        value = moment + timedelta(microseconds=micros)
        epoch_us = int(moment.timestamp()) * 1_000_000 + micros
        assert f'"{scale.iso_utc(epoch_us)}"'.encode() == as_json(value)


def test_completed_checkpoint_lines_are_parsed():
    line = (
        "2026-12-01 21:17:19,336 INFO  org.apache.flink.runtime.checkpoint.CheckpointCoordinator"
        "    [] - Completed checkpoint 5 for job 012ea6899d02a6deb80a51b9cb290ed8 (2016463 "
        "bytes, checkpointDuration=1414 ms, finalizationTime=13 ms)."
    )
    parsed = scale.parse_checkpoint_line(line)
    assert parsed is not None
    assert (parsed["id"], parsed["bytes"], parsed["duration_ms"]) == (5, 2016463, 1414)
    assert parsed["at"] == datetime(2026, 12, 1, 21, 17, 19, 336_000).timestamp()
    assert scale.parse_checkpoint_line(line.replace("Completed", "Triggering")) is None


def test_per_minute_rates_and_state():
    def point(t, produced, committed, jvm_cpu):
        return {
            "t": t,
            "phase": "drain",
            "produced": produced,
            "committed": committed,
            "group_lag": produced - committed,
            "recent_ids": committed,
            "rss_mb": {"kafka": 400.0 + t},
            "cpu_s": {"jvm": jvm_cpu},
        }

    series = [point(5, 1000, 0, 1), point(55, 1000, 500, 41), point(115, 1000, 1000, 71)]
    series[0]["phase"] = "load"
    batch = {"received": 500, "kept": 500, "ms": 10, "parse_ms": 4, "redis_ms": 2}
    batches = [{"t": 30, **batch}, {"t": 100, **batch, "ms": 20}]
    commits = [{"t": 31, "rows": 500, "ms": 4, "version": 1}]
    checkpoints = [{"id": 1, "t": 50, "bytes": 10, "duration_ms": 3}]

    first, second = scale.per_minute(series, batches, commits, checkpoints)

    assert (first["phase"], second["phase"]) == ("load+drain", "drain")
    assert first["committed_per_s"] == round(500 / 55)
    assert second["committed_per_s"] == round(500 / 60)
    assert first["cpu_percent"] == {"jvm": 80} and second["cpu_percent"] == {"jvm": 50}
    assert (first["batches"], first["mean_batch"], first["mean_batch_ms"]["ms"]) == (1, 500, 10)
    assert second["mean_batch_ms"]["ms"] == 20
    assert (first["bronze_commits"], first["mean_commit_rows"]) == (1, 500)
    assert (second["bronze_commits"], second["mean_commit_rows"]) == (0, 0)
    assert (first["checkpoints"], first["last_checkpoint_bytes"]) == (1, 10)
    assert second["checkpoints"] == 0 and second["last_checkpoint_bytes"] is None
    assert first["rss_mb"] == {"kafka": 455.0} and second["group_lag"] == 0


def test_both_commit_log_shapes_are_read():
    at = "2026-12-01T21:00:10.000+00:00"
    started = datetime.fromisoformat(at).timestamp() - 10
    figures = {"received": 9, "ms": 5.0, "parse_ms": 2.0, "redis_ms": 1.0, "at": at}
    # one line per micro-batch, which is also its bronze commit
    batch, commit = scale.read_commit_line(
        {"sink": "bronze", "rows": 8, "delta_ms": 3.0, "version": 4, **figures}, started
    )
    assert batch == {"t": 10.0, "received": 9, "kept": 8, "ms": 5.0, "parse_ms": 2.0,
                     "redis_ms": 1.0}  # fmt: skip
    assert commit == {"t": 10.0, "rows": 8, "ms": 3.0, "version": 4}
    # a line per micro-batch, and one per bronze commit gathering several
    batch, commit = scale.read_commit_line({"sink": "batch", "kept": 8, **figures}, started)
    assert batch["kept"] == 8 and commit is None
    batch, commit = scale.read_commit_line(
        {"sink": "bronze", "rows": 80, "batches": 10, "ms": 30.0, "version": 5, "at": at},
        started,
    )
    assert batch is None and commit == {"t": 10.0, "rows": 80, "ms": 30.0, "version": 5}


@pytest.mark.flink
@pytest.mark.slow
def test_a_tiny_run_fills_bronze_with_exactly_the_events(tmp_path):
    out = tmp_path / "ingest_scale.json"
    command = [sys.executable, "benchmarks/bench_ingest_scale.py", "--events", "20000"]
    command += ["--template", "500", "--sample-s", "2", "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    check = result["verification"]
    assert check["exact"] and check["rows"] == check["distinct_ids"] == 20000, check
    assert check["rejected_rows"] == 0 and check["bronze_files"] > 0
    assert result["producer"]["events"] == 20000 and not result["producer"]["errors"]
    assert result["job"]["rows"] == 20000 and result["job"]["duplicates"] == 0
    assert result["job"]["bronze_commits"] >= 1 and result["job"]["batches"] >= 1
    assert result["checkpoints"] and all(c["bytes"] > 0 for c in result["checkpoints"])
    assert result["samples"][-1]["group_lag"] == 0
    jvm = scale.COMPONENT_NAMES["flink jvm"]
    assert max(p["rss_mb"].get(jvm, 0) for p in result["samples"]) > 100
    assert {p["phase"] for p in result["samples"]} >= {"load", "drain"}
    assert result["minutes"] and len(result["load_avg_after"]) == 3
