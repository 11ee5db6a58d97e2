"""The dashboard's library against the analytics world: each figure recomputed here another
way, mostly from ``silver.plays`` with polars (the gold jobs are Spark), and the empty lake."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import polars as pl
import pytest

from dashboards import lake, metrics, realtime, recommendations
from dashboards.metrics import Filters
from encore.delta import read_lake_table
from encore.settings import LakeSettings, Settings
from encore.tables import DAILY_ACTIVE_USERS, DIM_ARTISTS, DIM_SONGS, SILVER_PLAYS

RECENT_DAYS = 3

# -- the world, recomputed from silver ------------------------------------------------------


@pytest.fixture(scope="module")
def world(analytics_world):
    return analytics_world


@pytest.fixture(scope="module")
def plays(world) -> pl.DataFrame:
    """Every listening play of the world (likes are actions, not plays, in gold)."""
    rows = pl.from_arrow(read_lake_table(world.settings, SILVER_PLAYS))
    return rows.filter(pl.col("event_type") != "like")


def recent(world) -> Filters:
    """The lake's last days, whose period before the lake also holds."""
    return Filters(world.days[-RECENT_DAYS], world.days[-1])


def in_range(plays: pl.DataFrame, start: date, end: date) -> pl.DataFrame:
    return plays.filter(pl.col("event_date").is_between(start, end))


def expected_activity(plays: pl.DataFrame, start: date, end: date) -> dict[str, float]:
    """DAU (mean), WAU and MAU (on ``end``), plays, hours, from silver, one group of
    listeners (a country, or all)."""
    days = in_range(plays, start, end)
    dau = days.group_by("event_date").agg(pl.col("user_id").n_unique())["user_id"]
    n_days = (end - start).days + 1
    return {
        "dau": dau.sum() / n_days,  # a day without plays counts as 0
        "wau": in_range(plays, end - timedelta(6), end)["user_id"].n_unique(),
        "mau": in_range(plays, end - timedelta(27), end)["user_id"].n_unique(),
        "plays": days.height,
        "listening_hours": days["ms_played"].sum() / 3_600_000,
    }


def _before(filters: Filters) -> tuple[date, date]:
    before = filters.previous()
    return before.start, before.end


def assert_overview(found: metrics.Overview, now: dict, before: dict | None) -> None:
    for name, value in now.items():
        metric = getattr(found, name)
        assert metric.value == pytest.approx(value), name
        if before is None:
            assert metric.previous is None, name
        else:
            assert metric.previous == pytest.approx(before[name]), name
            assert metric.change == pytest.approx(value - before[name]), name


