"""Erasure and export of one listener in the lake (delta-rs only, no services).

Bronze is written by the ingestion job's own writer, in several commits, then compacted, so
the listener's rows sit in live files, in tombstoned files and in the log's statistics.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from pydantic import SecretStr

from encore.delta import read_lake_table
from encore.errors import ConfigurationError
from encore.settings import Settings
from encore.tables import (
    DAILY_SONG_PLAYS,
    ERASURES,
    PLAY_EVENTS,
    PLAY_EVENTS_REJECTED,
    QUALITY_RESULTS,
    SILVER_PLAYS,
    SILVER_SESSIONS,
    TRAINING_INTERACTIONS,
    USER_DAILY_LISTENING,
    Table,
)
from pipelines.ingest.delta_sink import OffsetTiedWriter, app_id
from pipelines.lake import privacy, quality
from pipelines.lake.pseudonyms import listener_key

from .conftest import write_rows

ALICE, ZOE, CAROL = "listener-alice-7f3a", "listener-zoe-42c9", "listener-carol-9e1d"
# ZOE sorts last: she is the max of user_id in every file, so the log's statistics name her
TOPIC = "play-events"
SECRET = "a-test-pseudonym-secret-of-at-least-32-bytes"


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    lake = {"root": str(tmp_path / "lake"), "pseudonym_secret": SECRET}
    return Settings(home=tmp_path, lake=lake)


def plays(offsets: range, day: date) -> dict[str, list]:
    users = [(ALICE, ZOE, CAROL)[o % 3] for o in offsets]
    start = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=20)
    starts = [start + timedelta(minutes=o) for o in offsets]
    n = len(users)
    return {
        "event_id": [f"00000000-0000-4000-8000-{o:012d}" for o in offsets],
        "user_id": users,
        "song_id": [f"song-{o % 5}" for o in offsets],
        "start_time": starts,
        "end_time": [s + timedelta(minutes=3) for s in starts],
        "ms_played": [180_000] * n,
        "event_type": ["complete"] * n,
        "device_type": ["mobile"] * n,
        "country_code": ["DE"] * n,
        "schema_version": [1] * n,
        "event_date": [day] * n,
        "kafka_partition": [0] * n,
        "kafka_offset": list(offsets),
        "ingested_at": [start] * n,
        "variant": [None] * n,
    }


def dead_letters(payloads: list[str], first_offset: int) -> dict[str, list]:
    now = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)
    n = len(payloads)
    return {
        "raw_payload": payloads,
        "reason": ["event_type: not one of play|skip|complete|like"] * n,
        "topic": [TOPIC] * n,
        "kafka_partition": [1] * n,
        "kafka_offset": list(range(first_offset, first_offset + n)),
        "rejected_at": [now] * n,
        "rejected_date": [now.date()] * n,
    }


def bad_event(user_id: str, n: int) -> str:
    return json.dumps({"event_id": f"e-{user_id}-{n}", "user_id": user_id, "event_type": "x"})


UNATTRIBUTABLE = ["not json {", json.dumps([1, 2]), json.dumps({"song_id": "s"})]


def write_bronze(settings: Settings) -> None:
    """Three users, several commits and files; compaction leaves tombstoned small files."""
    writer = OffsetTiedWriter(PLAY_EVENTS, settings, TOPIC)
    writer.write(plays(range(0, 6), date(2026, 11, 22)))
    writer.write(plays(range(6, 12), date(2026, 11, 23)))
    writer.write(plays(range(12, 18), date(2026, 11, 22)))
    DeltaTable(PLAY_EVENTS.path(settings)).optimize.compact()
    writer = OffsetTiedWriter(PLAY_EVENTS, settings, TOPIC)  # a restarted job
    writer.write(plays(range(18, 24), date(2026, 11, 23)))

    rejected = OffsetTiedWriter(PLAY_EVENTS_REJECTED, settings, TOPIC)
    rejected.write(dead_letters([bad_event(u, 0) for u in (ALICE, ZOE, CAROL)], 0))
    rejected.write(dead_letters([*UNATTRIBUTABLE, bad_event(ZOE, 1), bad_event(CAROL, 1)], 3))


def rows(settings: Settings, table, key: str) -> list[dict]:
    data = read_lake_table(settings, table).to_pylist()
    return sorted(data, key=lambda r: r[key])


def files_mentioning(root: Path, needle: str) -> list[str]:
    """Every file under ``root`` whose raw bytes, or decoded content, contain ``needle``."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        contents = [path.read_bytes().decode("latin-1")]
        if path.suffix == ".parquet":  # compressed pages: decode them too
            parquet = pq.ParquetFile(path)
            contents += [str(parquet.read().to_pylist()), str(parquet.metadata.to_dict())]
            contents += [str(parquet.metadata.row_group(0).to_dict())]
        elif path.suffix == ".json":
            contents.append(str([json.loads(line) for line in path.read_text().splitlines()]))
        if any(needle in c for c in contents):
            found.append(str(path.relative_to(root)))
    return found


