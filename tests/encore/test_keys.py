"""The Redis contract: key names, the recent-play entry format and its readers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis

from encore.keys import (
    RecentPlay,
    offsets_key,
    parse_recent_entry,
    read_current_trending,
    read_recent_plays,
    recent_entry,
    recent_key,
    recs_key,
    trending_key,
)
from encore.settings import Settings


def test_key_names_are_versioned_and_spelled_once():
    assert trending_key("SE") == "trending:v1:SE"
    assert trending_key("SE", 1_795_464_000) == "trending:v1:SE:1795464000"
    assert recent_key("u-1") == "recent:v1:u-1"
    assert recs_key("als", "u-1") == "recs:v1:als:u-1"
    assert offsets_key("play-events") == "ingest:v1:offsets:play-events"


def test_a_recent_entry_is_json_and_parses_back():
    start_us = 1_795_464_000_123_456
    raw = recent_entry("e1", "s1", "skip", start_us, 1234)
    assert json.loads(raw) == {
        "event_id": "e1",
        "song_id": "s1",
        "event_type": "skip",
        "start_time": "2026-11-23T20:00:00.123456Z",
        "ms_played": 1234,
    }
    assert parse_recent_entry(raw.encode()) == RecentPlay(
        "e1", "s1", "skip", datetime(2026, 11, 23, 20, 0, 0, 123456, tzinfo=UTC), 1234
    )


@pytest.fixture()
def client(platform: Settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(f"redis://localhost:{platform.redis.port}/14")
    client.flushdb()
    yield client
    client.flushdb()


@pytest.mark.integration
def test_readers_read_what_the_job_writes(client: redis.Redis) -> None:
    client.zadd(trending_key("SE"), {"a": 3, "b": 7, "c": 1})
    assert read_current_trending(client, "SE", n=2) == [("b", 7), ("a", 3)]
    assert read_current_trending(client, "GB") == []
    newest, older = (recent_entry(f"e{i}", f"s{i}", "play", i * 1_000_000, i) for i in (2, 1))
    client.lpush(recent_key("u1"), older, newest)  # the job pushes oldest first
    assert [p.song_id for p in read_recent_plays(client, "u1")] == ["s2", "s1"]
    assert [p.event_id for p in read_recent_plays(client, "u1", n=1)] == ["e2"]
