"""Clock errors cannot stop trending: the real job (Kafka, Flink, Delta, Redis) end to end.

A far-future event (2099) is rejected with its reason; an event 4 minutes ahead of its
arrival (inside the clock skew) is stored with its claimed start_time but counted when it
arrived, so it moves neither the watermark nor the country's current window. Plays sent in
later windows must then reach both the current trending key in Redis and the gold table.
The equal-strictness corpus goes through the same job into ``bronze.play_events_rejected``.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
import redis

from encore.delta import read_lake_table
from encore.keys import LATEST_WINDOW_KEY, read_current_trending, trending_key
from encore.settings import Settings
from encore.tables import PLAY_EVENTS, PLAY_EVENTS_REJECTED, TRENDING_SONGS
from pipelines.ingest import control
from tests.pipelines.ingest.conftest import produce
from tests.pipelines.ingest.conftest import wait_for as poll_until
from tests.pipelines.ingest.producing import bad_corpus

pytestmark = [pytest.mark.integration, pytest.mark.flink, pytest.mark.slow]

WINDOW_S = 10


def play(song: str, start: datetime, country: str = "SE") -> tuple[str, bytes]:
    record = {
        "event_id": str(uuid.uuid4()),
        "user_id": f"listener-{song}",
        "song_id": song,
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(seconds=30)).isoformat(),
        "ms_played": 30_000,
        "event_type": "play",
        "device_type": "mobile",
        "country_code": country,
    }
    return record["user_id"], json.dumps(record).encode()


# the job creates its tables when it opens: an error reading them means "not yet"
wait_for = partial(poll_until, timeout_s=90, interval_s=0.5, tolerate=(Exception,))


def next_window(moment: datetime) -> datetime:
    """The first instant of the window after ``moment``'s, plus a second of margin."""
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp((epoch // WINDOW_S + 1) * WINDOW_S + 1, UTC)


def sleep_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


def test_clock_errors_neither_freeze_trending_nor_pass_the_contract(
    ingest_settings: Settings,
) -> None:
    flink = ingest_settings.flink.model_copy(
        update={"trending_window_s": WINDOW_S, "trending_lateness_s": 1}
    )
    settings = ingest_settings.model_copy(update={"flink": flink})
    client = redis.Redis.from_url(settings.redis.effective_url)
    control.start(settings)

    now = datetime.now(UTC)
    future = datetime(2099, 1, 1, tzinfo=UTC)
    skewed = play("skewed", now + timedelta(minutes=4))
    first = [play("first", now) for _ in range(3)]
    bad = bad_corpus(now)
    produce(
        settings,
        [*first, play("from-2099", future), skewed, *[(case, value) for case, value, _ in bad]],
    )
    produced = datetime.now(UTC)  # the broker stamped every arrival between now and this

    # the far-future event and every bad record are rejected, each with its reason
    rejected = wait_for(
        lambda: (
            (t := read_lake_table(settings, PLAY_EVENTS_REJECTED))
            and t.num_rows >= 1 + len(bad)
            and t
        ),
        "the rejected rows",
    )
    reasons = rejected.column("reason").to_pylist()
    payloads = rejected.column("raw_payload").to_pylist()
    assert rejected.num_rows == 1 + len(bad)
    by_song = dict(zip(payloads, reasons, strict=True))
    reason_2099 = next(r for p, r in by_song.items() if '"from-2099"' in p)
    assert reason_2099.startswith("start_time: start_time 2099-01-01T00:00:00+00:00")
    assert "(events.max_clock_skew_s)" in reason_2099
    for case, value, field in bad:
        assert by_song[value.decode()].startswith(f"{field}: "), case

    # the skewed play is in bronze with the start_time its client claimed
    bronze = wait_for(
        lambda: (t := read_lake_table(settings, PLAY_EVENTS)) and t.num_rows >= 4 and t,
        "bronze rows",
    )
    starts = dict(
        zip(
            bronze.column("song_id").to_pylist(),
            bronze.column("start_time").to_pylist(),
            strict=True,
        )
    )
    assert sorted(bronze.column("song_id").to_pylist()) == ["first"] * 3 + ["skewed"]
    assert starts["skewed"] == datetime.fromisoformat(json.loads(skewed[1])["start_time"])

    # two later windows: the current key follows each, the gold table closes the earlier ones
    second_at = next_window(datetime.now(UTC))
    sleep_until(second_at)
    produce(settings, [play("second", datetime.now(UTC)) for _ in range(2)])
    wait_for(
        lambda: read_current_trending(client, "SE") == [("second", 2)],
        "trending:v1:SE to move to the second window",
    )
    third_at = next_window(datetime.now(UTC))
    sleep_until(third_at)
    produce(settings, [play("third", datetime.now(UTC))])
    wait_for(
        lambda: read_current_trending(client, "SE") == [("third", 1)],
        "trending:v1:SE to move to the third window",
    )
    marker = int(client.hget(LATEST_WINDOW_KEY, "SE"))
    assert marker == int(third_at.timestamp()) // WINDOW_S * WINDOW_S
    assert marker <= datetime.now(UTC).timestamp()  # never beyond what arrivals allow
    first_window = int(now.timestamp()) // WINDOW_S * WINDOW_S
    # the skewed play counted once, in the window it arrived in (the broker's time, which may
    # be a window after ``now`` when producing crossed a boundary), not 4 minutes ahead
    arrival_windows = range(
        first_window, int(produced.timestamp()) // WINDOW_S * WINDOW_S + 1, WINDOW_S
    )
    counted = {
        window: client.zscore(trending_key("SE", window), "skewed") for window in arrival_windows
    }
    assert sorted(score for score in counted.values() if score is not None) == [1.0], counted
    skewed_window = next(window for window, score in counted.items() if score is not None)
    assert not list(client.scan_iter(trending_key("SE", first_window + 240 // WINDOW_S * WINDOW_S)))

    def gold() -> dict[tuple[str, int], int]:
        table = read_lake_table(settings, TRENDING_SONGS)
        return {
            (song, int(start.timestamp())): plays
            for song, start, plays in zip(
                table.column("song_id").to_pylist(),
                table.column("window_start").to_pylist(),
                table.column("plays").to_pylist(),
                strict=True,
            )
        }

    second_window = int(second_at.timestamp()) // WINDOW_S * WINDOW_S
    wait_for(lambda: ("second", second_window) in gold(), "the second window in gold")
    # the third window stays open (nothing later has arrived): no row yet, none in the future
    assert gold() == {
        ("first", first_window): 3,
        ("skewed", skewed_window): 1,
        ("second", second_window): 2,
    }