def test_forget_removes_every_trace_and_keeps_everyone_else(settings: Settings) -> None:
    write_bronze(settings)
    lake = Path(settings.lake_root)
    plays_before = rows(settings, PLAY_EVENTS, "event_id")
    rejected_before = rows(settings, PLAY_EVENTS_REJECTED, "kafka_offset")
    # the scan can fail: before, the id is in data files, tombstones and the log's stats
    mentioning = files_mentioning(lake, ZOE)
    assert any("_delta_log" in f for f in mentioning)
    assert any(f.endswith(".parquet") and "_delta_log" not in f for f in mentioning)

    exported = privacy.export(settings, ZOE)
    assert sorted(r["event_id"] for r in exported["tables"]["bronze.play_events"]) == [
        r["event_id"] for r in plays_before if r["user_id"] == ZOE
    ]
    assert sorted(r["raw_payload"] for r in exported["tables"]["bronze.play_events_rejected"]) == (
        sorted([bad_event(ZOE, 0), bad_event(ZOE, 1)])
    )
    json.dumps(exported)  # JSON-ready as returned

    erasure = privacy.forget(settings, ZOE)

    assert files_mentioning(lake, ZOE) == []
    assert rows(settings, PLAY_EVENTS, "event_id") == [
        r for r in plays_before if r["user_id"] != ZOE
    ]
    assert rows(settings, PLAY_EVENTS_REJECTED, "kafka_offset") == [
        r for r in rejected_before if r["raw_payload"] not in (bad_event(ZOE, 0), bad_event(ZOE, 1))
    ]
    by_table = {t.table: t for t in erasure.tables}
    assert by_table["bronze.play_events"].rows_deleted == 8
    assert by_table["bronze.play_events_rejected"].rows_deleted == 2
    assert by_table["bronze.play_events_rejected"].rows_unattributed == len(UNATTRIBUTABLE)
    assert erasure.files_removed > 0
    for erased in erasure.tables:
        for path in erased.files_removed:
            assert not (lake / erased.table.replace(".", "/") / path).exists()
    # the DELETE's three inputs, and the two small files compaction had replaced: they
    # still held her rows
    assert len(by_table["bronze.play_events"].files_removed) == 3 + 2

    # the ingestion job's exactly-once bookkeeping survives the log compaction
    table = DeltaTable(PLAY_EVENTS.path(settings))
    assert table.transaction_version(app_id(TOPIC, 0)) == 23
    assert (
        OffsetTiedWriter(PLAY_EVENTS, settings, TOPIC).write(
            plays(range(20, 27), date(2026, 11, 23))
        )
        == 3
    )
    table.update_incremental()
    table.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    assert read_lake_table(settings, PLAY_EVENTS).num_rows == 16 + 3

    log = privacy.erasures(settings)
    assert len(log) == 1
    assert log[0]["request_id"] == erasure.request_id
    assert log[0]["subject_hmac"] == privacy.subject_hmac(settings, ZOE)
    assert log[0]["tables_touched"] == "bronze.play_events,bronze.play_events_rejected"
    assert (log[0]["rows_deleted"], log[0]["rows_unattributed"]) == (10, 3)
    assert ZOE not in json.dumps(log, default=str)


def test_forgetting_twice_finds_nothing_the_second_time(settings: Settings) -> None:
    write_bronze(settings)
    privacy.forget(settings, CAROL)
    again = privacy.forget(settings, CAROL)
    assert again.rows_deleted == 0 and again.files_removed == 0
    assert [r["tables_touched"] for r in privacy.erasures(settings)] == [
        "bronze.play_events,bronze.play_events_rejected",
        "",
    ]
    assert privacy.export(settings, CAROL)["tables"] == {
        "bronze.play_events": [],
        "bronze.play_events_rejected": [],
    }


