"""Exactly-once proof of the ingestion job against real Kafka, Flink, Delta and Redis.

Each test sends valid events with byte-identical duplicates and malformed records mixed in,
and checks that bronze holds exactly the unique valid events (same ids, same count), the
rejected table every malformed record with its reason, and Redis counted each play once:
undisturbed, with the job SIGKILLed mid-stream and restarted, and with Kafka stopped and
restarted mid-stream.
"""

from __future__ import annotations

import threading
import time

import pytest
import redis

from encore import services
from encore.delta import read_lake_table
from encore.engines import create_spark_session
from encore.keys import TRENDING_PREFIX, offsets_key
from encore.settings import Settings
from encore.tables import PLAY_EVENTS, PLAY_EVENTS_REJECTED
from pipelines.ingest import control
from tests.pipelines.ingest.conftest import produce, wait_for, wait_for_rows
from tests.pipelines.ingest.crashing import commit_lines
from tests.pipelines.ingest.producing import mixed_records

pytestmark = [pytest.mark.integration, pytest.mark.flink, pytest.mark.slow]


def assert_exact(settings: Settings, unique_ids: set[str], reasons: list[str]) -> None:
    control.wait_until_caught_up(settings, timeout_s=180)
    bronze = read_lake_table(settings, PLAY_EVENTS, ["event_id", "kafka_partition", "kafka_offset"])
    ids = bronze.column("event_id").to_pylist()
    assert len(ids) == len(unique_ids), f"{len(ids) - len(set(ids))} duplicate rows in bronze"
    assert set(ids) == unique_ids
    rejected = read_lake_table(settings, PLAY_EVENTS_REJECTED)
    assert rejected.num_rows == len(reasons)
    stored = sorted(rejected.column("reason").to_pylist())
    for fragment in set(reasons):
        expected = reasons.count(fragment)
        assert sum(fragment in reason for reason in stored) >= expected, fragment
    assert set(rejected.column("topic").to_pylist()) == {settings.kafka.play_events_topic}
    # Redis applied each play exactly once: the per-window counts add up to the events
    client = redis.Redis.from_url(settings.redis.effective_url)
    deadline = time.monotonic() + 30
    while True:
        total = sum(
            sum(score for _, score in client.zrange(key, 0, -1, withscores=True))
            for key in client.scan_iter(f"{TRENDING_PREFIX}:*:*")
        )
        if total == len(unique_ids) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert total == len(unique_ids)
    # Redis recorded, per partition, exactly the last bronze offset it applied
    last_bronze: dict[bytes, bytes] = {}
    for partition, offset in zip(
        bronze.column("kafka_partition").to_pylist(),
        bronze.column("kafka_offset").to_pylist(),
        strict=True,
    ):
        key = str(partition).encode()
        last_bronze[key] = str(max(offset, int(last_bronze.get(key, -1)))).encode()
    assert client.hgetall(offsets_key(settings.kafka.play_events_topic)) == last_bronze


@pytest.mark.spark
def test_duplicates_and_malformed_are_handled_exactly_once(ingest_settings: Settings) -> None:
    records, unique_ids, reasons = mixed_records(8000, 800, 300, seed=11)
    produce(ingest_settings, records)
    control.start(ingest_settings)
    assert_exact(ingest_settings, unique_ids, reasons)
    control.stop(ingest_settings)  # free the cores for Spark
    # the same table, read back by Spark (delta-spark) in the core environment
    spark = create_spark_session(ingest_settings, "test-ingest-readback")
    try:
        frame = spark.read.format("delta").load(PLAY_EVENTS.path(ingest_settings))
        assert {f.name: f.dataType for f in frame.schema} == {
            f.name: f.dataType for f in PLAY_EVENTS.spark_schema()
        }
        assert frame.count() == len(unique_ids)
        assert {row.event_id for row in frame.select("event_id").collect()} == unique_ids
        assert frame.where("event_date IS NULL OR kafka_offset < 0").count() == 0
    finally:
        spark.stop()


def kill_mid_stream_and_restart(settings: Settings, records: list[tuple[str, bytes]]) -> None:
    """Half the records queued, the job started; the other half flowing at 2,000/s while the
    job is SIGKILLed once a checkpoint of this run exists, then restarted from it."""
    half = len(records) // 2
    produce(settings, records[:half])
    control.start(settings)
    wait_for_rows(settings, 2000)
    # keep the stream flowing while the job dies, then bring it back
    sender = threading.Thread(
        target=produce, args=(settings, records[half:]), kwargs={"rate": 2000}
    )
    sender.start()
    # kill only once a checkpoint of this run exists (what "mid-stream" needs: a restore
    # point behind the stream), never on a timer
    wait_for(lambda: control.latest_checkpoint(settings), "a checkpoint of this run", 120)
    assert control.stop(settings, kill=True)
    checkpoint = control.latest_checkpoint(settings)
    assert (checkpoint / "_metadata").is_file()
    # the restart restores exactly that checkpoint (not the Delta offsets fallback)
    command = control.job_command(settings)
    assert command[command.index("--restore") + 1] == checkpoint.as_uri()
    control.start(settings)
    sender.join()


def test_job_killed_mid_stream_and_restarted_is_still_exact(ingest_settings: Settings) -> None:
    records, unique_ids, reasons = mixed_records(12000, 1200, 300, seed=12)
    kill_mid_stream_and_restart(ingest_settings, records)
    assert_exact(ingest_settings, unique_ids, reasons)


def test_kafka_restarted_mid_stream_is_still_exact(
    platform: Settings, ingest_settings: Settings
) -> None:
    records, unique_ids, reasons = mixed_records(8000, 800, 200, seed=13)
    half = len(records) // 2
    produce(ingest_settings, records[:half])
    control.start(ingest_settings)
    wait_for_rows(ingest_settings, 1000)
    services.down(platform, ["kafka"])
    time.sleep(3)
    services.up(platform, ["kafka"])
    produce(ingest_settings, records[half:])
    assert_exact(ingest_settings, unique_ids, reasons)
    assert control.status(ingest_settings).running  # the job rode out the outage


def test_two_lanes_commit_side_by_side_and_survive_a_kill(ingest_settings: Settings) -> None:
    """``ingest_parallelism=2``: two sink subtasks, each owning whole partitions (3 partitions:
    lane 0 holds 0 and 2, lane 1 holds 1), append to the same bronze and rejected tables
    concurrently, and a kill mid-stream restores both lanes' state exactly."""
    settings = ingest_settings.model_copy(
        update={"flink": ingest_settings.flink.model_copy(update={"ingest_parallelism": 2})}
    )
    records, unique_ids, reasons = mixed_records(12000, 1200, 300, seed=14)
    kill_mid_stream_and_restart(settings, records)
    assert_exact(settings, unique_ids, reasons)

    # both lanes committed bronze, each only its own partitions
    partitions_by_lane: dict[int, set[int]] = {}
    for entry in commit_lines(settings):
        if entry.get("sink") == "bronze" and entry["rows"]:
            lane_partitions = partitions_by_lane.setdefault(entry["lane"], set())
            lane_partitions.update(int(p) for p in entry["offsets"])
    assert partitions_by_lane == {0: {0, 2}, 1: {1}}