# The world's tests are integration tests; the empty lake's below are not.
@pytest.mark.integration
@pytest.mark.spark
# the first test to ask for the world builds it: its timeout covers a lake build beside other
# Spark work
@pytest.mark.timeout(2700)
class TestOnTheWorld:
    def test_filter_options_are_the_lakes(self, world, plays):
        options = metrics.filter_options(world.settings)
        assert (options.first_day, options.last_day) == (world.days[0], world.days[-1])
        assert list(options.countries) == sorted(plays["country_code"].unique())
        assert list(options.devices) == sorted(plays["device_type"].unique())
        # the last week the lake holds (all of it when it holds less)
        start = max(world.days[-1] - timedelta(6), world.days[0])
        assert options.default_filters() == Filters(start, world.days[-1])

    def test_overview_against_the_days_before(self, world, plays):
        filters = recent(world)
        found = metrics.overview(world.settings, filters)
        before = filters.previous()
        assert (before.start, before.end) == (world.days[-6], world.days[-4])
        assert_overview(
            found,
            expected_activity(plays, filters.start, filters.end),
            expected_activity(plays, before.start, before.end),
        )
        assert found.daily["day"].to_list() == world.days[-RECENT_DAYS:]
        # the change is relative to the previous value
        assert found.plays.relative_change == pytest.approx(
            found.plays.change / found.plays.previous
        )

    def test_no_previous_period_before_the_lake(self, world, plays):
        filters = Filters(world.days[0], world.days[RECENT_DAYS - 1])
        found = metrics.overview(world.settings, filters)
        assert_overview(found, expected_activity(plays, filters.start, filters.end), None)

    def test_overview_of_countries_and_devices(self, world, plays):
        filters = recent(world)
        counts = plays["country_code"].value_counts(sort=True)["country_code"].to_list()
        one, two = counts[0], counts[1]

        found = metrics.overview(world.settings, Filters(filters.start, filters.end, (one,)))
        mine = plays.filter(pl.col("country_code") == one)
        assert_overview(
            found,
            expected_activity(mine, filters.start, filters.end),
            expected_activity(mine, *_before(filters)),
        )

        # several countries: each country's distinct listeners, summed (as the table says)
        found = metrics.overview(world.settings, Filters(filters.start, filters.end, (one, two)))
        per_country = [
            expected_activity(plays.filter(pl.col("country_code") == c), filters.start, filters.end)
            for c in (one, two)
        ]
        for name in ("dau", "wau", "mau", "plays"):
            assert getattr(found, name).value == pytest.approx(sum(e[name] for e in per_country))
        assert any("counts twice" in note for note in found.notes)

        # a device: daily listeners, plays and hours of that device; no WAU or MAU
        device = plays["device_type"].value_counts(sort=True)["device_type"][0]
        chosen = Filters(filters.start, filters.end, (one,), (device,))
        found = metrics.overview(world.settings, chosen)
        expected = expected_activity(
            mine.filter(pl.col("device_type") == device), filters.start, filters.end
        )
        for name in ("dau", "plays", "listening_hours"):
            assert getattr(found, name).value == pytest.approx(expected[name]), name
        assert found.wau.value is None and found.mau.value is None
        assert found.plays.value < metrics.overview(world.settings, filters).plays.value

    def test_trends_rank_songs_artists_genres_devices(self, world, plays):
        filters = recent(world)
        self.check_trends(world, in_range(plays, filters.start, filters.end), filters)

    def test_trends_by_country_and_device(self, world, plays):
        filters = recent(world)
        country = plays["country_code"].value_counts(sort=True)["country_code"][0]
        device = plays["device_type"].value_counts(sort=True)["device_type"][0]
        chosen = Filters(filters.start, filters.end, (country,), (device,))
        rows = in_range(plays, filters.start, filters.end).filter(
            (pl.col("country_code") == country) & (pl.col("device_type") == device)
        )
        self.check_trends(world, rows, chosen)
        # one country without a device: genres come from genre_trends' country rows
        rows = in_range(plays, filters.start, filters.end).filter(pl.col("country_code") == country)
        self.check_trends(world, rows, Filters(filters.start, filters.end, (country,)))

    @staticmethod
    def check_trends(world, rows: pl.DataFrame, filters: Filters) -> None:
        found = metrics.trends(world.settings, filters, top=5)
        songs = (
            rows.group_by("song_id")
            .agg(pl.len().alias("plays"))
            .sort(["plays", "song_id"], descending=[True, False])
            .head(5)
        )
        assert found.top_songs["song_id"].to_list() == songs["song_id"].to_list()
        assert found.top_songs["plays"].to_list() == songs["plays"].to_list()
        assert found.top_songs["rank"].to_list() == [1, 2, 3, 4, 5]
        titles = dict(
            pl.from_arrow(read_lake_table(world.settings, DIM_SONGS))
            .select("song_id", "title")
            .iter_rows()
        )
        # a song the catalog does not know is shown by its id
        expected_titles = [titles.get(s, s) for s in songs["song_id"]]
        assert found.top_songs["title"].to_list() == expected_titles

        artists = (
            rows.filter(pl.col("artist_id").is_not_null())
            .group_by("artist_id")
            .agg(pl.len().alias("plays"))
            .sort(["plays", "artist_id"], descending=[True, False])
            .head(5)
        )
        names = dict(
            pl.from_arrow(read_lake_table(world.settings, DIM_ARTISTS))
            .select("artist_id", "name")
            .iter_rows()
        )
        assert found.top_artists["artist"].to_list() == [names[a] for a in artists["artist_id"]]
        assert found.top_artists["plays"].to_list() == artists["plays"].to_list()

        genres = rows.with_columns(pl.col("genre").fill_null("unknown")).group_by("genre").len()
        assert dict(found.top_genres.select("genre", "plays").iter_rows()) == dict(
            genres.iter_rows()
        )
        assert found.top_genres["share"].sum() == pytest.approx(1.0)

        per_day = rows.group_by("event_date", "song_id").len()
        top = songs["song_id"][0]
        expected = per_day.filter(pl.col("song_id") == top).sort("event_date")
        series = found.songs_daily.filter(pl.col("title") == titles.get(top, top)).sort("day")
        assert series["plays"].to_list() == expected["len"].to_list()

        devices = rows.group_by("event_date", "device_type").len()
        assert sorted(found.devices_daily.iter_rows()) == sorted(devices.iter_rows())

    def test_retention_matrix_as_of_the_ranges_last_day(self, world, plays):
        end = world.days[-1]
        found = metrics.retention(world.settings, recent(world))
        assert found.as_of == end
        assert found.cohorts.to_dicts() == expected_cohorts(plays, end)
        assert found.cohorts["cohort_week"].n_unique() == 2  # two ISO weeks of first plays
        # a range ending earlier shows the cohorts as they were on its last day
        middle = world.days[-3]
        found = metrics.retention(world.settings, Filters(world.days[0], middle))
        assert found.as_of == middle
        assert found.cohorts.to_dicts() == expected_cohorts(plays, middle)

    def test_skip_rates_over_the_range(self, world, plays):
        filters = recent(world)
        rows = in_range(plays, filters.start, filters.end)
        self.check_skips(world, rows, filters)
        country = plays["country_code"].value_counts(sort=True)["country_code"][0]
        device = plays["device_type"].value_counts(sort=True)["device_type"][0]
        chosen = Filters(filters.start, filters.end, (country,), (device,))
        self.check_skips(
            world,
            rows.filter((pl.col("country_code") == country) & (pl.col("device_type") == device)),
            chosen,
        )

    @staticmethod
    def check_skips(world, rows: pl.DataFrame, filters: Filters) -> None:
        song_plays = rows.group_by("song_id").agg(
            pl.len().alias("plays"), pl.col("skipped").cast(pl.Int64).sum().alias("skips")
        )
        # a threshold that leaves some songs out
        threshold = int(song_plays["plays"].median())
        found = metrics.skips(world.settings, filters, min_plays=threshold, top=5)
        assert found.overall == pytest.approx(rows["skipped"].mean())
        genres = (
            rows.with_columns(pl.col("genre").fill_null("unknown"))
            .group_by("genre")
            .agg((pl.col("skipped").cast(pl.Int64).sum() / pl.len()).alias("rate"))
        )
        assert dict(found.genres.select("genre", "skip_rate").iter_rows()) == pytest.approx(
            dict(genres.iter_rows())
        )
        expected = song_plays.with_columns((pl.col("skips") / pl.col("plays")).alias("rate"))
        assert dict(found.songs.select("song_id", "skip_rate").iter_rows()) == pytest.approx(
            dict(expected.select("song_id", "rate").iter_rows())
        )
        eligible = expected.filter(pl.col("plays") >= threshold).sort(
            ["rate", "plays", "song_id"], descending=[True, True, False]
        )
        assert found.worst["song_id"].to_list() == eligible["song_id"].head(5).to_list()
        assert found.worst["plays"].min() >= threshold
        assert found.songs.height > found.worst.height

    def test_trending_now_per_country(self, world):
        import redis

        found = realtime.trending_now(world.settings, top=3)
        assert sorted(found.rows["country_code"].unique()) == world.trending_countries
        assert set(found.windows) == set(world.trending_countries)
        client = redis.Redis.from_url(world.settings.redis.effective_url)
        titles = dict(
            pl.from_arrow(read_lake_table(world.settings, DIM_SONGS))
            .select("song_id", "title")
            .iter_rows()
        )
        for country in world.trending_countries:
            scores = {
                s.decode(): int(v)
                for s, v in client.zrange(f"trending:v1:{country}", 0, -1, withscores=True)
            }
            rows = found.rows.filter(pl.col("country_code") == country)
            best = sorted(scores.values(), reverse=True)[: rows.height]
            assert rows["plays"].to_list() == best
            assert rows["rank"].to_list() == list(range(1, rows.height + 1))
            for song, plays, title in rows.select("song_id", "plays", "title").iter_rows():
                assert scores[song] == plays and title == titles[song]
        client.close()
        one = world.trending_countries[0]
        only = realtime.trending_now(world.settings, (one,), top=3)
        assert only.rows["country_code"].unique().to_list() == [one]

    def test_model_versions_and_their_metrics(self, world):
        from mlflow import MlflowClient

        names = recommendations.registered_models(world.settings)
        assert names[0] == world.models["als"]  # the serving model first
        assert world.models["pop"] in names
        found = recommendations.model_versions(world.settings, list(world.models.values()))
        assert set(found["model"]) == set(world.models.values())
        als = found.filter(pl.col("model") == world.models["als"]).row(0, named=True)
        assert "champion" in als["aliases"]
        # the registry metric is also a tag of the version, written apart from the run's metric
        uri = world.settings.mlflow.effective_tracking_uri
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        for row in found.iter_rows(named=True):
            version = client.get_model_version(row["model"], str(row["version"]))
            assert row["ndcg@10"] == pytest.approx(float(version.tags["ndcg_at_10"]))
            assert set(row["aliases"].split(", ")) - {""} == set(version.aliases)

    def test_ab_figures_of_the_range(self, world, plays):
        filters = recent(world)
        figures = recommendations.ab_figures(world.settings, filters)
        variant_plays = in_range(plays, filters.start, filters.end).filter(
            pl.col("variant").is_not_null()
        )
        expected = variant_plays.group_by("variant").agg(
            pl.col("user_id").n_unique().alias("listeners"),
            pl.len().alias("plays"),
            pl.col("skipped").mean().alias("skip_rate"),
        )
        got = figures.variants.select("variant", "listeners", "plays", "skip_rate")
        assert got.height == expected.height
        for variant, listeners, count, rate in expected.iter_rows():
            row = got.filter(pl.col("variant") == variant).row(0)
            assert row[1:3] == (listeners, count)
            assert row[3] == pytest.approx(rate)
        assert set(figures.variants["variant"]) == {"champion", "challenger"}
        assert figures.report.baseline == "champion"
        difference = figures.differences.row(0, named=True)
        assert difference["variant"] == "challenger"
        rates = dict(expected.select("variant", "skip_rate").iter_rows())
        assert difference["skip_rate"] == pytest.approx(rates["challenger"] - rates["champion"])
        assert difference["skip_rate_low"] < difference["skip_rate"] < difference["skip_rate_high"]

    def test_a_new_table_version_is_read_and_an_unchanged_one_is_not(self, world, tmp_path):
        from deltalake import write_deltalake

        copy = world.settings.model_copy(
            update={"lake": world.settings.lake.model_copy(update={"root": str(tmp_path)})}
        )
        shutil.copytree(DAILY_ACTIVE_USERS.path(world.settings), DAILY_ACTIVE_USERS.path(copy))
        first = lake.read_table(copy, DAILY_ACTIVE_USERS)
        before = lake.cache_stats()
        again = lake.read_table(copy, DAILY_ACTIVE_USERS)
        after = lake.cache_stats()
        assert again is first and after.hits == before.hits + 1
        assert after.misses == before.misses

        day = world.days[-1] + timedelta(1)
        row = (
            first.filter(pl.col("country_code") == "ALL")
            .tail(1)
            .with_columns(pl.lit(day).alias("day"), pl.lit(12345).cast(pl.Int64).alias("dau"))
        )
        schema = DAILY_ACTIVE_USERS.arrow_schema()
        write_deltalake(DAILY_ACTIVE_USERS.path(copy), row.to_arrow().cast(schema), mode="append")
        newer = lake.read_table(copy, DAILY_ACTIVE_USERS)
        assert lake.cache_stats().misses == after.misses + 1
        assert newer.height == first.height + 1
        found = metrics.overview(copy, Filters(day, day))
        assert found.dau.value == 12345