def test_unparseable_dead_letters_are_left_alone_and_counted(settings: Settings) -> None:
    garbled = f'{{"user_id": "{ALICE}", "song_'  # truncated: nobody can be sure whose it is
    OffsetTiedWriter(PLAY_EVENTS_REJECTED, settings, TOPIC).write(
        dead_letters([garbled, "plain garbage", bad_event(ALICE, 0)], 0)
    )
    erasure = privacy.forget(settings, ALICE)
    (rejected,) = erasure.tables
    assert (rejected.rows_deleted, rejected.rows_unattributed) == (1, 2)
    assert rejected.unattributed_mentioning_user == 1
    payloads = [r["raw_payload"] for r in rows(settings, PLAY_EVENTS_REJECTED, "kafka_offset")]
    assert payloads == [garbled, "plain garbage"]


def test_the_erasure_log_is_not_a_user_level_table() -> None:
    names = [t.qualified_name for t in privacy.user_level_tables()]
    assert ERASURES.qualified_name not in names
    assert {PLAY_EVENTS.qualified_name, PLAY_EVENTS_REJECTED.qualified_name} <= set(names)


def test_the_default_pseudonym_key_is_refused_outside_development(tmp_path: Path) -> None:
    production = Settings(home=tmp_path, development=False, lake={"root": str(tmp_path / "lake")})
    with pytest.raises(ConfigurationError, match="PSEUDONYM_SECRET"):
        privacy.forget(production, ZOE)
    with pytest.raises(ConfigurationError, match="PSEUDONYM_SECRET"):
        privacy.export(production, ZOE)
    assert not (tmp_path / "lake").exists(), "refused before touching the lake"
    development = production.model_copy(update={"development": True})
    assert privacy.export(development, ZOE)["tables"] == {}


def test_the_erasure_log_pseudonym_is_not_the_listener_key(settings: Settings) -> None:
    other = settings.model_copy(
        update={
            "lake": settings.lake.model_copy(update={"pseudonym_secret": SecretStr(SECRET + "-2")})
        }
    )
    assert privacy.subject_hmac(settings, ZOE) != listener_key(settings, ZOE)
    assert privacy.subject_hmac(other, ZOE) != privacy.subject_hmac(settings, ZOE)


# -- the whole lake: silver, gold (pseudonymous), training --------------------------------------

LISTENERS = (ALICE, ZOE, CAROL)
DAYS = (date(2026, 11, 22), date(2026, 11, 23))


def silver_plays(day: date) -> list[dict]:
    start = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=20)
    return [
        {
            "event_id": f"{day}-{user}-{n}",
            "user_id": user,
            "song_id": f"song-{n}",
            "start_time": start + timedelta(minutes=n),
            "end_time": start + timedelta(minutes=n + 3),
            "ms_played": 180_000,
            "event_type": "complete",
            "device_type": "mobile",
            "country_code": "DE",
            "event_date": day,
            "ingested_at": start,
            "song_known": True,
            "user_known": True,
            "completed": True,
            "skipped": False,
            "local_hour": 21,
        }
        for user in LISTENERS
        for n in range(2)
    ]


def silver_sessions(day: date) -> list[dict]:
    start = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=20)
    return [
        {
            "session_id": f"session-{day}-{n}",
            "user_id": user,
            "session_start": start,
            "session_end": start + timedelta(minutes=5),
            "session_date": day,
            "length_s": 300.0,
            "plays": 2,
            "skips": 0,
            "completed": 2,
            "distinct_songs": 2,
            "device_type": "mobile",
            "country_code": "DE",
        }
        for n, user in enumerate(LISTENERS)
    ]


def daily_listening(settings: Settings, day: date) -> list[dict]:
    return [
        {
            "day": day,
            "listener_key": listener_key(settings, user),
            "country_code": "DE",
            "plays": 2,
            "skips": 0,
            "completed": 2,
            "ms_played": 360_000,
            "distinct_songs": 2,
            "distinct_artists": 1,
            "sessions": 1,
            "top_genre": "pop",
        }
        for user in LISTENERS
    ]


def interactions(day: date) -> list[dict]:
    start = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=20)
    return [
        {
            "cutoff_date": day,
            "user_id": user,
            "song_id": f"song-{n}",
            "plays": 1,
            "completed": 1,
            "skips": 0,
            "likes": 0,
            "weight": 1.0,
            "first_played_at": start,
            "last_played_at": start,
        }
        for user in LISTENERS
        for n in range(2)
    ]


