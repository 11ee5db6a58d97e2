"""Crash points on purpose: the ingestion job kills itself where exactly-once is hardest.

Off by default; tests set ``settings.flink.fault`` (``ENCORE_FLINK__FAULT``) to
``<point>[:<batch>]`` and the sink calls :meth:`FaultInjector.reached` at each point of every
bronze micro-batch. At the chosen point of the ``<batch>``-th bronze batch (1 by default) or
the first one after it where the point applies, the whole job's process group gets SIGKILL,
like a machine losing power: no ``finally`` runs, nothing is flushed. A test then restarts the
job (``control.start`` restores the newest retained checkpoint) without the fault and checks
that the replay converged to exactly once.

A point applies only once a checkpoint of this run has completed: a crash before the first
one would test the restart from Delta's offsets (``control.resume_offsets``), not the
restore from a checkpoint.

Points (the three crash windows of docs/ingestion.md "How exactly-once works"):

- ``after_delta_commit``: the bronze batch is committed to Delta (and Redis), the next
  checkpoint has not completed: the restore replays rows Delta and Redis already hold, which
  both must skip.
- ``after_checkpoint``: a checkpoint completed while rows of this batch were still pending in
  Flink state, and the job dies before writing them: the restore must bring them back from
  the checkpoint (nothing lost). Given the batch's Kafka partitions and offsets (and the
  topic), "pending" is exact: some record lies below the checkpoint's Kafka source position
  (:func:`checkpoint_source_offsets`). Without them it is a guess: a checkpoint completed
  since the last bronze commit, which misses when that checkpoint's barrier passed the sink
  before the previous batch (the rows pending in it were that batch's, already written).
- ``after_redis``: the Redis transaction of the batch is applied, its Delta commit is not:
  the replay must skip the rows in Redis and write them to Delta.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import struct
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

POINTS = ("after_delta_commit", "after_checkpoint", "after_redis")

_CHECKPOINT = re.compile(r"chk-(\d+)$")
# Flink's Kafka source stores each split as writeUTF(topic), int partition, long next offset,
# long stopping offset (Long.MIN_VALUE for an unbounded stream): KafkaPartitionSplitSerializer
_NO_STOPPING_OFFSET = struct.pack(">q", -(2**63))


def parse_fault(spec: str) -> tuple[str, int]:
    """``"<point>[:<batch>]"`` as (point, batch); ``("", 1)`` for no fault."""
    point, colon, nth = spec.strip().partition(":")
    if not point:
        if colon:
            raise ValueError(f"fault {spec!r} names no point; expected one of {POINTS}")
        return "", 1
    if point not in POINTS:
        raise ValueError(f"unknown fault point {point!r}; expected one of {POINTS}")
    if colon and not nth.isdigit():
        raise ValueError(f"fault {spec!r}: the batch after ':' must be a positive integer")
    batch = int(nth) if colon else 1
    if batch < 1:
        raise ValueError(f"fault {spec!r}: batches count from 1")
    return point, batch


def completed_checkpoints(checkpoints: Path) -> dict[int, Path]:
    """Number -> folder of every completed checkpoint (a ``chk-N`` with ``_metadata``)."""
    found = {}
    for metadata in checkpoints.glob("*/chk-*/_metadata"):
        if match := _CHECKPOINT.search(metadata.parent.name):
            found[int(match.group(1))] = metadata.parent
    return found


def checkpoint_source_offsets(checkpoint: Path, topic: str) -> dict[int, int]:
    """Partition -> the next Kafka offset the checkpoint's source would read (its position).

    Read from the Kafka source reader's split state inside ``_metadata`` (small operator
    state is stored inline). Records below these offsets were read before the checkpoint's barrier:
    after a restore they come only from Flink state, never from Kafka again.
    """
    data = (checkpoint / "_metadata").read_bytes()
    name = topic.encode()
    prefix = struct.pack(">H", len(name)) + name
    offsets: dict[int, int] = {}
    start = data.find(prefix)
    while start >= 0:
        body = start + len(prefix)
        if data[body + 12 : body + 20] == _NO_STOPPING_OFFSET:
            partition, offset = struct.unpack(">iq", data[body : body + 12])
            # the enumerator keeps each split as first assigned, its offset a negative
            # sentinel (earliest, latest, committed); the reader's state holds the position
            if offset >= 0:
                offsets[partition] = max(offset, offsets.get(partition, 0))
        start = data.find(prefix, start + 1)
    return offsets


class FaultInjector:
    """Kills the job at the configured point; a no-op when ``spec`` is empty."""

    def __init__(
        self,
        spec: str,
        checkpoints: Path,
        topic: str = "",
        kill: Callable[[], None] | None = None,
    ) -> None:
        self.point, self.nth = parse_fault(spec)
        self.kill = kill or kill_process_group
        self.checkpoints = checkpoints
        self.topic = topic
        self.batches = 0
        self._checkpoint_at_open = self._latest_checkpoint() if self.point else 0
        self._checkpoint_at_last_commit = self._checkpoint_at_open

    def batch_started(
        self, partitions: Sequence[int] | None = None, offsets: Sequence[int] | None = None
    ) -> None:
        """Called when a bronze batch arrives, before anything is written (its records' Kafka
        partitions and offsets make ``after_checkpoint`` exact)."""
        if not self.point:
            return
        self.batches += 1
        if self.point == "after_checkpoint" and self._due() and self._pending(partitions, offsets):
            self._die()

    def reached(self, point: str) -> None:
        """Called at ``point`` of the current bronze batch (``batch_committed`` included)."""
        if not self.point:
            return
        if point == "batch_committed":
            self._checkpoint_at_last_commit = self._latest_checkpoint()
        if point == self.point and self._due():
            self._die()

    def _due(self) -> bool:
        return self.batches >= self.nth and self._latest_checkpoint() > self._checkpoint_at_open

    def _pending(self, partitions: Sequence[int] | None, offsets: Sequence[int] | None) -> bool:
        """Whether records of this batch were pending in Flink state at the newest checkpoint."""
        newest = self._latest_checkpoint()
        if partitions is None or offsets is None or not self.topic:
            return newest > self._checkpoint_at_last_commit
        checkpoint = completed_checkpoints(self.checkpoints)[newest]
        position = checkpoint_source_offsets(checkpoint, self.topic)
        return any(
            offset < position.get(partition, -1)
            for partition, offset in zip(partitions, offsets, strict=True)
        )

    def _latest_checkpoint(self) -> int:
        """The newest completed checkpoint's number (0 for none)."""
        return max(completed_checkpoints(self.checkpoints), default=0)

    def _die(self) -> None:
        message = f"fault injection: killing the job at {self.point} of bronze batch {self.batches}"
        log.warning(message)
        print(message, flush=True)
        self.kill()


def kill_process_group() -> None:
    """SIGKILL to the whole job (the supervisor starts it in its own process group)."""
    os.killpg(os.getpgrp(), signal.SIGKILL)
