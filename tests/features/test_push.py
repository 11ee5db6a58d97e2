"""The session pusher against the real parts: play events on a Kafka topic, the ingestion
job's Redis writer (``RedisAggregates``, what the job runs per micro-batch) applying them to
``recent:v1``, Feast's push source into the platform's Redis, and dims.songs in a lake."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import redis
from kafka import KafkaProducer

from encore import services
from encore.delta import read_lake_table
from encore.errors import NotFoundError
from encore.events import PlayEventV1
from encore.keys import RecentPlay
from encore.settings import Settings
from encore.tables import DIM_SONGS, LISTENER_SESSION
from features import store
from features.definitions import REALTIME_SERVICE, session_feature_names
from features.push import SessionPusher, Song, session_row
from pipelines.ingest.aggregates import RedisAggregates
from tests.pipelines.lake.conftest import song_row, write_rows

SONGS = {  # song -> (artist, genre)
    "s-rock-1": ("ar-rock", "rock"),
    "s-rock-2": ("ar-rock", "rock"),
    "s-jazz": ("ar-jazz", "jazz"),
    "s-pop": ("ar-pop", "pop"),
}


@pytest.fixture()
def settings(platform: Settings, tmp_path: Path) -> Settings:
    """The platform's Kafka and Redis; a topic, lake, feature repo and Feast project of the
    test's own."""
    settings = platform.model_copy(
        update={
            "lake": platform.lake.model_copy(update={"root": str(tmp_path / "lake")}),
            "features": platform.features.model_copy(
                update={"repo": str(tmp_path / "features"), "project": f"t{uuid.uuid4().hex[:8]}"}
            ),
            "kafka": platform.kafka.model_copy(
                update={
                    "play_events_topic": f"play-events-{uuid.uuid4().hex[:8]}",
                    "play_events_partitions": 2,
                }
            ),
        }
    )
    services.ensure_topics(settings)
    write_rows(
        settings,
        DIM_SONGS,
        [song_row(song, artist, genre=genre) for song, (artist, genre) in SONGS.items()],
    )
    return settings


def event(user: str, song: str, kind: str, start: datetime, ms: int) -> PlayEventV1:
    return PlayEventV1(
        event_id=uuid.uuid4(),
        user_id=user,
        song_id=song,
        start_time=start,
        end_time=start + timedelta(milliseconds=ms),
        ms_played=ms,
        event_type=kind,
        device_type="mobile",
        country_code="SE",
    )


