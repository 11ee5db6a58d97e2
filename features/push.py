"""The real-time listener features: each listener's current session, pushed to Feast.

Inputs: the ``play-events`` topic (only which listener, on which partition and offset), the
ingestion job's ``recent:v1:<user>`` lists and its applied-offsets hash
``ingest:v1:offsets:<topic>`` in Redis, and ``dims.songs`` (genre and artist of a song).
Outputs: Feast push source ``listener_session_push`` (view ``listener_session`` in the online
store) and its offline copy ``features.listener_session`` (Delta, appended).
Schedule: ``encore features push`` (``encore up feature-push``), every
``features.push_interval_ms``.

Why this design. The ingestion job (Flink, its own environment, where Feast can never be
installed: their pyarrow pins conflict) already validates, deduplicates and applies every
play to Redis exactly once, ``recent:v1:<user>`` included, in one transaction per
micro-batch that also records the last Kafka offset applied per partition. So the values
come from there, and nothing here validates, deduplicates or counts an event again: one
validator, one dedup. The topic is only the doorbell. The pusher reads it with its own
consumer group to learn which listeners just played and at which offset, waits until the
job's offsets hash shows that offset applied (or ``features.push_wait_s`` passed: a
duplicate or rejected record never shows there), then recomputes those listeners' sessions
from their lists and pushes them. The rejected alternatives: tailing bronze's Delta commits
(seconds to tens of seconds behind, one commit per job checkpoint, and a scan per commit);
pushing from the job itself (it would have to write Feast's Redis layout, protobuf and hashed
field names, by hand: a second copy of a format Feast owns); polling every ``recent:v1`` key
(a SCAN of every listener each second).

Restarts lose and double nothing that matters. A session is recomputed whole from the
listener's list, never incremented, and its values are those of the window ending at the
listener's last play, so recomputing it later gives the same row, with the same timestamp,
which Feast's Redis store ignores (it keeps a value only when newer). Kafka offsets are
committed only after the rows they caused are in the offline log: a crash replays at most one
log interval of records, which re-pushes identical rows. The row's timestamp being the last
play, the view's TTL (the session window) turns it into nulls once the listener has been
silent that long, with or without the pusher running.

Limits: a play arriving after a newer one of the same listener (a client's late upload)
changes the counts but not the timestamp, so Feast keeps the earlier row until the
listener's next play. One pusher process reads every partition (``assign``, not a group
rebalance): a listener costs one LRANGE and one Redis hash write per second at most.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from encore.delta import read_lake_table
from encore.errors import NotFoundError
from encore.keys import RecentPlay, offsets_key, parse_recent_entry, recent_key
from encore.settings import Settings
from encore.tables import DIM_SONGS, LISTENER_SESSION

if TYPE_CHECKING:
    from feast import FeatureStore

log = logging.getLogger(__name__)

GROUP_ID = "encore-feature-push"
SESSION_EVENT_TYPES = frozenset({"play", "skip", "complete"})
"""What counts as a play in a session: a like is not one (as in the daily features)."""
CATALOG_RELOAD_S = 60.0
"""An unknown song reloads ``dims.songs`` at most this often (a new release, or a bad id)."""


@dataclass(frozen=True)
class Song:
    artist_id: str
    genre: str | None


def session_row(
    user_id: str,
    recent: Iterable[RecentPlay],
    songs: Mapping[str, Song],
    window: timedelta,
    now: datetime,
) -> dict[str, Any] | None:
    """The listener's session as a ``features.listener_session`` row, or None without a play.

    The window is the ``window`` up to the listener's last play (not up to ``now``), so the
    row depends only on the plays: computed again later, it is the same. Start times from a
    client's clock ahead of ours count as ``now``, so a wrong clock cannot hold a session
    open, nor stop a later row from replacing it.
    """
    plays = sorted(
        ((min(p.start_time, now), p) for p in recent if p.event_type in SESSION_EVENT_TYPES),
        key=lambda pair: pair[0],
    )
    if not plays:
        return None
    last_at, last = plays[-1]
    session = [(at, p) for at, p in plays if at >= last_at - window]
    genres: Counter[str] = Counter()
    latest_of_genre: dict[str, datetime] = {}
    for at, play in session:
        song = songs.get(play.song_id)
        if song is not None and song.genre:
            genres[song.genre] += 1
            latest_of_genre[song.genre] = at
    top_genre = max(genres, key=lambda g: (genres[g], latest_of_genre[g]), default=None)
    last_song = songs.get(last.song_id)
    return {
        "session_date": last_at.date(),
        "event_timestamp": last_at,
        "user_id": user_id,
        "session_plays": len(session),
        "session_skips": sum(p.event_type == "skip" for _, p in session),
        "session_ms_played": sum(p.ms_played for _, p in session),
        "session_top_genre": top_genre,
        "session_last_song_id": last.song_id,
        "session_last_artist_id": last_song.artist_id if last_song else None,
        "last_play_at": last_at,
        "pushed_at": now,
    }


class SongCatalog:
    """``dims.songs`` as song_id -> (artist, genre), read once and again when a song is
    missing (at most every ``CATALOG_RELOAD_S``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.songs: dict[str, Song] = {}
        self.loaded_at = float("-inf")

    def lookup(self, song_ids: Iterable[str]) -> Mapping[str, Song]:
        wanted = set(song_ids)
        missing = wanted - self.songs.keys()
        if missing and time.monotonic() - self.loaded_at >= CATALOG_RELOAD_S:
            self.reload()
        return self.songs

    def reload(self) -> None:
        rows = read_lake_table(
            self.settings, DIM_SONGS, columns=["song_id", "artist_id", "genre"]
        ).to_pydict()
        self.songs = {
            song: Song(artist, genre)
            for song, artist, genre in zip(
                rows["song_id"], rows["artist_id"], rows["genre"], strict=True
            )
        }
        self.loaded_at = time.monotonic()


@dataclass
class _Waiting:
    """A listener whose plays were seen on the topic, not yet pushed."""

    offsets: dict[int, tuple[int, int]] = field(default_factory=dict)
    """partition -> (first, last) offset seen for the listener."""
    since: float = 0.0


@dataclass
class PushReport:
    pushed: int = 0
    """Listeners whose session went to the online store."""
    waiting: int = 0
    """Listeners whose plays the ingestion job has not applied yet."""
    logged: int = 0
    """Rows appended to ``features.listener_session`` (0 between log intervals)."""


class SessionPusher:
    """Pushes the sessions of listeners who just played; :meth:`run_once` is one batch."""

    def __init__(
        self,
        settings: Settings,
        feast: FeatureStore | None = None,
        redis_client: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import redis
        from kafka import KafkaConsumer, TopicPartition

        from features import store

        self.settings = settings
        self.topic = settings.kafka.play_events_topic
        self.window = timedelta(minutes=settings.serving.session_minutes)
        self.feast = feast or store.feature_store(settings)
        _require_push_source(self.feast, settings)
        self.redis = redis_client or redis.Redis.from_url(settings.redis.effective_url)
        self.clock = clock
        """Seconds, for how long a listener has waited for the ingestion job."""
        self.catalog = SongCatalog(settings)
        self.waiting: dict[str, _Waiting] = {}
        self.log_rows: list[dict[str, Any]] = []
        self.logged_at = time.monotonic()
        self.consumer = KafkaConsumer(
            bootstrap_servers=settings.kafka.servers,
            group_id=GROUP_ID,
            client_id=GROUP_ID,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        partitions = self.consumer.partitions_for_topic(self.topic) or set()
        self.partitions = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self.consumer.assign(self.partitions)
        self._seek_first_start()

    def _seek_first_start(self) -> None:
        """A partition this group never committed starts at the first record of the session
        window: older plays cannot be in anyone's session."""
        fresh = [tp for tp in self.partitions if self.consumer.committed(tp) is None]
        if not fresh:
            return
        since_ms = int((time.time() - self.window.total_seconds()) * 1000)
        found = self.consumer.offsets_for_times({tp: since_ms for tp in fresh})
        ends = self.consumer.end_offsets(fresh)
        for tp in fresh:
            hit = found.get(tp)
            self.consumer.seek(tp, hit.offset if hit is not None else ends[tp])

    def run_once(self, poll_timeout_ms: int = 500) -> PushReport:
        """Read the topic's new records, push every waiting listener the job has applied
        (or waited for long enough), and append to the log when its interval is up."""
        self._collect(self.consumer.poll(timeout_ms=poll_timeout_ms))
        while batch := self.consumer.poll(timeout_ms=0):
            self._collect(batch)
        ready = self._ready()
        rows = self._sessions(ready)
        if rows:
            import pandas as pd
            from feast.data_source import PushMode

            from features.definitions import SESSION_PUSH_SOURCE

            self.feast.push(SESSION_PUSH_SOURCE, pd.DataFrame(rows), to=PushMode.ONLINE)
            self.log_rows.extend(rows)
        for user in ready:
            del self.waiting[user]
        logged = 0
        interval = self.settings.features.session_log_interval_s
        if time.monotonic() - self.logged_at >= interval:
            logged = self.flush()
        return PushReport(pushed=len(rows), waiting=len(self.waiting), logged=logged)

    def run(self, stop: threading.Event) -> None:
        """Push until ``stop`` is set, then log and commit what was pushed."""
        from redis import exceptions as redis_errors

        interval_s = self.settings.features.push_interval_ms / 1000
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    report = self.run_once(poll_timeout_ms=int(interval_s * 1000))
                except (redis_errors.ConnectionError, redis_errors.TimeoutError) as error:
                    # Redis down: the waiting listeners stay waiting (their offsets are not
                    # committed) and are pushed when it is back
                    log.warning("Redis unavailable, retrying in %.0f s: %s", interval_s, error)
                    stop.wait(max(interval_s, 1.0))
                    continue
                if report.pushed or report.logged:
                    log.info(
                        "pushed %d sessions, %d listeners waiting, %d rows logged",
                        report.pushed,
                        report.waiting,
                        report.logged,
                    )
                stop.wait(max(0.0, interval_s - (time.monotonic() - started)))
        finally:
            self.close()

    def flush(self) -> int:
        """Append the pushed rows to ``features.listener_session``, then commit the Kafka
        offsets behind them (never past a listener still waiting); the rows appended."""
        logged = len(self.log_rows)
        if self.log_rows:
            append_session_log(self.settings, self.log_rows)
            self.log_rows = []
        self._commit()
        self.logged_at = time.monotonic()
        return logged

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.consumer.close()

    def _collect(self, batch: Mapping[Any, list]) -> None:
        now = self.clock()
        for records in batch.values():
            for record in records:
                if not record.key:
                    continue  # unkeyed: not from Encore's producer, the job rejects it
                user = record.key.decode(errors="replace")
                waiting = self.waiting.setdefault(user, _Waiting(since=now))
                first, _ = waiting.offsets.get(record.partition, (record.offset, record.offset))
                waiting.offsets[record.partition] = (first, record.offset)

    def _ready(self) -> list[str]:
        """Waiting listeners whose last seen offsets the ingestion job has applied to Redis,
        or who waited ``push_wait_s`` (their record was a duplicate or rejected)."""
        if not self.waiting:
            return []
        applied = {int(p): int(o) for p, o in self.redis.hgetall(offsets_key(self.topic)).items()}
        deadline = self.clock() - self.settings.features.push_wait_s
        return [
            user
            for user, waiting in self.waiting.items()
            if waiting.since <= deadline
            or all(last <= applied.get(p, -1) for p, (_, last) in waiting.offsets.items())
        ]

    def _sessions(self, users: list[str]) -> list[dict[str, Any]]:
        if not users:
            return []
        depth = self.settings.flink.recent_plays
        pipe = self.redis.pipeline(transaction=False)
        for user in users:
            pipe.lrange(recent_key(user), 0, depth - 1)
        lists = pipe.execute()
        recent = {
            user: [parse_recent_entry(raw) for raw in raw_list]
            for user, raw_list in zip(users, lists, strict=True)
        }
        songs = self.catalog.lookup(p.song_id for plays in recent.values() for p in plays)
        now = datetime.now(UTC)
        rows = (session_row(user, plays, songs, self.window, now) for user, plays in recent.items())
        return [row for row in rows if row is not None]

    def _commit(self) -> None:
        from kafka.structs import OffsetAndMetadata

        firsts: dict[int, int] = {}
        for waiting in self.waiting.values():
            for partition, (first, _) in waiting.offsets.items():
                firsts[partition] = min(first, firsts.get(partition, first))
        offsets = {
            tp: OffsetAndMetadata(firsts.get(tp.partition, self.consumer.position(tp)), "", -1)
            for tp in self.partitions
        }
        self.consumer.commit(offsets)


def _require_push_source(feast: FeatureStore, settings: Settings) -> None:
    from feast.errors import FeastObjectNotFoundException

    from features.definitions import SESSION_PUSH_SOURCE

    try:
        feast.get_data_source(SESSION_PUSH_SOURCE)
    except FeastObjectNotFoundException:
        raise NotFoundError(
            f"push source {SESSION_PUSH_SOURCE} is not registered in the feature store at "
            f"{settings.features_repo} (run `encore features apply`)"
        ) from None


def append_session_log(settings: Settings, rows: list[dict[str, Any]]) -> None:
    """Append pushed rows to ``features.listener_session`` (created by the first append)."""
    import pyarrow as pa
    from deltalake import write_deltalake

    schema = LISTENER_SESSION.arrow_schema()
    data = pa.Table.from_pylist([{n: row.get(n) for n in schema.names} for row in rows], schema)
    write_deltalake(
        LISTENER_SESSION.path(settings),
        data,
        mode="append",
        partition_by=list(LISTENER_SESSION.partition_by),
        storage_options=settings.lake.storage_options or None,
    )


def run(settings: Settings, stop: threading.Event) -> None:
    """``encore features push``: push sessions until ``stop`` is set."""
    SessionPusher(settings).run(stop)
