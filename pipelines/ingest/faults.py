"""Crash points on purpose: the ingestion job kills itself where exactly-once is hardest.

Off by default; tests set ``settings.flink.fault`` (``ENCORE_FLINK__FAULT``) to
``<point>[:<batch>]`` and the sink calls :meth:`FaultInjector.reached` at each point of every
bronze micro-batch. At the chosen point of the ``<batch>``-th bronze batch (1 by default) or
the first one after it where the point applies, the whole job's process group gets SIGKILL,
like a machine losing power: no ``finally`` runs, nothing is flushed. A test then restarts the
job (``control.start`` restores the newest retained checkpoint) without the fault and checks
that the replay converged to exactly once.

Points (the three crash windows of docs/ingestion.md "How exactly-once works"):

- ``after_delta_commit``: the bronze batch is committed to Delta (and Redis), the next
  checkpoint has not completed: the restore replays rows Delta and Redis already hold, which
  both must skip.
- ``after_checkpoint``: a checkpoint completed while this batch's rows were still pending in
  Flink state (after the previous batch's commit), and the job dies before writing them: the
  restore must bring them back from the checkpoint (nothing lost).
- ``after_redis``: the Redis transaction of the batch is applied, its Delta commit is not:
  the replay must skip the rows in Redis and write them to Delta.
"""

from __future__ import annotations

import logging
import os
import re
import signal
from pathlib import Path

log = logging.getLogger(__name__)

POINTS = ("after_delta_commit", "after_checkpoint", "after_redis")

_CHECKPOINT = re.compile(r"chk-(\d+)$")


class FaultInjector:
    """Kills the job at the configured point; a no-op when ``spec`` is empty."""

    def __init__(self, spec: str, checkpoints: Path) -> None:
        point, _, nth = spec.partition(":")
        if point and point not in POINTS:
            raise ValueError(f"unknown fault point {point!r}; expected one of {POINTS}")
        self.point = point
        self.nth = int(nth or 1)
        self.checkpoints = checkpoints
        self.batches = 0
        self._checkpoint_at_last_commit = self._latest_checkpoint()

    def batch_started(self) -> None:
        """Called when a bronze batch arrives, before anything is written."""
        if not self.point:
            return
        self.batches += 1
        if (
            self.point == "after_checkpoint"
            and self.batches >= self.nth
            and self._latest_checkpoint() > self._checkpoint_at_last_commit
        ):
            self._die()

    def reached(self, point: str) -> None:
        """Called at ``point`` of the current bronze batch."""
        if not self.point:
            return
        if point == "batch_committed":
            self._checkpoint_at_last_commit = self._latest_checkpoint()
        if point == self.point and self.batches >= self.nth:
            self._die()

    def _latest_checkpoint(self) -> int:
        """The newest completed checkpoint's number (0 for none)."""
        numbers = [
            int(match.group(1))
            for metadata in self.checkpoints.glob("*/chk-*/_metadata")
            if (match := _CHECKPOINT.search(metadata.parent.name))
        ]
        return max(numbers, default=0)

    def _die(self) -> None:
        message = f"fault injection: killing the job at {self.point} of bronze batch {self.batches}"
        log.warning(message)
        print(message, flush=True)
        os.killpg(os.getpgrp(), signal.SIGKILL)