def produce(settings: Settings, events: list[PlayEventV1]) -> list[tuple[int, int]]:
    """Send the events keyed by listener, as the event API does; their (partition, offset)."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka.servers, acks="all")
    try:
        futures = [
            producer.send(
                settings.kafka.play_events_topic,
                key=e.user_id.encode(),
                value=e.model_dump_json().encode(),
            )
            for e in events
        ]
        producer.flush()
        return [(m.partition, m.offset) for m in (f.get(timeout=10) for f in futures)]
    finally:
        producer.close()


def apply_as_the_job(
    settings: Settings, events: list[PlayEventV1], positions: list[tuple[int, int]]
) -> None:
    """What the ingestion job does with a micro-batch: recent:v1 and its offsets, at once."""
    us = [int(e.start_time.timestamp() * 1_000_000) for e in events]
    columns = {
        "kafka_partition": [p for p, _ in positions],
        "kafka_offset": [o for _, o in positions],
        "user_id": [e.user_id for e in events],
        "song_id": [e.song_id for e in events],
        "country_code": [e.country_code for e in events],
        "start_time": us,
        "event_time_us": us,
        "event_id": [str(e.event_id) for e in events],
        "event_type": [e.event_type for e in events],
        "ms_played": [e.ms_played for e in events],
    }
    with redis.Redis.from_url(settings.redis.effective_url) as client:
        RedisAggregates(client, settings, settings.kafka.play_events_topic).apply(columns)


def expected_session(events: list[PlayEventV1], minutes: int) -> dict:
    """The session computed by hand from the events: non-likes in the window up to the last."""
    plays = sorted((e for e in events if e.event_type != "like"), key=lambda e: e.start_time)
    last = plays[-1]
    inside = [e for e in plays if e.start_time >= last.start_time - timedelta(minutes=minutes)]
    genres = Counter(SONGS[e.song_id][1] for e in inside)
    latest = {SONGS[e.song_id][1]: e.start_time for e in inside}  # inside is oldest first
    return {
        "session_plays": len(inside),
        "session_skips": sum(e.event_type == "skip" for e in inside),
        "session_ms_played": sum(e.ms_played for e in inside),
        "session_top_genre": max(genres, key=lambda g: (genres[g], latest[g])),  # ties: recent
        "session_last_song_id": last.song_id,
        "session_last_artist_id": SONGS[last.song_id][0],
        "last_play_at": last.start_time,
    }


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def served(settings: Settings, user_id: str) -> dict | None:
    session = store.read_session(store.feature_store(settings), user_id)
    if session is not None:  # Feast hands timestamps back as naive UTC or aware
        at = session["last_play_at"]
        session["last_play_at"] = at if at.tzinfo else at.replace(tzinfo=UTC)
    return session


@pytest.mark.integration
def test_a_listeners_plays_reach_the_online_session_once_the_job_applied_them(
    settings: Settings,
) -> None:
    minutes = settings.serving.session_minutes
    now = datetime.now(UTC).replace(microsecond=0)
    ana, bo, nobody = (f"{name}-{uuid.uuid4().hex[:6]}" for name in ("ana", "bo", "nobody"))
    anas = [
        event(ana, "s-pop", "complete", now - timedelta(minutes=minutes + 15), 180_000),  # before
        event(ana, "s-rock-1", "complete", now - timedelta(minutes=12), 200_000),
        event(ana, "s-jazz", "skip", now - timedelta(minutes=8), 9_000),
        event(ana, "s-rock-2", "play", now - timedelta(minutes=5), 120_000),
        event(ana, "s-jazz", "like", now - timedelta(minutes=4), 0),  # a like is not a play
    ]
    bos = [event(bo, "s-jazz", "complete", now - timedelta(minutes=2), 150_000)]
    store.apply(settings)
    positions = produce(settings, anas + bos)
    apply_as_the_job(settings, anas, positions[: len(anas)])  # bo's not yet

    clock = Clock()
    pusher = SessionPusher(settings, clock=clock)
    try:
        report = pusher.run_once(poll_timeout_ms=5000)

        assert (report.pushed, report.waiting) == (1, 1)
        assert served(settings, ana) == expected_session(anas, minutes)
        assert served(settings, bo) is None  # the job has not applied bo's play yet
        raw = store.feature_store(settings).get_online_features(
            [f"listener_session:{name}" for name in session_feature_names()],
            [{"user_id": nobody}],
        )
        assert set(raw.to_dict()["session_plays"]) == {None}

        apply_as_the_job(settings, bos, positions[len(anas) :])
        report = pusher.run_once(poll_timeout_ms=100)

        assert (report.pushed, report.waiting) == (1, 0)
        assert served(settings, bo) == expected_session(bos, minutes)

        # a record the job never applies (it was a duplicate, or rejected) waits its time out
        positions += produce(settings, [event(nobody, "s-pop", "play", now, 1000)])
        assert pusher.run_once(poll_timeout_ms=5000).waiting == 1
        clock.now += settings.features.push_wait_s
        assert (pusher.run_once(poll_timeout_ms=100).waiting, served(settings, nobody)) == (0, None)
        assert pusher.flush() == 2
    finally:
        pusher.close()

    logged = read_lake_table(settings, LISTENER_SESSION).to_pylist()
    assert sorted((r["user_id"], r["session_plays"]) for r in logged) == sorted(
        [(ana, expected_session(anas, minutes)["session_plays"]), (bo, 1)]
    )
    feast = store.feature_store(settings)
    assert REALTIME_SERVICE in {s.name for s in feast.list_feature_services()}
    # offline, the log is the push source's batch source: a join sees a session only from
    # its last play on (its timestamp), and not once the session window has passed
    last = expected_session(anas, minutes)["last_play_at"]
    asked = [last - timedelta(seconds=1), last, last + timedelta(minutes=minutes + 1)]
    offline = (
        feast.get_historical_features(
            entity_df=pd.DataFrame({"user_id": [ana] * 3, "event_timestamp": asked}),
            features=["listener_session:session_plays"],
        )
        .to_df()
        .sort_values("event_timestamp")
    )
    plays = [None if pd.isna(v) else int(v) for v in offline["session_plays"]]
    assert plays == [None, expected_session(anas, minutes)["session_plays"], None]

    # a restart starts after the committed offsets: nothing is replayed, nothing pushed
    again = SessionPusher(settings)
    try:
        assert again.run_once(poll_timeout_ms=500).pushed == 0
    finally:
        again.close()
    assert served(settings, ana) == expected_session(anas, minutes)


def test_a_session_recomputed_later_is_the_same_row_and_ignores_a_fast_clock() -> None:
    now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    songs = {song: Song(artist, genre) for song, (artist, genre) in SONGS.items()}

    def play(song: str, kind: str, minutes_ago: float) -> RecentPlay:
        return RecentPlay("e", song, kind, now - timedelta(minutes=minutes_ago), 1000)

    recent = [play("s-jazz", "play", 3), play("s-rock-1", "play", 6), play("s-jazz", "skip", 40)]
    window = timedelta(minutes=30)

    first = session_row("u", recent, songs, window, now)
    later = session_row("u", recent, songs, window, now + timedelta(minutes=20))

    assert first is not None and later is not None
    assert {k: v for k, v in first.items() if k != "pushed_at"} == {
        k: v for k, v in later.items() if k != "pushed_at"
    }
    assert (first["session_plays"], first["session_skips"]) == (2, 0)
    assert first["session_top_genre"] == "jazz" and first["last_play_at"] == recent[0].start_time
    ahead = [play("s-pop", "play", -60), *recent]  # a client clock an hour fast
    assert session_row("u", ahead, songs, window, now)["event_timestamp"] == now
    assert session_row("u", [play("s-pop", "like", 1)], songs, window, now) is None
    assert date(2026, 12, 1) == first["session_date"]


@pytest.mark.integration
def test_the_pusher_before_apply_says_what_to_run(settings: Settings) -> None:
    with pytest.raises(NotFoundError, match=r"listener_session_push.*encore features apply"):
        SessionPusher(settings)


@pytest.mark.integration
def test_the_feature_push_service_pushes_and_logs_what_it_pushed_when_stopped(
    settings: Settings,
) -> None:
    """``encore up feature-push`` runs ``encore features push`` with these settings; ``down``
    (SIGTERM) makes it append what it pushed to the offline log before it exits."""
    minutes = settings.serving.session_minutes
    now = datetime.now(UTC).replace(microsecond=0)
    cy = f"cy-{uuid.uuid4().hex[:6]}"
    plays = [
        event(cy, "s-rock-1", "complete", now - timedelta(minutes=3), 200_000),
        event(cy, "s-pop", "skip", now - timedelta(minutes=1), 5_000),
    ]
    store.apply(settings)
    services.up(settings, ["feature-push"])
    try:
        apply_as_the_job(settings, plays, produce(settings, plays))
        deadline = time.monotonic() + 45
        while served(settings, cy) is None and time.monotonic() < deadline:
            time.sleep(0.5)

        assert served(settings, cy) == expected_session(plays, minutes)
    finally:
        services.down(settings, ["feature-push"])

    logged = read_lake_table(settings, LISTENER_SESSION).to_pylist()
    assert [(r["user_id"], r["session_plays"], r["session_skips"]) for r in logged] == [(cy, 2, 1)]
