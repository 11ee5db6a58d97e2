"""The dashboard's figures from the gold tables: overview, trends, retention, skips.

Each function takes the settings and a :class:`Filters` (a date range, countries, devices)
and returns a small dataclass of numbers and polars frames; the pages only draw them. Every
read goes through :func:`dashboards.lake.read_table` (cached per Delta version).

How the filters meet the tables, since not every table has every dimension:

* ``gold.daily_active_users`` counts distinct listeners per country and for all countries
  together (``ALL``). With no country chosen the ``ALL`` row is used; with countries chosen
  their rows are summed, so a listener active in two of them counts twice (the table keeps
  no listener ids to count them once). It has no device: with devices chosen, daily
  listeners, plays and hours come from ``gold.country_device_breakdown`` (distinct listeners
  per country and device and day; there is no weekly or monthly count per device).
* ``gold.genre_trends`` and ``gold.skip_rates`` have no device (skip rates no country
  either): with those filters set, the same sums are taken from ``gold.daily_song_plays``
  (plays and skips per song, country and device), which adds up to the same figures.
* ``gold.retention_cohorts`` is over every listener: countries and devices do not apply.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING

from dashboards.lake import read_table
from encore.errors import NotFoundError
from encore.settings import Settings
from encore.tables import (
    COUNTRY_DEVICE_BREAKDOWN,
    DAILY_ACTIVE_USERS,
    DAILY_SONG_PLAYS,
    DIM_ARTISTS,
    DIM_SONGS,
    GENRE_TRENDS,
    RETENTION_COHORTS,
    SKIP_RATES,
)

if TYPE_CHECKING:
    import polars as pl

ALL_COUNTRIES = "ALL"
"""``country_code`` of the rows over every country (a listener counted once)."""
UNKNOWN_GENRE = "unknown"
"""The genre gold gives plays of songs the catalog does not know."""
MS_PER_HOUR = 3_600_000
DEFAULT_DAYS = 7


@dataclass(frozen=True)
class Filters:
    """What an analyst looks at: days ``start`` to ``end`` (both included), and only these
    countries and devices (empty: all of them)."""

    start: date
    end: date
    countries: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ValueError(f"the range starts ({self.start}) after it ends ({self.end})")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Filters:
        """The period of the same length just before, same countries and devices."""
        end = self.start - timedelta(days=1)
        return replace(self, start=end - timedelta(days=self.days - 1), end=end)


@dataclass(frozen=True)
class FilterOptions:
    """What the filters can choose from: the lake's days, countries and devices."""

    first_day: date | None
    last_day: date | None
    countries: tuple[str, ...]
    devices: tuple[str, ...]

    def default_filters(self, days: int = DEFAULT_DAYS) -> Filters:
        """The last ``days`` days the lake holds (today's week when it holds none)."""
        last = self.last_day or date.today()
        first = max(last - timedelta(days=days - 1), self.first_day or date.min)
        return Filters(first, last)


def filter_options(settings: Settings) -> FilterOptions:
    """The days, countries and devices of ``gold.country_device_breakdown`` (the active
    listeners' days when it is empty)."""
    import polars as pl

    rows = read_table(settings, COUNTRY_DEVICE_BREAKDOWN, ["day", "country_code", "device_type"])
    days = rows["day"]
    if rows.is_empty():
        days = read_table(settings, DAILY_ACTIVE_USERS, ["day"])["day"]
    countries = rows.select(pl.col("country_code").unique().sort())["country_code"].to_list()
    devices = rows.select(pl.col("device_type").unique().sort())["device_type"].to_list()
    return FilterOptions(days.min(), days.max(), tuple(countries), tuple(devices))  # type: ignore[arg-type]


