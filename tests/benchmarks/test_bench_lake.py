"""benchmarks/bench_lake.py: the engines' gold queries against hand-computed rows, and the
whole harness at a tiny size (a subprocess: it starts its own Spark session)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from encore.tables import SILVER_PLAYS

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_lake  # noqa: E402

DAY = date(2026, 3, 2)
SONGS = {
    "s1": ("a1", "pop", 240_000),
    "s2": ("a2", "rock", 200_000),
}


def play(user, country, song, ms, completed, skipped, day=DAY, liked=False):
    artist, genre, duration = SONGS.get(song, (None, None, None))
    start = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    return {
        "event_id": f"{user}-{song}-{ms}-{day}",
        "user_id": user,
        "song_id": song,
        "start_time": start,
        "end_time": start,
        "ms_played": ms,
        "event_type": "like" if liked else "skip" if skipped else "complete",
        "device_type": "mobile",
        "country_code": country,
        "event_date": day,
        "ingested_at": start,
        "artist_id": artist,
        "album_id": None,
        "genre": genre,
        "duration_ms": duration,
        "song_known": song in SONGS,
        "user_known": True,
        "completed": completed,
        "skipped": skipped,
        "local_hour": 12,
    }


@pytest.fixture(scope="module")
def silver_plays(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("lake") / "silver" / "plays")
    rows = [
        play("u1", "US", "s1", 200_000, True, False),
        play("u2", "US", "s1", 10_000, False, True),
        play("u1", "US", "s2", 180_000, True, False),
        play("u3", "GB", "s1", 200_000, True, False),
        play("u3", "GB", "s9", 5_000, False, True),  # a song the catalog does not know
        play("u4", "US", "s1", 100_000, True, False, day=date(2026, 3, 1)),  # another day
        # likes: counted apart, never plays; u5 only likes, so is no active listener
        play("u5", "US", "s1", 0, False, False, liked=True),
        play("u1", "US", "s2", 0, False, False, liked=True),
    ]
    write_deltalake(
        path,
        pa.Table.from_pylist(rows, schema=SILVER_PLAYS.arrow_schema()),
        partition_by=["event_date"],
    )
    return path


EXPECTED = {
    "daily_song_plays": {
        ("US", "mobile", "s1", "a1", "pop", True, 2, 1, 2, 1, 1, 210_000),
        ("US", "mobile", "s2", "a2", "rock", True, 1, 1, 1, 1, 0, 180_000),
        ("GB", "mobile", "s1", "a1", "pop", True, 1, 0, 1, 1, 0, 200_000),
        ("GB", "mobile", "s9", None, None, False, 1, 0, 1, 0, 1, 5_000),
    },
    "daily_active_users": {("US", 2), ("GB", 1), ("ALL", 3)},
    "skip_rates": {
        ("song", "s1", "pop", 3, 1, round(1 / 3, 9)),
        ("song", "s2", "rock", 1, 0, 0.0),
        ("song", "s9", "unknown", 1, 1, 1.0),
        ("genre", "pop", "pop", 3, 1, round(1 / 3, 9)),
        ("genre", "rock", "rock", 1, 0, 0.0),
        ("genre", "unknown", "unknown", 1, 1, 1.0),
    },
}


@pytest.mark.parametrize("engine", bench_lake.ENGINES)
@pytest.mark.parametrize("query", bench_lake.QUERIES)
def test_engine_queries_match_hand_computed_rows(silver_plays, engine, query):
    pytest.importorskip(engine)
    rows = bench_lake.ENGINE_QUERIES[engine](query, silver_plays, DAY)
    assert bench_lake.comparable(rows, bench_lake.COMPARED[query]) == EXPECTED[query]
    assert rows.num_rows == len(EXPECTED[query])


def test_compare_reports_a_difference():
    columns = bench_lake.COMPARED["daily_active_users"]
    spark = pa.table({"country_code": ["US", "ALL"], "dau": [2, 3], "day": [DAY, DAY]})
    same = pa.table({"country_code": ["ALL", "US"], "dau": [3, 2]})
    other = pa.table({"country_code": ["ALL", "US"], "dau": [3, 1]})
    assert bench_lake.compare("daily_active_users", spark, same) == {"agrees": True}
    differs = bench_lake.compare("daily_active_users", spark, other)
    assert not differs["agrees"]
    assert (differs["only_in_spark"], differs["only_in_engine"]) == (1, 1)
    assert differs["examples"] == {"spark": [("US", 2)], "engine": [("US", 1)]}
    assert columns == ("country_code", "dau")


@pytest.mark.spark
@pytest.mark.slow
def test_tiny_build_reports_every_job_and_the_engines_agree(tmp_path):
    from pipelines.lake.audit import JOBS

    out = tmp_path / "lake.json"
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_lake.py", "--sizes", "2000", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert len(result["load_avg_before"]) == len(result["load_avg_after"]) == 3
    (size,) = result["sizes"]
    assert size["events"] == 2000
    assert size["dims"]["dims.songs"] == 500 and size["dims"]["dims.users"] == 100

    jobs = {job["job"]: job for job in size["spark"]["jobs"]}
    assert list(jobs) == [j.name for j in JOBS if j.name not in bench_lake.NOT_RUN]
    for job in jobs.values():
        assert job["status"] == "ok", job
        assert job["tables"] and job["peak_jvm_rss_mb"] > 100, job
        for table in job["tables"]:
            assert table["rows_in"] >= 0 and table["rows_out"] > 0 and table["seconds"] > 0
    assert jobs["silver_plays"]["status"] == "ok", jobs["silver_plays"]
    (silver,) = jobs["silver_plays"]["tables"]
    assert silver["rows_in"] == 2000
    assert 0 < size["redelivered"] < 20
    assert silver["rows_out"] == 2000 - size["redelivered"]

    for query in bench_lake.QUERIES:
        assert size["engines"][query]["spark_rows"] > 0
        for engine in bench_lake.ENGINES:
            figures = size["engines"][query][engine]
            if "error" in figures:  # only an engine that is not installed may fail
                assert "ModuleNotFoundError" in figures["error"], figures
                continue
            assert figures["peak_rss_mb"] > 0 and figures["seconds"] >= 0
            assert figures["agrees"] is True, (query, engine, figures)