def song_plays(day: date) -> list[dict]:
    """An aggregate over all three listeners: no listener column, left alone."""
    return [
        {
            "day": day,
            "country_code": "DE",
            "device_type": "mobile",
            "song_id": f"song-{n}",
            "song_known": True,
            "plays": 3,
            "likes": 0,
            "listeners": 3,
            "completed": 3,
            "skips": 0,
            "ms_played": 540_000,
        }
        for n in range(2)
    ]


def write_lake(settings: Settings) -> list[tuple[Table, str]]:
    """Every user-level layer, one commit per day (so the log's statistics name listeners);
    returns each table's listener column."""
    write_bronze(settings)
    for day in DAYS:
        write_rows(settings, SILVER_PLAYS, silver_plays(day))
        write_rows(settings, SILVER_SESSIONS, silver_sessions(day))
        write_rows(settings, USER_DAILY_LISTENING, daily_listening(settings, day))
        write_rows(settings, TRAINING_INTERACTIONS, interactions(day))
        write_rows(settings, DAILY_SONG_PLAYS, song_plays(day))
    return [
        (SILVER_PLAYS, "user_id"),
        (SILVER_SESSIONS, "user_id"),
        (USER_DAILY_LISTENING, "listener_key"),
        (TRAINING_INTERACTIONS, "user_id"),
    ]


def all_rows(settings: Settings, table: Table) -> list[dict]:
    data = read_lake_table(settings, table).to_pylist()
    return sorted(data, key=lambda r: [str(r[c]) for c in table.key])


def test_forget_covers_silver_gold_and_training(settings: Settings) -> None:
    listener_tables = write_lake(settings)
    lake = Path(settings.lake_root)
    zoe_key = listener_key(settings, ZOE)
    value = {"user_id": ZOE, "listener_key": zoe_key}
    tables = [t for t, _ in listener_tables] + [DAILY_SONG_PLAYS]
    before = {t.qualified_name: all_rows(settings, t) for t in tables}
    # the scan can fail: her pseudonym is in gold's data files and its log's statistics
    assert any("user_daily_listening/_delta_log" in f for f in files_mentioning(lake, zoe_key))
    assert any("silver/sessions/_delta_log" in f for f in files_mentioning(lake, ZOE))

    exported = privacy.export(settings, ZOE)["tables"]
    for table, column in listener_tables:
        mine = [r for r in before[table.qualified_name] if r[column] == value[column]]
        assert len(exported[table.qualified_name]) == len(mine) > 0, table.qualified_name
        assert {r[column] for r in exported[table.qualified_name]} == {value[column]}
    assert len(exported["bronze.play_events"]) == 8
    assert len(exported["bronze.play_events_rejected"]) == 2
    assert DAILY_SONG_PLAYS.qualified_name not in exported

    erasure = privacy.forget(settings, ZOE)

    assert files_mentioning(lake, ZOE) == []
    assert files_mentioning(lake, zoe_key) == []
    for table, column in listener_tables:
        assert all_rows(settings, table) == [
            r for r in before[table.qualified_name] if r[column] != value[column]
        ], table.qualified_name
    assert all_rows(settings, DAILY_SONG_PLAYS) == before[DAILY_SONG_PLAYS.qualified_name]
    by_table = {t.table: t for t in erasure.tables}
    # two days x (two plays, one session, one day of listening, two interactions)
    assert by_table["silver.plays"].rows_deleted == 4
    assert by_table["silver.sessions"].rows_deleted == 2
    assert by_table["gold.user_daily_listening"].rows_deleted == 2
    assert by_table["training.interactions"].rows_deleted == 4
    assert "gold.daily_song_plays" not in by_table
    assert privacy.erasures(settings)[0]["rows_deleted"] == 8 + 2 + 4 + 2 + 2 + 4
    assert {
        name: rows for name, rows in privacy.export(settings, ZOE)["tables"].items() if rows
    } == {}


# -- quality examples: a failing check's example row is one listener's -------------------------