# -- overview --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A figure of the range and the same figure over the period just before (None when the
    lake does not hold that whole period, or the figure does not exist for the filters)."""

    value: float | None
    previous: float | None

    @property
    def change(self) -> float | None:
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous

    @property
    def relative_change(self) -> float | None:
        """``change / previous`` (0.1 is +10%); None without a non-zero previous value."""
        change = self.change
        return None if change is None or not self.previous else change / self.previous


@dataclass(frozen=True)
class Overview:
    """Active listeners, plays and listening hours of a range, against the period before.

    ``dau`` is the mean of the range's daily active listeners; ``wau`` and ``mau`` (7 and 28
    days) are as of its last day; ``plays`` and ``listening_hours`` are totals. ``daily``
    has one row per day the lake holds in the range: day, dau, wau, mau, plays,
    listening_hours. ``notes`` say how the filters shaped the counts.
    """

    filters: Filters
    dau: Metric
    wau: Metric
    mau: Metric
    plays: Metric
    listening_hours: Metric
    daily: pl.DataFrame
    notes: tuple[str, ...]


def overview(settings: Settings, filters: Filters) -> Overview:
    """DAU, WAU, MAU, plays and listening hours of ``filters``, each with the period before."""
    current = daily_activity(settings, filters)
    before = filters.previous()
    previous = daily_activity(settings, before)
    complete = previous.height == before.days  # the lake holds every day of that period
    figures = {}
    for name in ("dau", "wau", "mau", "plays", "listening_hours"):
        value = _summary(current, name)
        figures[name] = Metric(value, _summary(previous, name) if complete else None)
    return Overview(filters, daily=current, notes=_overview_notes(filters), **figures)


def _summary(daily: pl.DataFrame, name: str) -> float | None:
    column = daily[name]
    if daily.is_empty() or column.null_count() == daily.height:
        return None
    if name == "dau":
        return float(column.mean())  # type: ignore[arg-type]
    if name in ("wau", "mau"):
        return float(column[-1])  # as of the last day
    return float(column.sum())


def daily_activity(settings: Settings, filters: Filters) -> pl.DataFrame:
    """Per day of the range the lake holds (its ``ALL`` rows): dau, wau, mau, plays,
    listening_hours under the filters; wau and mau are null with a device filter."""
    import polars as pl

    active = read_table(settings, DAILY_ACTIVE_USERS, None, filters.start, filters.end)
    days = active.filter(pl.col("country_code") == ALL_COUNTRIES).select("day")
    if filters.devices:
        rows = read_table(
            settings, COUNTRY_DEVICE_BREAKDOWN, None, filters.start, filters.end
        ).filter(pl.col("device_type").is_in(filters.devices))
        if filters.countries:
            rows = rows.filter(pl.col("country_code").is_in(filters.countries))
        per_day = rows.group_by("day").agg(
            pl.col("listeners").sum().alias("dau"),
            pl.lit(None, pl.Int64).alias("wau"),
            pl.lit(None, pl.Int64).alias("mau"),
            pl.col("plays").sum(),
            (pl.col("ms_played").sum() / MS_PER_HOUR).alias("listening_hours"),
        )
    else:
        chosen = (
            pl.col("country_code").is_in(filters.countries)
            if filters.countries
            else pl.col("country_code") == ALL_COUNTRIES
        )
        per_day = (
            active.filter(chosen)
            .group_by("day")
            .agg(pl.col("dau", "wau", "mau", "plays", "listening_hours").sum())
        )
    # a day none of the chosen countries or devices played is a day of zeros
    zeros = {"dau": 0, "plays": 0, "listening_hours": 0.0}
    if not filters.devices:
        zeros |= {"wau": 0, "mau": 0}
    return (
        days.join(per_day, on="day", how="left")
        .with_columns(pl.col(name).fill_null(value) for name, value in zeros.items())
        .select("day", "dau", "wau", "mau", "plays", "listening_hours")
        .sort("day")
    )


def _overview_notes(filters: Filters) -> tuple[str, ...]:
    notes = [
        f"DAU is the mean over the range's days, WAU and MAU (7 and 28 days) are as of its "
        f"last day, plays and hours are totals; each change compares with the {filters.days} "
        "days before."
    ]
    if filters.devices:
        notes.append(
            "With devices chosen, DAU sums each device's (and country's) distinct daily "
            "listeners, so a listener on two of them counts twice; the lake keeps no weekly "
            "or monthly listeners per device."
        )
    elif len(filters.countries) > 1:
        notes.append(
            "With several countries chosen, each figure is the sum of the countries' own "
            "distinct listeners: a listener active in two of them counts twice."
        )
    return tuple(notes)


# -- trends ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trends:
    """The range's most played songs, artists and genres, and plays per day.

    Rankings: ``top_songs`` (rank, song_id, title, artist, genre, plays), ``top_artists``
    (rank, artist_id, artist, plays), ``top_genres`` (rank, genre, plays, share). Series,
    one row per day and subject: ``songs_daily`` (day, title, plays) and ``artists_daily``
    (day, artist, plays) for the ranked ones, ``genres_daily`` (day, genre, plays) and
    ``devices_daily`` (day, device_type, plays).
    """

    top_songs: pl.DataFrame
    top_artists: pl.DataFrame
    top_genres: pl.DataFrame
    songs_daily: pl.DataFrame
    artists_daily: pl.DataFrame
    genres_daily: pl.DataFrame
    devices_daily: pl.DataFrame


def trends(settings: Settings, filters: Filters, top: int = 10) -> Trends:
    """Top ``top`` songs and artists, every genre, and the daily series, under ``filters``."""
    import polars as pl

    plays = song_plays(settings, filters)
    songs = (
        plays.group_by("song_id")
        .agg(pl.col("plays").sum())
        .filter(pl.col("plays") > 0)
        .sort(["plays", "song_id"], descending=[True, False])
        .head(top)
        .join(song_names(settings), on="song_id", how="left")
        .with_columns(
            pl.col("title").fill_null(pl.col("song_id")),
            pl.col("artist").fill_null("unknown"),
            pl.col("genre").fill_null(UNKNOWN_GENRE),
        )
        .with_row_index("rank", offset=1)
        .select("rank", "song_id", "title", "artist", "genre", "plays")
    )
    artist_names = read_table(settings, DIM_ARTISTS, ["artist_id", "name"])
    artists = (
        plays.filter(pl.col("artist_id").is_not_null())
        .group_by("artist_id")
        .agg(pl.col("plays").sum())
        .filter(pl.col("plays") > 0)
        .sort(["plays", "artist_id"], descending=[True, False])
        .head(top)
        .join(artist_names.rename({"name": "artist"}), on="artist_id", how="left")
        .with_columns(pl.col("artist").fill_null(pl.col("artist_id")))
        .with_row_index("rank", offset=1)
        .select("rank", "artist_id", "artist", "plays")
    )
    songs_daily = (
        plays.join(songs.select("song_id", "title"), on="song_id")
        .group_by("day", "title")
        .agg(pl.col("plays").sum())
        .sort("day", "title")
    )
    artists_daily = (
        plays.join(artists.select("artist_id", "artist"), on="artist_id")
        .group_by("day", "artist")
        .agg(pl.col("plays").sum())
        .sort("day", "artist")
    )
    genres_daily = genre_plays(settings, filters, plays)
    totals = genres_daily.group_by("genre").agg(pl.col("plays").sum())
    genres = (
        totals.filter(pl.col("plays") > 0)
        .with_columns((pl.col("plays") / pl.col("plays").sum()).alias("share"))
        .sort(["plays", "genre"], descending=[True, False])
        .with_row_index("rank", offset=1)
    )
    return Trends(
        top_songs=songs,
        top_artists=artists,
        top_genres=genres,
        songs_daily=songs_daily,
        artists_daily=artists_daily,
        genres_daily=genres_daily,
        devices_daily=device_plays(settings, filters),
    )


def song_plays(settings: Settings, filters: Filters) -> pl.DataFrame:
    """``gold.daily_song_plays`` rows of the range, countries and devices: day, song_id,
    artist_id, genre, plays, skips (summed over the devices when none is chosen).

    Raises:
        NotFoundError: devices are chosen but the table was built before it had a device.
    """
    import polars as pl

    columns = ["day", "country_code", "device_type", "song_id", "artist_id", "genre"]
    rows = read_table(
        settings, DAILY_SONG_PLAYS, [*columns, "plays", "skips"], filters.start, filters.end
    )
    if filters.countries:
        rows = rows.filter(pl.col("country_code").is_in(filters.countries))
    if filters.devices:
        if "device_type" not in rows.columns:
            raise NotFoundError(
                f"{DAILY_SONG_PLAYS.qualified_name} has no device_type column yet, so songs "
                "cannot be filtered by device: rebuild it with `encore lake build`"
            )
        rows = rows.filter(pl.col("device_type").is_in(filters.devices))
    return rows.group_by("day", "song_id").agg(
        pl.col("artist_id").max(),
        pl.col("genre").max(),
        pl.col("plays").sum(),
        pl.col("skips").sum(),
    )


def song_names(settings: Settings) -> pl.DataFrame:
    """song_id, title, artist (name), genre of every catalog song (``dims``)."""
    songs = read_table(settings, DIM_SONGS, ["song_id", "title", "artist_id", "genre"])
    artists = read_table(settings, DIM_ARTISTS, ["artist_id", "name"])
    return songs.join(artists.rename({"name": "artist"}), on="artist_id", how="left").select(
        "song_id", "title", "artist", "genre"
    )


def genre_plays(
    settings: Settings, filters: Filters, song_rows: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Plays per day and genre (day, genre, plays): ``gold.genre_trends`` (its ``ALL`` rows,
    or the chosen countries'), or with devices chosen, ``song_rows`` (:func:`song_plays`)."""
    import polars as pl

    if filters.devices:
        rows = song_plays(settings, filters) if song_rows is None else song_rows
        rows = rows.with_columns(pl.col("genre").fill_null(UNKNOWN_GENRE))
    else:
        rows = read_table(
            settings,
            GENRE_TRENDS,
            ["day", "country_code", "genre", "plays"],
            filters.start,
            filters.end,
        )
        chosen = (
            pl.col("country_code").is_in(filters.countries)
            if filters.countries
            else pl.col("country_code") == ALL_COUNTRIES
        )
        rows = rows.filter(chosen)
    return rows.group_by("day", "genre").agg(pl.col("plays").sum()).sort("day", "genre")


