"""De-duplication by event id, rebuilt from bronze: the first stored copy of an event wins.

Why not Flink keyed state: the job's Python sink sees whole micro-batches (one crossing per
batch, not per event), so a per-event state lookup in Flink would cost a JVM round trip per
event again. And bronze is the truth anyway: the ids stored in the last ``dedup_ttl_s``,
read back from the table when a sink starts, are exactly the ids committed before a crash,
so de-duplication after a restore decides every copy as the undisturbed run did, whatever
checkpoint was restored, and also across ``encore ingest start --fresh`` (no checkpoint at
all), where Flink state would start empty and let a copy straddling the restart through.

Scope: one *lane* of the job (``kafka_partition % lanes``, one sink per lane). Every copy a
producer retries or a client resends with the same key is in one partition, hence one lane;
copies of one event under different keys in different lanes are not compared (with the
default single lane, every partition is one lane).

Memory: one dict entry per kept event in the window (~100 bytes: a 36-character id string
and a float), e.g. ~360 MB for an hour at 1,000 events/s; ``dedup_ttl_s`` bounds it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from encore.settings import Settings
from encore.tables import PLAY_EVENTS


class RecentIds:
    """The event ids kept during the last ``ttl_s`` seconds, oldest first."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._kept_at: dict[str, float] = {}  # insertion order is time order

    def __len__(self) -> int:
        return len(self._kept_at)

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._kept_at

    def load(self, ids_and_times: Iterable[tuple[str, float]]) -> None:
        """Add stored ids with the time they were kept (epoch s), any order."""
        for event_id, kept_at in sorted(ids_and_times, key=lambda pair: pair[1]):
            self._kept_at.setdefault(event_id, kept_at)

    def keep_first(self, event_ids: Iterable[str], now: float | None = None) -> list[bool]:
        """For each id in order: True if it is the first copy (and remember it), False for
        a copy of an id kept earlier (in this call or before)."""
        now = time.time() if now is None else now
        self.expire(now)
        kept = self._kept_at
        decisions = []
        for event_id in event_ids:
            if event_id in kept:
                decisions.append(False)
            else:
                kept[event_id] = now
                decisions.append(True)
        return decisions

    def expire(self, now: float) -> None:
        cutoff = now - self.ttl_s
        kept = self._kept_at
        while kept:
            oldest = next(iter(kept))
            if kept[oldest] >= cutoff:
                break
            del kept[oldest]


def stored_ids(
    settings: Settings, partitions: set[int] | None, ttl_s: float
) -> list[tuple[str, float]]:
    """(event_id, ingested_at epoch s) of bronze rows ingested in the last ``ttl_s`` from
    ``partitions`` (all when None): what a starting sink must remember."""
    import pyarrow.compute as pc

    from encore.delta import delta_dataset, open_delta

    delta = open_delta(settings, PLAY_EVENTS)
    if delta is None:
        return []
    cutoff = datetime.now(UTC) - timedelta(seconds=ttl_s)
    condition = pc.field("ingested_at") >= cutoff
    if partitions is not None:
        condition = condition & pc.field("kafka_partition").isin(sorted(partitions))
    rows = delta_dataset(delta).to_table(columns=["event_id", "ingested_at"], filter=condition)
    times = pc.divide(rows.column("ingested_at").cast("int64"), 1_000_000.0)
    return list(zip(rows.column("event_id").to_pylist(), times.to_pylist(), strict=True))
