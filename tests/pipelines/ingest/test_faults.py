"""The crash-point injector's parsing and decisions, without Flink: checkpoints are folders
laid out as Flink writes them, the kill is recorded instead of sent."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from pipelines.ingest.faults import (
    FaultInjector,
    checkpoint_source_offsets,
    completed_checkpoints,
    parse_fault,
)

TOPIC = "play-events-abc"


def split_state(topic: str, partition: int, offset: int) -> bytes:
    """One Kafka split as Flink's KafkaPartitionSplitSerializer writes it."""
    name = topic.encode()
    return struct.pack(">H", len(name)) + name + struct.pack(">iqq", partition, offset, -(2**63))


def write_checkpoint(root: Path, number: int, positions: dict[int, int] | None = None) -> Path:
    folder = root / "job-a" / f"chk-{number}"
    folder.mkdir(parents=True)
    # other bytes around the splits, and the topic named where no split follows (as the
    # enumerator's state does: topic, partition, an int status)
    body = b"\x00\x01metadata" + struct.pack(">H", len(TOPIC)) + TOPIC.encode() + b"\0" * 8
    # the enumerator's splits as first assigned: the "earliest offset" sentinel (-2)
    for partition in positions or {}:
        body += split_state(TOPIC, partition, -2)
    for partition, offset in (positions or {}).items():
        body += b"state-handle" + split_state(TOPIC, partition, offset)
    body += split_state("another-topic", 0, 999)
    (folder / "_metadata").write_bytes(body)
    return folder


class Recorder:
    def __init__(self) -> None:
        self.kills = 0

    def __call__(self) -> None:
        self.kills += 1


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("", ("", 1)),
        ("after_redis", ("after_redis", 1)),
        ("after_checkpoint:3", ("after_checkpoint", 3)),
        (" after_delta_commit:12 ", ("after_delta_commit", 12)),
    ],
)
def test_parse_fault(spec: str, parsed: tuple[str, int]) -> None:
    assert parse_fault(spec) == parsed


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("after_lunch", "unknown fault point"),
        ("after_redis:", "positive integer"),
        ("after_redis:x", "positive integer"),
        ("after_redis:-1", "positive integer"),
        ("after_redis:0", "count from 1"),
        (":2", "names no point"),
    ],
)
def test_parse_fault_refuses(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_fault(spec)


def test_completed_checkpoints_need_their_metadata(tmp_path: Path) -> None:
    done = write_checkpoint(tmp_path, 4)
    (tmp_path / "job-a" / "chk-5").mkdir()  # in progress: no _metadata yet
    (tmp_path / "job-a" / "shared").mkdir()
    assert completed_checkpoints(tmp_path) == {4: done}
    assert completed_checkpoints(tmp_path / "missing") == {}


def test_checkpoint_source_offsets_reads_the_kafka_splits(tmp_path: Path) -> None:
    checkpoint = write_checkpoint(tmp_path, 1, {0: 120, 1: 0, 2: 2**40})
    assert checkpoint_source_offsets(checkpoint, TOPIC) == {0: 120, 1: 0, 2: 2**40}
    assert checkpoint_source_offsets(checkpoint, "another-topic") == {0: 999}
    assert checkpoint_source_offsets(checkpoint, "play-events") == {}


def test_no_fault_never_kills(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, 1)
    recorder = Recorder()
    faults = FaultInjector("", tmp_path, TOPIC, kill=recorder)
    for _ in range(3):
        faults.batch_started([0], [1])
        for point in ("after_redis", "after_delta_commit", "batch_committed"):
            faults.reached(point)
    assert recorder.kills == 0


@pytest.mark.parametrize("point", ["after_redis", "after_delta_commit"])
def test_point_waits_for_its_batch_and_a_checkpoint_of_this_run(tmp_path: Path, point: str) -> None:
    write_checkpoint(tmp_path, 7)  # restored from: not one of this run
    recorder = Recorder()
    faults = FaultInjector(f"{point}:2", tmp_path, TOPIC, kill=recorder)

    def batch() -> None:
        faults.batch_started()
        faults.reached("after_redis")
        faults.reached("after_delta_commit")
        faults.reached("batch_committed")

    batch()
    batch()  # the second batch, but no checkpoint of this run yet
    assert recorder.kills == 0
    (tmp_path / "job-b" / "chk-8").mkdir(parents=True)
    batch()  # chk-8 is in progress only
    assert recorder.kills == 0
    (tmp_path / "job-b" / "chk-8" / "_metadata").write_bytes(b"")
    faults.batch_started()
    other = "after_delta_commit" if point == "after_redis" else "after_redis"
    faults.reached(other)
    assert recorder.kills == 0
    faults.reached(point)
    assert recorder.kills == 1
    assert faults.batches == 4


def test_after_checkpoint_dies_only_for_rows_pending_in_it(tmp_path: Path) -> None:
    recorder = Recorder()
    faults = FaultInjector("after_checkpoint", tmp_path, TOPIC, kill=recorder)
    faults.batch_started([0, 1], [5, 3])  # no checkpoint yet
    faults.reached("after_redis")
    faults.reached("after_delta_commit")
    faults.reached("batch_committed")
    write_checkpoint(tmp_path, 1, {0: 20, 1: 9})
    # read after the barrier (offsets at or past the position): not in the checkpoint
    faults.batch_started([0, 0, 1], [20, 21, 9])
    faults.reached("after_redis")
    faults.reached("after_delta_commit")
    assert recorder.kills == 0
    faults.reached("batch_committed")
    faults.batch_started([1, 0, 1], [8, 22, 9])  # partition 1's offset 8 was pending
    assert recorder.kills == 1


def test_after_checkpoint_without_offsets_guesses_from_the_last_commit(tmp_path: Path) -> None:
    recorder = Recorder()
    faults = FaultInjector("after_checkpoint", tmp_path, kill=recorder)
    write_checkpoint(tmp_path, 1)
    faults.batch_started()  # a checkpoint of this run completed since the last commit
    assert recorder.kills == 1
    recorder.kills = 0
    faults = FaultInjector("after_checkpoint", tmp_path, kill=recorder)  # restored chk-1
    faults.batch_started()
    (tmp_path / "job-a" / "chk-2").mkdir()
    (tmp_path / "job-a" / "chk-2" / "_metadata").write_bytes(b"")
    faults.reached("batch_committed")  # chk-2 completed before this commit
    faults.batch_started()
    assert recorder.kills == 0
