"""lake_daily end to end (dags/lake_daily.py): ``airflow dags test`` on a small simulated
day against the real services, the data it built checked; the same interval again changes
nothing; a bad bronze row stops the run before it publishes.

The three runs share one world, in file order (each test builds on the state the one
before left): a lake_daily run costs a minute or two of Spark start-ups."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest

from encore.delta import read_lake_table
from encore.tables import (
    ARTIST_TOP_SONGS,
    DAILY_SONG_PLAYS,
    PLAY_EVENTS,
    SILVER_PLAYS,
    TABLES,
)
from pipelines.lake.publish import PUBLISHED_COLUMNS
from tests.dags.conftest import run_dag
from tests.dags.lake_world import LakeWorld, bronze_rows, build_lake_world, write_bronze

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.slow]

D = date(2026, 11, 29)
RUN = "2026-11-30"  # the run at D + 1 builds D
TASKS = ("dims", "silver", "gold", "quality", "publish")


@pytest.fixture(scope="module")
def world(airflow_settings, tmp_path_factory) -> LakeWorld:
    return build_lake_world(airflow_settings, tmp_path_factory.mktemp("lake"), [D])


def rows_of_day(world: LakeWorld, table) -> list[dict]:
    """``table``'s rows of ``D``, sorted (every column), [] before it exists."""
    data = read_lake_table(world.settings, table)
    if data is None:
        return []
    rows = [r for r in data.to_pylist() if r[table.day_column] == D]
    return sorted(rows, key=lambda r: [(v is None, str(v)) for v in r.values()])


def daily_tables() -> list:
    return [
        t for t in TABLES.values() if t.layer in ("silver", "gold") and t.writer.startswith("pipe")
    ]


def published(world: LakeWorld) -> list[tuple]:
    with psycopg.connect(world.settings.postgres.effective_dsn) as connection:
        return connection.execute(
            f"SELECT {', '.join(PUBLISHED_COLUMNS)} FROM artist_top_songs ORDER BY 1, 3, 2"
        ).fetchall()


def test_a_run_builds_checks_and_publishes_the_day(world):
    result = run_dag(world.settings, "lake_daily", RUN)

    assert result.state == "success", result.explain()
    assert result.tasks == dict.fromkeys(TASKS, "success"), result.explain()
    bronze_ids = {r["event_id"] for r in rows_of_day(world, PLAY_EVENTS)}
    silver = rows_of_day(world, SILVER_PLAYS)
    assert {r["event_id"] for r in silver} == bronze_ids and len(silver) == len(bronze_ids)
    gold = rows_of_day(world, DAILY_SONG_PLAYS)
    assert sum(r["plays"] + r["likes"] for r in gold) == len(silver)
    assert sum(r["plays"] for r in gold) == sum(r["event_type"] != "like" for r in silver)
    top = rows_of_day(world, ARTIST_TOP_SONGS)
    assert top, "no top songs built"
    expected = sorted(
        (tuple(r[c] for c in PUBLISHED_COLUMNS) for r in top), key=lambda r: (r[0], r[2], r[1])
    )
    assert published(world) == expected
    assert "passed" in result.output and "quality check failed" not in result.output


def test_running_the_interval_again_changes_nothing(world):
    before = {t.qualified_name: rows_of_day(world, t) for t in daily_tables()}
    published_before = published(world)
    assert before["gold.daily_song_plays"], "the first run built nothing"

    result = run_dag(world.settings, "lake_daily", RUN)

    assert result.state == "success", result.explain()
    after = {t.qualified_name: rows_of_day(world, t) for t in daily_tables()}
    changed = [name for name in before if before[name] != after[name]]
    assert not changed, f"tables whose rows of {D} changed: {changed}"
    assert published(world) == published_before


def test_a_failing_quality_check_stops_the_run_before_publishing(world):
    published_before = published(world)
    (bad,) = bronze_rows(
        [
            {
                "event_id": "00000000-0000-4000-8000-000000000001",
                "user_id": "u0",
                "song_id": rows_of_day(world, SILVER_PLAYS)[0]["song_id"],
                "start_time": f"{D}T12:00:00Z",
                "end_time": f"{D}T12:03:00Z",
                "ms_played": 1000,
                "event_type": "play",
                "device_type": "mobile",
                "country_code": "GB",
            }
        ]
    )
    write_bronze(world.settings, [{**bad, "ms_played": -1000}])  # past the contract, as if

    result = run_dag(world.settings, "lake_daily", RUN)

    assert result.state == "failed", result.explain()
    assert result.tasks["publish"] == "upstream_failed", result.explain()
    failed = [task for task, state in result.tasks.items() if state == "failed"]
    assert failed == ["silver"], result.explain()  # its write's checks refuse the day
    assert "in_range(ms_played, 0, None)" in result.output, result.explain()
    assert published(world) == published_before