def device_plays(settings: Settings, filters: Filters) -> pl.DataFrame:
    """Plays per day and device (day, device_type, plays), ``gold.country_device_breakdown``."""
    import polars as pl

    rows = read_table(
        settings,
        COUNTRY_DEVICE_BREAKDOWN,
        ["day", "country_code", "device_type", "plays"],
        filters.start,
        filters.end,
    )
    if filters.countries:
        rows = rows.filter(pl.col("country_code").is_in(filters.countries))
    if filters.devices:
        rows = rows.filter(pl.col("device_type").is_in(filters.devices))
    return rows.group_by("day", "device_type").agg(pl.col("plays").sum()).sort("day", "device_type")


# -- retention -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Retention:
    """Weekly cohorts as of ``as_of`` (the latest build day in the range; None: none there):
    ``cohorts`` has cohort_week, weeks_since, cohort_size, active, retention."""

    as_of: date | None
    cohorts: pl.DataFrame


def retention(settings: Settings, filters: Filters) -> Retention:
    """The cohort matrix of ``gold.retention_cohorts`` on its latest day within the range.

    Cohorts are over every listener: the country and device filters do not apply.
    """
    import polars as pl

    rows = read_table(settings, RETENTION_COHORTS, None, filters.start, filters.end)
    if rows.is_empty():
        return Retention(None, rows.drop("day"))
    as_of = rows["day"].max()
    cohorts = (
        rows.filter(pl.col("day") == as_of)
        .select("cohort_week", "weeks_since", "cohort_size", "active", "retention")
        .sort("cohort_week", "weeks_since")
    )
    return Retention(as_of, cohorts)  # type: ignore[arg-type]


