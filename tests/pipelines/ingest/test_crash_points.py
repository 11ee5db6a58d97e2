"""Exactly-once across crashes placed on purpose (``pipelines.ingest.faults``), with the real
job, Kafka, Delta and Redis.

For each crash point the job runs with ``settings.flink.fault`` set and kills its own process
group there, at the first bronze batch after a checkpoint of its run completed; the test
waits for the group to be gone, restarts the job without the fault (it must restore the newest
retained checkpoint), keeps producing, and then checks, against the topic read back from
Kafka:

- the replay path the point exercises ran (commit log, Delta and Redis offsets, the restored
  checkpoint's Kafka source position);
- bronze holds exactly the first copy of every valid event: the same (partition, offset) set,
  the same event ids, every column equal to the sent JSON; the rejected table holds exactly
  the malformed records' positions;
- every Redis window key ``trending:v1:<country>:<window>`` equals the counts of the unique
  events by ``min(start_time, arrival)``, and the offsets hash equals bronze's last offsets;
- ``gold.trending_songs_realtime`` equals the same counts per (window, country, song) once a
  later event closes the windows.

No sleep decides anything: every wait polls an observable condition.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import redis

from encore import supervisor
from encore.delta import read_lake_table
from encore.keys import TRENDING_PREFIX, offsets_key
from encore.settings import Settings
from encore.tables import PLAY_EVENTS, PLAY_EVENTS_REJECTED, TRENDING_SONGS
from pipelines.ingest import control
from pipelines.ingest.faults import checkpoint_source_offsets
from tests.pipelines.ingest.conftest import produce, wait_for
from tests.pipelines.ingest.crashing import (
    Position,
    SentTopic,
    commit_lines,
    job_dead,
    produce_steadily,
    read_topic,
    window_counts,
)
from tests.pipelines.ingest.producing import mixed_records

pytestmark = [pytest.mark.crash, pytest.mark.integration, pytest.mark.flink, pytest.mark.slow]

WINDOW_S = 30
# longer than the event-time span of the whole mixed stream (1,800 events 50 ms apart): no
# mixed event can be late however the source interleaves the partitions. Below 100: the job
# writes the lateness as INTERVAL 'n' SECOND, whose default precision is two digits
LATENESS_S = 99


@pytest.fixture()
def settings(ingest_settings: Settings) -> Settings:
    flink = ingest_settings.flink.model_copy(
        update={"trending_window_s": WINDOW_S, "trending_lateness_s": LATENESS_S}
    )
    return ingest_settings.model_copy(update={"flink": flink})


def with_fault(settings: Settings, fault: str) -> Settings:
    return settings.model_copy(update={"flink": settings.flink.model_copy(update={"fault": fault})})


def valid_payloads(records: list[tuple[str, bytes]], unique_ids: set[str]) -> set[bytes]:
    """The payloads of the valid events among ``records`` (a malformed record built from an
    event carries an id of its own, never one of ``unique_ids``)."""
    valid = set()
    for _, value in records:
        try:
            if json.loads(value)["event_id"] in unique_ids:
                valid.add(value)
        except (ValueError, KeyError, TypeError):
            continue
    return valid


def closing_event(start: datetime) -> bytes:
    """A valid play of song ``closer`` starting at ``start``."""
    record = {
        "event_id": str(uuid.uuid4()),
        "user_id": "closer",
        "song_id": "closer",
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(seconds=30)).isoformat(),
        "ms_played": 30_000,
        "event_type": "play",
        "device_type": "mobile",
        "country_code": "SE",
    }
    return json.dumps(record).encode()


def bronze_positions(settings: Settings) -> set[Position]:
    table = read_lake_table(settings, PLAY_EVENTS, ["kafka_partition", "kafka_offset"])
    return set(
        zip(
            table.column("kafka_partition").to_pylist(),
            table.column("kafka_offset").to_pylist(),
            strict=True,
        )
    )


def redis_offsets(settings: Settings) -> dict[int, int]:
    client = redis.Redis.from_url(settings.redis.effective_url)
    stored = client.hgetall(offsets_key(settings.kafka.play_events_topic))
    return {int(p): int(o) for p, o in stored.items()}


class Crash:
    """One crash at ``point`` and the restart: what was true at the moment of death."""

    def __init__(self, settings: Settings, point: str, seed: int) -> None:
        self.settings = settings
        records, self.unique_ids, _ = mixed_records(1800, 180, 60, seed=seed)
        third = len(records) // 3
        self.valid_values = valid_payloads(records, self.unique_ids)
        produce(settings, records[:third])
        control.start(with_fault(settings, point))
        # keep the stream flowing while the job works towards its crash point: every
        # micro-batch then holds rows and checkpoints keep completing
        wait_for(
            lambda: (
                job_dead(settings)
                or any(line["sink"] == "bronze" for line in commit_lines(settings))
            ),
            "the first bronze commit (or the crash)",
        )
        sender = threading.Thread(
            target=produce_steadily, args=(settings, records[third : 2 * third], 50)
        )
        sender.start()
        wait_for(lambda: job_dead(settings), f"the job to kill itself at {point}")
        log = supervisor.log_file(settings.home, control.NAME).read_text()
        assert f"fault injection: killing the job at {point}" in log
        sender.join()

        # the state the crash left, before anything replays
        self.lines_before = len(commit_lines(settings))
        self.bronze_before = bronze_positions(settings)
        self.delta_before = control.committed_offsets(settings, control.kafka_partitions(settings))[
            PLAY_EVENTS.name
        ]
        self.redis_before = redis_offsets(settings)

        # the restart restores the newest retained checkpoint, not Delta's offsets
        self.checkpoint = control.latest_checkpoint(settings)
        assert self.checkpoint is not None and (self.checkpoint / "_metadata").is_file()
        command = control.job_command(settings)
        assert command[command.index("--restore") + 1] == self.checkpoint.as_uri()
        self.source_position = checkpoint_source_offsets(
            self.checkpoint, settings.kafka.play_events_topic
        )
        assert set(self.source_position) == set(control.kafka_partitions(settings))
        control.start(settings)
        produce(settings, records[2 * third :])
        control.wait_until_caught_up(settings, timeout_s=300)

        # an event an hour later than the mixed stream closes all its trending windows; sent
        # once everything else is in, so no mixed event can arrive behind it
        closer = closing_event(datetime.now(UTC) - timedelta(seconds=1))
        self.valid_values.add(closer)
        self.unique_ids.add(json.loads(closer)["event_id"])
        produce(settings, [("closer", closer)])
        control.wait_until_caught_up(settings, timeout_s=300)
        self.sent: SentTopic = read_topic(settings, self.valid_values)
        # caught up means a checkpoint covers the topic; kept rows may still be pending in
        # Flink state until the next bronze commit (bronze_max_delay_ms)
        wait_for(
            lambda: len(bronze_positions(settings)) >= len(self.sent.bronze),
            f"{len(self.sent.bronze)} rows in bronze",
            timeout_s=120,
        )
        self.lines_after = commit_lines(settings)[self.lines_before :]

    def after_restart(self, key: str) -> int:
        """The sum of ``key`` over the commit-log lines after the restart (micro-batches and
        bronze commits)."""
        return sum(line.get(key, 0) for line in self.lines_after)

    def assert_exact(self) -> None:
        settings, sent = self.settings, self.sent
        # bronze: exactly the first copy of each valid event, every column as sent
        bronze = read_lake_table(settings, PLAY_EVENTS)
        rows = bronze.to_pylist()
        ids = [row["event_id"] for row in rows]
        assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} duplicate rows in bronze"
        assert set(ids) == self.unique_ids
        by_position = {(row["kafka_partition"], row["kafka_offset"]): row for row in rows}
        assert set(by_position) == set(sent.bronze)
        for position, expected in sent.bronze.items():
            stored = dict(by_position[position])
            assert stored.pop("ingested_at") is not None
            assert stored == expected, position
        rejected = read_lake_table(
            settings, PLAY_EVENTS_REJECTED, ["kafka_partition", "kafka_offset"]
        )
        rejected_positions = list(
            zip(
                rejected.column("kafka_partition").to_pylist(),
                rejected.column("kafka_offset").to_pylist(),
                strict=True,
            )
        )
        assert sorted(rejected_positions) == sorted(sent.rejected)

        # Redis: every window key holds the unique events' counts; offsets = bronze's last
        client = redis.Redis.from_url(settings.redis.effective_url, decode_responses=True)
        stored_windows: dict[tuple[str, int], Counter[str]] = {}
        for key in client.scan_iter(f"{TRENDING_PREFIX}:*:*"):
            _, _, country, window = key.split(":")
            stored_windows[(country, int(window))] = Counter(
                {song: int(plays) for song, plays in client.zrange(key, 0, -1, withscores=True)}
            )
        assert stored_windows == window_counts(sent, WINDOW_S)
        last: dict[int, int] = {}
        for partition, offset in sent.bronze:
            last[partition] = max(offset, last.get(partition, -1))
        assert redis_offsets(settings) == last

        # gold: the final count of every closed window (all but the closer's)
        expected_gold = {
            (window, country, song): plays
            for (country, window), songs in window_counts(sent, WINDOW_S).items()
            for song, plays in songs.items()
            if song != "closer"
        }
        wait_for(
            lambda: len(gold(settings)) >= len(expected_gold),
            f"{len(expected_gold)} gold rows",
            timeout_s=120,
        )
        assert gold(settings) == expected_gold


def gold(settings: Settings) -> dict[tuple[int, str, str], int]:
    """(window start epoch s, country, song) -> plays of ``gold.trending_songs_realtime``."""
    table = read_lake_table(settings, TRENDING_SONGS)
    out = {}
    for row in table.to_pylist():
        start = int(row["window_start"].timestamp())
        assert int(row["window_end"].timestamp()) == start + WINDOW_S
        assert row["window_date"] == row["window_start"].date()
        out[(start, row["country_code"], row["song_id"])] = row["plays"]
    return out


def redis_applied(crash: Crash) -> set[Position]:
    """The first copies Redis had applied when the job died (at or below its offsets)."""
    return {(p, o) for p, o in crash.sent.bronze if o <= crash.redis_before.get(p, -1)}


def test_crash_after_delta_commit_replays_into_skips(settings: Settings) -> None:
    crash = Crash(settings, "after_delta_commit", seed=21)
    # the dying batch reached Redis and Delta alike, past the restored checkpoint: the
    # replay skipped its records by bronze's offsets (before Redis: what bronze committed,
    # Redis applied first), and Redis still counted each play once (assert_exact)
    assert redis_applied(crash) <= crash.bronze_before
    assert crash.after_restart("skipped") > 0, crash.lines_after[:5]
    crash.assert_exact()


def test_crash_after_redis_writes_delta_and_skips_redis(settings: Settings) -> None:
    crash = Crash(settings, "after_redis", seed=22)
    # Redis applied rows Delta did not hold; the replay skipped them in Redis
    only_in_redis = redis_applied(crash) - crash.bronze_before
    assert only_in_redis, (crash.redis_before, crash.delta_before)
    assert crash.after_restart("redis_skipped") > 0, crash.lines_after[:5]
    crash.assert_exact()  # they are in bronze now, and counted once in Redis


def test_crash_after_checkpoint_restores_pending_rows(settings: Settings) -> None:
    crash = Crash(settings, "after_checkpoint", seed=23)
    # records below the restored checkpoint's source position were read before its barrier:
    # the restarted source never reads them again, so the ones first committed after the
    # restart came back from the checkpoint's state (the pending micro-batch)
    restored = {
        (p, o)
        for p, o in crash.sent.bronze
        if o < crash.source_position[p] and (p, o) not in crash.bronze_before
    }
    assert restored, (crash.source_position, crash.delta_before)
    crash.assert_exact()