def test_forget_blanks_the_quality_examples_that_name_the_listener(settings: Settings) -> None:
    day = date(2026, 11, 23)
    alice_key, carol_key = listener_key(settings, ALICE), listener_key(settings, CAROL)

    def example(user: str) -> str:
        row = {"cutoff_date": str(day), "user_id": user, "song_id": "song-1", "weight": -0.5}
        return quality.pseudonymise(settings, json.dumps(row))

    listening = json.dumps({"day": str(day), "listener_key": alice_key, "plays": -1})
    quality.append_results(
        settings,
        TRAINING_INTERACTIONS,
        day,
        [
            quality.CheckResult("in_range(weight, 0, None)", False, 4, 1, example(ALICE)),
            quality.CheckResult("unique(cutoff_date, user_id, song_id)", True, 4, 0, None),
        ],
    )
    quality.append_results(
        settings,
        SILVER_SESSIONS,
        day,
        [quality.CheckResult("not_null(x)", False, 3, 1, example(CAROL))],
    )
    quality.append_results(
        settings,
        USER_DAILY_LISTENING,
        day,
        [quality.CheckResult("in_range(plays, 1, None)", False, 2, 1, listening)],
    )
    assert alice_key in example(ALICE) and ALICE not in example(ALICE)  # pseudonymised
    lake = Path(settings.lake_root)
    # the scan can fail: her pseudonym is in the results' data files and log statistics
    assert files_mentioning(lake, alice_key)
    before = rows(settings, QUALITY_RESULTS, "check_name")

    exported = privacy.export(settings, ALICE)["tables"]["ops.quality_results"]
    assert sorted(r["example"] for r in exported) == sorted([example(ALICE), listening])

    erasure = privacy.forget(settings, ALICE)

    assert files_mentioning(lake, alice_key) == []
    assert files_mentioning(lake, ALICE) == []
    (result,) = [t for t in erasure.tables if t.table == "ops.quality_results"]
    assert (result.rows_blanked, result.rows_deleted, result.log_compacted) == (2, 0, True)
    # every verdict stays; only her two examples are gone; Carol's is as it was
    blanked = {"in_range(weight, 0, None)", "in_range(plays, 1, None)"}
    assert rows(settings, QUALITY_RESULTS, "check_name") == [
        {**r, "example": None} if r["check_name"] in blanked else r for r in before
    ]
    assert carol_key in next(r["example"] for r in before if r["check_name"] == "not_null(x)")
    [logged] = privacy.erasures(settings)
    assert logged["tables_touched"] == "ops.quality_results"
    assert json.loads(logged["details"])[0]["rows_blanked"] == 2
    assert privacy.export(settings, ALICE)["tables"] == {"ops.quality_results": []}


@pytest.mark.integration
def test_forget_deletes_the_listeners_precomputed_lists_of_every_model(
    platform: Settings, tmp_path: Path
) -> None:
    import redis

    from encore.keys import PrecomputedRecs, read_recs, recs_key, write_recs

    lake = platform.lake.model_copy(
        update={"root": str(tmp_path / "lake"), "pseudonym_secret": SecretStr(SECRET)}
    )
    settings = platform.model_copy(update={"lake": lake})
    models = ("encore-als-privacy", "encore-bpr-privacy")
    # ids may contain ":": this is another listener's list, whose id ends with Alice's
    lookalike = f"friend:{ALICE}"
    listeners = (ALICE, CAROL, lookalike)
    recs = PrecomputedRecs("3", datetime(2026, 11, 23, tzinfo=UTC), [("song-1", 0.5)])
    with redis.Redis.from_url(settings.redis.effective_url) as client:
        for model in models:
            for listener in listeners:
                write_recs(client, model, listener, recs, ttl_s=600)

        erasure = privacy.forget(settings, ALICE)

        assert erasure.recs_deleted == len(models) and not erasure.recs_unreachable
        assert privacy.PRECOMPUTED_RECS in erasure.tables_touched
        for model in models:
            assert client.exists(recs_key(model, ALICE)) == 0
            assert read_recs(client, model, CAROL) == recs
            assert read_recs(client, model, lookalike) == recs
        assert privacy.forget(settings, ALICE).recs_deleted == 0


def test_an_unreachable_redis_is_said_not_raised(settings: Settings) -> None:
    from tests.conftest import free_port

    closed = settings.model_copy(
        update={"redis": settings.redis.model_copy(update={"port": free_port()})}
    )
    erasure = privacy.forget(closed, ALICE)
    assert erasure.recs_unreachable and erasure.recs_deleted == 0
    assert privacy.describe(erasure)["recs_unreachable"] is True