# -- skips -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Skips:
    """Skip rates over the range: sum of skips / sum of plays, never a mean of daily rates.

    ``genres`` (genre, plays, skips, skip_rate) and ``songs`` (song_id, title, artist, genre,
    plays, skips, skip_rate), highest rate first; ``worst``: the ``top`` songs with at least
    ``min_plays`` plays, highest rate first (ties: more plays first). ``overall`` is every
    play's rate (None without plays).
    """

    overall: float | None
    genres: pl.DataFrame
    songs: pl.DataFrame
    worst: pl.DataFrame
    min_plays: int


def skips(settings: Settings, filters: Filters, min_plays: int = 20, top: int = 10) -> Skips:
    """Skip rates per genre and song under ``filters``: ``gold.skip_rates``, or with
    countries or devices chosen ``gold.daily_song_plays`` (it has both)."""
    import polars as pl

    if filters.countries or filters.devices:
        per_song = song_plays(settings, filters).with_columns(
            pl.col("genre").fill_null(UNKNOWN_GENRE)
        )
        songs = per_song.group_by("song_id").agg(
            pl.col("genre").max(), pl.col("plays").sum(), pl.col("skips").sum()
        )
        genres = per_song.group_by("genre").agg(pl.col("plays").sum(), pl.col("skips").sum())
    else:
        rows = read_table(
            settings,
            SKIP_RATES,
            ["day", "scope", "subject_id", "genre", "plays", "skips"],
            filters.start,
            filters.end,
        )
        songs = (
            rows.filter(pl.col("scope") == "song")
            .group_by(pl.col("subject_id").alias("song_id"))
            .agg(pl.col("genre").max(), pl.col("plays").sum(), pl.col("skips").sum())
        )
        genres = (
            rows.filter(pl.col("scope") == "genre")
            .group_by(pl.col("subject_id").alias("genre"))
            .agg(pl.col("plays").sum(), pl.col("skips").sum())
        )
    rate = (pl.col("skips") / pl.col("plays")).alias("skip_rate")
    by_rate = {"by": ["skip_rate", "plays"], "descending": [True, True]}
    genres = genres.filter(pl.col("plays") > 0).with_columns(rate).sort(**by_rate)
    names = song_names(settings).select("song_id", "title", "artist")
    songs = (
        songs.filter(pl.col("plays") > 0)
        .with_columns(rate)
        .join(names, on="song_id", how="left")
        .with_columns(
            pl.col("title").fill_null(pl.col("song_id")), pl.col("artist").fill_null("unknown")
        )
        .select("song_id", "title", "artist", "genre", "plays", "skips", "skip_rate")
        .sort(by=["skip_rate", "plays", "song_id"], descending=[True, True, False])
    )
    worst = songs.filter(pl.col("plays") >= min_plays).head(top)
    total_plays = int(genres["plays"].sum())
    overall = float(genres["skips"].sum()) / total_plays if total_plays else None
    return Skips(overall, genres, songs, worst, min_plays)
