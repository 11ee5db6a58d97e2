"""Real-time aggregates in Redis: counts and recent plays applied exactly once per offset."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from encore.keys import LATEST_WINDOW_KEY, offsets_key, recent_key, trending_key
from encore.settings import Settings
from pipelines.ingest.aggregates import RedisAggregates

pytestmark = pytest.mark.integration

WINDOW_S = 300
T0_US = 1_795_464_000 * 1_000_000  # 2026-11-23 17:20 UTC, a window boundary


@pytest.fixture()
def client(platform: Settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(f"redis://localhost:{platform.redis.port}/15")
    client.flushdb()
    yield client
    client.flushdb()


def batch(rows: list[tuple[int, int, str, str, str, int]]) -> dict[str, list]:
    """rows: (partition, offset, user, song, country, start_us); event time = start."""
    return {
        "kafka_partition": [r[0] for r in rows],
        "kafka_offset": [r[1] for r in rows],
        "user_id": [r[2] for r in rows],
        "song_id": [r[3] for r in rows],
        "country_code": [r[4] for r in rows],
        "start_time": [r[5] for r in rows],
        "event_time_us": [r[5] for r in rows],
        "event_id": [f"e-{r[0]}-{r[1]}" for r in rows],
        "event_type": ["play"] * len(rows),
        "ms_played": [1000] * len(rows),
    }


def aggregates(client: redis.Redis, platform: Settings) -> RedisAggregates:
    flink = platform.flink.model_copy(update={"trending_window_s": WINDOW_S, "recent_plays": 3})
    settings = platform.model_copy(update={"flink": flink})
    return RedisAggregates(client, settings, "play-events")


def test_counts_and_recent_plays(client: redis.Redis, platform: Settings) -> None:
    rows = [
        (0, 1, "u1", "s1", "US", T0_US),
        (0, 2, "u1", "s2", "US", T0_US + 1),
        (1, 1, "u2", "s1", "US", T0_US + 2),
        (1, 2, "u2", "s1", "GB", T0_US + 3),
    ]
    assert aggregates(client, platform).apply(batch(rows)) == 4
    window = T0_US // 1_000_000
    assert client.zrange(trending_key("US", window), 0, -1, withscores=True, desc=True) == [
        (b"s1", 2.0),
        (b"s2", 1.0),
    ]
    assert client.zscore(trending_key("US"), "s1") == 2.0
    assert [b'"song_id":"s2"' in e for e in client.lrange(recent_key("u1"), 0, -1)] == [
        True,
        False,
    ]
    ttl = platform.flink.redis_ttl_s
    for key in (recent_key("u1"), trending_key("US"), trending_key("US", window)):
        assert ttl - 5 <= client.ttl(key) <= ttl, key
    # the marker of each country's current window expires like the keys it points at
    assert ttl - 5 <= client.ttl(LATEST_WINDOW_KEY) <= ttl
    assert client.hgetall(LATEST_WINDOW_KEY) == {
        b"US": str(window).encode(),
        b"GB": str(window).encode(),
    }
    assert client.hgetall(offsets_key("play-events")) == {b"0": b"2", b"1": b"2"}


def test_a_replayed_batch_changes_nothing(client: redis.Redis, platform: Settings) -> None:
    first = [(0, o, "u1", f"s{o}", "US", T0_US + o) for o in range(5)]
    aggregates(client, platform).apply(batch(first))
    # after a crash: a new process re-reads an older checkpoint's range plus new rows
    restarted = aggregates(client, platform)
    replay = [(0, o, "u1", f"s{o}", "US", T0_US + o) for o in range(3, 7)]
    assert restarted.apply(batch(replay)) == 2
    window = T0_US // 1_000_000
    scores = client.zrange(trending_key("US", window), 0, -1, withscores=True)
    assert sum(score for _, score in scores) == 7
    assert len(client.lrange(recent_key("u1"), 0, -1)) == 3  # trimmed to the last N
    assert b'"song_id":"s6"' in client.lindex(recent_key("u1"), 0)


def test_the_country_key_follows_the_newest_window(client: redis.Redis, platform: Settings) -> None:
    agg = aggregates(client, platform)
    agg.apply(batch([(0, 1, "u1", "old", "SE", T0_US)]))
    later = T0_US + WINDOW_S * 1_000_000
    agg.apply(batch([(0, 2, "u1", "new", "SE", later), (0, 3, "u2", "old", "SE", T0_US + 5)]))
    assert client.zrange(trending_key("SE"), 0, -1, withscores=True) == [(b"new", 1.0)]
    assert client.zscore(trending_key("SE", T0_US // 1_000_000), "old") == 2.0


def test_a_marker_in_the_future_is_forgotten(client: redis.Redis, platform: Settings) -> None:
    """A marker left by a client clock in 2099 (an older job) does not freeze the country."""
    stuck = 4_070_908_800  # 2099-01-01
    client.hset(LATEST_WINDOW_KEY, "SE", stuck)
    client.zadd(trending_key("SE"), {"from-2099": 1})
    aggregates(client, platform).apply(batch([(0, 1, "u1", "now", "SE", T0_US)]))
    assert client.zrange(trending_key("SE"), 0, -1, withscores=True) == [(b"now", 1.0)]
    assert client.hget(LATEST_WINDOW_KEY, "SE") == str(T0_US // 1_000_000).encode()


def test_trending_counts_by_event_time_not_start(client: redis.Redis, platform: Settings) -> None:
    """The job clamps event time to arrival; a start_time ahead of it picks no window."""
    rows = batch([(0, 1, "u1", "s1", "FR", T0_US + 4 * 60 * 1_000_000)])
    rows["event_time_us"] = [T0_US]  # arrived at T0: the client's clock ran 4 min ahead
    aggregates(client, platform).apply(rows)
    assert client.hget(LATEST_WINDOW_KEY, "FR") == str(T0_US // 1_000_000).encode()
    assert client.zscore(trending_key("FR", T0_US // 1_000_000), "s1") == 1.0


def test_windows_close_when_the_watermark_passes_and_are_published_once(
    client: redis.Redis, platform: Settings
) -> None:
    lateness_us = platform.flink.trending_lateness_s * 1_000_000
    agg = aggregates(client, platform)
    agg.apply(batch([(0, 1, "u1", "s1", "US", T0_US), (0, 2, "u2", "s1", "US", T0_US + 9)]))
    assert agg.closed_windows() == []  # the watermark has not reached the window's end
    window_end_us = T0_US + WINDOW_S * 1_000_000
    agg.apply(batch([(0, 3, "u3", "s2", "GB", window_end_us + lateness_us)]))
    window = T0_US // 1_000_000
    assert agg.closed_windows() == [("US", window)]
    counts = agg.window_counts(agg.closed_windows())
    assert counts == {
        "window_start_us": [T0_US],
        "window_end_us": [window_end_us],
        "country_code": ["US"],
        "song_id": ["s1"],
        "plays": [2],
    }
    # a late play counts in Redis but does not reopen the window for gold (as in Flink)
    agg.published(agg.closed_windows())
    agg.apply(batch([(0, 4, "u4", "s1", "US", T0_US + 10)]))
    assert agg.closed_windows() == []
    assert client.zscore(trending_key("US", window), "s1") == 3.0
    # the open windows and the watermark survive a restart (they live in Redis)
    restarted = aggregates(client, platform)
    assert restarted.max_event_us == window_end_us + lateness_us
    assert restarted.open_windows == {f"GB|{window_end_us // 1_000_000}"}


def test_unpublished_windows_are_published_again_after_a_crash(
    client: redis.Redis, platform: Settings
) -> None:
    agg = aggregates(client, platform)
    late = T0_US + (WINDOW_S + platform.flink.trending_lateness_s) * 1_000_000
    agg.apply(batch([(0, 1, "u1", "s1", "US", T0_US), (0, 2, "u2", "s2", "US", late)]))
    assert agg.closed_windows() == [("US", T0_US // 1_000_000)]
    # the process dies after the MERGE, before `published`: the next one publishes again
    assert aggregates(client, platform).closed_windows() == [("US", T0_US // 1_000_000)]