def expected_cohorts(plays: pl.DataFrame, as_of: date) -> list[dict]:
    """Weekly cohorts by first play, from silver: each cohort's share active each week."""
    history = (
        plays.filter(pl.col("event_date") <= as_of)
        .select(
            "user_id",
            (pl.col("event_date") - pl.duration(days=pl.col("event_date").dt.weekday() - 1)).alias(
                "week"
            ),
        )
        .unique()
    )
    cohorts = history.group_by("user_id").agg(pl.col("week").min().alias("cohort_week"))
    sizes = cohorts.group_by("cohort_week").len("cohort_size")
    active = (
        history.join(cohorts, on="user_id")
        .with_columns(
            ((pl.col("week") - pl.col("cohort_week")).dt.total_days() // 7)
            .cast(pl.Int32)
            .alias("weeks_since")
        )
        .group_by("cohort_week", "weeks_since")
        .len("active")
    )
    this_monday = as_of - timedelta(as_of.weekday())
    grid = sizes.with_columns(
        pl.int_ranges(0, ((pl.lit(this_monday) - pl.col("cohort_week")).dt.total_days() // 7) + 1)
        .cast(pl.List(pl.Int32))
        .alias("weeks_since")
    ).explode("weeks_since")
    rows = (
        grid.join(active, on=["cohort_week", "weeks_since"], how="left")
        .with_columns(pl.col("active").fill_null(0).cast(pl.Int64))
        .with_columns(
            pl.col("cohort_size").cast(pl.Int64),
            (pl.col("active") / pl.col("cohort_size")).alias("retention"),
        )
        .select("cohort_week", "weeks_since", "cohort_size", "active", "retention")
        .sort("cohort_week", "weeks_since")
    )
    return rows.to_dicts()


# -- an empty lake: no world needed ----------------------------------------------------------


@pytest.fixture()
def empty(tmp_path) -> Settings:
    return Settings(lake=LakeSettings(root=str(tmp_path / "lake")))


def test_an_empty_lake_says_so_and_names_the_command(empty):
    status = lake.lake_status(empty)
    assert not status.has_data
    assert status.present == ()
    assert len(status.missing) == len(lake.GOLD_TABLES)
    assert "`encore lake build`" in status.fill_hint and "`make demo`" in status.fill_hint


def test_the_figures_of_an_empty_lake_are_empty_not_errors(empty):
    options = metrics.filter_options(empty)
    assert options.first_day is None and options.countries == ()
    filters = options.default_filters()
    found = metrics.overview(empty, filters)
    assert found.dau.value is None and found.plays.previous is None
    assert found.daily.is_empty()
    trends = metrics.trends(empty, filters)
    assert trends.top_songs.is_empty() and trends.top_genres.is_empty()
    assert metrics.retention(empty, filters).as_of is None
    skips = metrics.skips(empty, filters)
    assert skips.overall is None and skips.worst.is_empty()


def test_filters_compare_with_the_period_just_before():
    filters = Filters(date(2026, 11, 23), date(2026, 11, 29), ("SE",), ("web",))
    before = filters.previous()
    assert (before.start, before.end, before.days) == (date(2026, 11, 16), date(2026, 11, 22), 7)
    assert (before.countries, before.devices) == (("SE",), ("web",))
    with pytest.raises(ValueError, match="starts"):
        Filters(date(2026, 11, 2), date(2026, 11, 1))
