"""encore.delta, the one way Python code reads lake tables outside Spark."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
from deltalake import write_deltalake

from encore.delta import delta_dataset, open_delta, read_delta, read_lake_table
from encore.settings import Settings
from encore.tables import JOB_RUNS

ROOT = Path(__file__).resolve().parents[2]
DAYS = (date(2026, 11, 22), date(2026, 11, 23))


def run(job: str, day: date, rows_out: int) -> dict:
    finished = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
    return {
        "run_id": "r-1",
        "job": job,
        "table_name": "gold.daily_song_plays",
        "day": day,
        "delta_version": 1,
        "rows_in": 10,
        "rows_out": rows_out,
        "seconds": 1.5,
        "finished_at": finished,
    }


def write_runs(settings: Settings) -> None:
    rows = [run("songs", DAYS[0], 3), run("songs", DAYS[1], 4), run("genres", DAYS[1], 5)]
    write_deltalake(
        JOB_RUNS.path(settings),
        pa.Table.from_pylist(rows, schema=JOB_RUNS.arrow_schema()),
        partition_by=["day"],
    )


def test_a_table_nothing_created_reads_empty_with_the_registry_schema(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert open_delta(settings, JOB_RUNS) is None
    empty = read_lake_table(settings, JOB_RUNS)
    assert empty.num_rows == 0
    assert empty.schema == JOB_RUNS.arrow_schema()
    assert read_lake_table(settings, JOB_RUNS, ["job", "day"]).column_names == ["job", "day"]


def test_columns_and_filters_select_rows(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    write_runs(settings)

    on_day = read_lake_table(settings, JOB_RUNS, ["job", "rows_out"], [("day", "=", DAYS[1])])

    assert on_day.column_names == ["job", "rows_out"]
    assert sorted(on_day.to_pylist(), key=lambda r: r["job"]) == [
        {"job": "genres", "rows_out": 5},
        {"job": "songs", "rows_out": 4},
    ]
    delta = open_delta(settings, JOB_RUNS)
    assert delta is not None
    assert read_delta(delta).num_rows == 3
    assert delta_dataset(delta).count_rows() == 3


def test_a_local_table_is_read_through_pyarrows_own_filesystem(tmp_path: Path) -> None:
    """Not delta-rs's Python-implemented one, with which a reading process now and then
    aborts at exit (the module's docstring has the figures)."""
    settings = Settings(home=tmp_path)
    write_runs(settings)
    delta = open_delta(settings, JOB_RUNS)
    assert delta is not None

    filesystem = delta_dataset(delta).filesystem

    assert isinstance(filesystem, pafs.SubTreeFileSystem)
    assert isinstance(filesystem.base_fs, pafs.LocalFileSystem)


def test_no_code_reads_delta_tables_around_encore_delta() -> None:
    """Every reader goes through encore.delta, so none brings the exit abort back.
    Benchmarks are left as their figures were measured."""
    direct = re.compile(r"\.to_pyarrow_(table|dataset)\(")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in (
            "encore",
            "pipelines",
            "models",
            "serving",
            "streaming_api",
            "dags",
            "features",
            "dashboards",
            "tests",
        )
        for path in (ROOT / folder).rglob("*.py")
        if path != ROOT / "encore" / "delta.py" and path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if direct.search(line)
    ]
    assert offenders == []
