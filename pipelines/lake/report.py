"""Read-only summaries of the built lake: what ``encore demo`` prints and dashboards show.

Input: the lake's Delta tables (``encore.tables``), read with delta-rs and polars, never
Spark: a summary reads one day's partition or a few hundred rows, and its readers (the demo,
the dashboards of issue 13) must not need a JVM. Output: plain data (dataclasses, lists).
Schedule: on demand, after ``encore lake build``.

A table nothing has created yet, or a day it does not hold, gives an empty result (an empty
list, or None), never an exception: a fresh platform has no lake yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from encore.delta import open_delta, read_lake_table
from encore.settings import Settings
from encore.tables import (
    DAILY_ACTIVE_USERS,
    DAILY_SONG_PLAYS,
    DIM_ARTISTS,
    DIM_SONGS,
    JOB_RUNS,
    PLAY_EVENTS,
    QUALITY_RESULTS,
    SKIP_RATES,
    Table,
)

if TYPE_CHECKING:
    import polars as pl

ALL_COUNTRIES = "ALL"
"""``gold.daily_active_users``' country_code of every country together."""


@dataclass(frozen=True)
class SongPlays:
    song_id: str
    title: str | None
    """None when the song is not in ``dims.songs``."""
    artist: str | None
    """The artist's name; None when the artist is not in ``dims.artists``."""
    plays: int


@dataclass(frozen=True)
class ActiveUsers:
    """Distinct listeners of all countries over 1, 7 and 28 days ending on ``day``."""

    day: date
    dau: int
    wau: int
    mau: int


@dataclass(frozen=True)
class SkipRate:
    subject_id: str
    """The genre, or the song id (by ``scope``)."""
    plays: int
    skips: int
    skip_rate: float


@dataclass(frozen=True)
class TableChecks:
    """The quality checks run on one table's days."""

    table: str
    passed: int
    failed: int
    failed_checks: tuple[str, ...]
    """Names of the checks that failed (each once), sorted."""


@dataclass(frozen=True)
class TableRuns:
    """What the build audit recorded for one table."""

    table: str
    runs: int
    """Job runs that wrote the table (one per day built)."""
    rows_out: int
    """The runs' rows out, summed: a daily table's rows over the days built."""
    seconds: float


def _read(
    settings: Settings,
    table: Table,
    filters: list[tuple] | None = None,
    columns: list[str] | None = None,
) -> pl.DataFrame:
    """Rows of ``table`` matching ``filters`` (partition filters prune files); an empty frame
    with the registry's columns when the table does not exist."""
    import polars as pl

    return pl.from_arrow(read_lake_table(settings, table, columns, filters))


def bronze_days(settings: Settings) -> list[date]:
    """The days ``bronze.play_events`` holds events of, oldest first (from the Delta log's
    partition values: no data file is read)."""
    delta = open_delta(settings, PLAY_EVENTS)
    if delta is None:
        return []
    days = {p["event_date"] for p in delta.partitions() if p.get("event_date")}
    return sorted(date.fromisoformat(day) for day in days)


def top_songs(settings: Settings, day: date, n: int = 10) -> list[SongPlays]:
    """The ``n`` most played songs of ``day`` over all countries (``gold.daily_song_plays``),
    ties by song id, with titles and artist names from the dimensions."""
    import polars as pl

    plays = _read(
        settings, DAILY_SONG_PLAYS, [("day", "=", day)], ["song_id", "artist_id", "plays"]
    )
    top = (
        plays.group_by("song_id")
        .agg(pl.col("artist_id").first(), pl.col("plays").sum())
        .sort(["plays", "song_id"], descending=[True, False])
        .head(n)
    )
    if top.is_empty():
        return []
    songs = _read(
        settings,
        DIM_SONGS,
        [("song_id", "in", top["song_id"].to_list())],
        ["song_id", "title", "artist_id"],
    )
    # the song's artist as the catalog has it now; the play's when the song left the catalog
    top = top.join(songs, on="song_id", how="left", suffix="_dim").with_columns(
        pl.coalesce("artist_id_dim", "artist_id").alias("artist_id")
    )
    artist_ids = top["artist_id"].drop_nulls().unique().to_list()
    artists = _read(
        settings, DIM_ARTISTS, [("artist_id", "in", artist_ids or [""])], ["artist_id", "name"]
    )
    top = top.join(artists, on="artist_id", how="left").sort(
        ["plays", "song_id"], descending=[True, False]
    )
    return [
        SongPlays(row["song_id"], row["title"], row["name"], row["plays"])
        for row in top.iter_rows(named=True)
    ]


def active_users(settings: Settings, day: date) -> ActiveUsers | None:
    """DAU, WAU and MAU of all countries on ``day``; None when the day is not built."""
    rows = _read(
        settings,
        DAILY_ACTIVE_USERS,
        [("day", "=", day), ("country_code", "=", ALL_COUNTRIES)],
        ["dau", "wau", "mau"],
    ).rows(named=True)
    return ActiveUsers(day, rows[0]["dau"], rows[0]["wau"], rows[0]["mau"]) if rows else None


def worst_skip_rates(
    settings: Settings, day: date, n: int = 5, scope: str = "genre"
) -> list[SkipRate]:
    """The ``n`` highest skip rates of ``day`` in ``scope`` (genre | song); ties: more plays
    first (the firmer rate), then by id."""
    rates = _read(
        settings,
        SKIP_RATES,
        [("day", "=", day), ("scope", "=", scope)],
        ["subject_id", "plays", "skips", "skip_rate"],
    ).sort(["skip_rate", "plays", "subject_id"], descending=[True, True, False])
    return [SkipRate(**row) for row in rates.head(n).iter_rows(named=True)]


def quality_summary(settings: Settings, since: datetime) -> list[TableChecks]:
    """Per table, the quality checks run since ``since`` (``checked_at``) that passed and
    failed, by table name."""
    import polars as pl

    results = _read(settings, QUALITY_RESULTS).filter(pl.col("checked_at") >= since)
    summary = (
        results.group_by("table_name")
        .agg(
            pl.col("passed").sum().alias("passed"),
            (~pl.col("passed")).sum().alias("failed"),
            pl.col("check_name").filter(~pl.col("passed")).unique().sort().alias("failed_checks"),
        )
        .sort("table_name")
    )
    return [
        TableChecks(r["table_name"], r["passed"], r["failed"], tuple(r["failed_checks"]))
        for r in summary.iter_rows(named=True)
    ]


def runs_summary(settings: Settings, since: datetime) -> list[TableRuns]:
    """Per table, the job runs the audit recorded since ``since`` (``finished_at``): how
    many, their rows out and seconds summed, in the order the tables were first written."""
    import polars as pl

    runs = _read(settings, JOB_RUNS).filter(pl.col("finished_at") >= since)
    summary = (
        runs.group_by("table_name")
        .agg(
            pl.len().alias("runs"),
            pl.col("rows_out").sum(),
            pl.col("seconds").sum(),
            pl.col("finished_at").min().alias("first"),
        )
        .sort(["first", "table_name"])
    )
    return [
        TableRuns(r["table_name"], r["runs"], r["rows_out"], round(r["seconds"], 3))
        for r in summary.iter_rows(named=True)
    ]
