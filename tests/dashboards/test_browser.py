"""The analysts' dashboard in a real browser, as a person uses it (issue 13).

The ``dashboard`` service runs as the platform runs it (``encore up dashboard``) over the
analytics world (a week built by the real jobs); headless Chromium opens each page, waits
until Streamlit has run it and its charts have drawn, and checks the title, that no error
is shown, and figures against values this test computes itself from the gold tables, Redis
and silver. A second dashboard over an empty lake must say "No data yet" and how to fill it.

Every page's full screenshot is saved (:func:`tests.dashboards.browser.artifacts_dir`); with
``ENCORE_UPDATE_SCREENSHOTS=1`` a small copy also replaces the README's in
``docs/screenshots/`` (``make screenshots``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from playwright.sync_api import Browser, Page, expect

from encore.delta import read_lake_table
from encore.keys import trending_key
from encore.tables import (
    DAILY_ACTIVE_USERS,
    DAILY_SONG_PLAYS,
    DIM_ARTISTS,
    DIM_SONGS,
    RETENTION_COHORTS,
    SILVER_PLAYS,
    SKIP_RATES,
)
from tests.analytics_world import AnalyticsWorld
from tests.dashboards import browser
from tests.dashboards.browser import (
    VIEWPORT,
    chart_count,
    choose,
    dashboard,
    errors_shown,
    free_port,
    metrics,
    number,
    open_page,
    rows_after,
    save_screenshot,
    title,
    wait_for_charts,
    wait_for_text,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.spark,
    # the first test may build the analytics world (minutes; far more beside other Spark work)
    pytest.mark.timeout(2700),
]

PAGES = {
    "overview": "Overview",
    "trends": "Trends",
    "retention": "Retention",
    "skips": "Skips",
    "real-time": "Real time",
    "recommendations": "Recommendations",
}
"""Each page's url path and title (the dashboard's contract)."""
GOLD_PAGES = ("overview", "trends", "retention", "skips")
"""The pages over gold tables alone: on an empty lake, nothing but "No data yet"."""
RANGE_DAYS = 7
"""The dashboard opens on the last week the lake holds."""
UPDATE_README = os.environ.get("ENCORE_UPDATE_SCREENSHOTS") == "1"
README_SCREENSHOTS = browser.REPO / "docs" / "screenshots"


def gold(settings, table) -> pl.DataFrame:
    return pl.from_arrow(read_lake_table(settings, table))


@dataclass(frozen=True)
class Expected:
    """What the pages must show over the default range, computed here from the lake and
    Redis, not by the dashboard's code."""

    start: date
    end: date
    overview: dict[str, float]
    """Metric label -> value with no filter."""
    country: str
    country_overview: dict[str, float]
    """The same metrics with only ``country`` chosen."""
    top_song_titles: set[str]
    """Titles of the range's most played songs (all, if tied)."""
    top_artists: set[str]
    top_artist_plays: int
    cohorts: int
    cohort_listeners: int
    skip_rate: float
    ab_listeners: dict[str, int]
    trending_country: str
    trending_titles: set[str]
    """Titles of the country's most played songs in Redis (all, if tied)."""
    trending_plays: int


def overview_figures(active: pl.DataFrame, days: list[date], country: str) -> dict[str, float]:
    """DAU (mean over the days), WAU and MAU (the last day), plays and hours (totals) of
    ``country``'s rows, a day without a row counting zero."""
    rows = {row["day"]: row for row in active.filter(pl.col("country_code") == country).to_dicts()}
    zero = {"dau": 0, "wau": 0, "mau": 0, "plays": 0, "listening_hours": 0.0}
    per_day = [rows.get(day, zero) for day in days]
    return {
        "DAU": sum(row["dau"] for row in per_day) / len(days),
        "WAU": per_day[-1]["wau"],
        "MAU": per_day[-1]["mau"],
        "Plays": sum(row["plays"] for row in per_day),
        "Listening hours": sum(row["listening_hours"] for row in per_day),
    }


def compute_expected(world: AnalyticsWorld) -> Expected:
    import redis

    settings = world.settings
    end = world.days[-1]
    days = world.days[-RANGE_DAYS:]
    active = gold(settings, DAILY_ACTIVE_USERS)
    overview = overview_figures(active, days, "ALL")
    in_range = pl.col("day").is_between(days[0], end)
    # the country with the most plays in the range (ties: the first code)
    country = (
        active.filter(in_range & (pl.col("country_code") != "ALL"))
        .group_by("country_code")
        .agg(pl.col("plays").sum())
        .sort(["plays", "country_code"], descending=[True, False])["country_code"][0]
    )
    titles = dict(gold(settings, DIM_SONGS).select("song_id", "title").iter_rows())
    song_plays = (
        gold(settings, DAILY_SONG_PLAYS)
        .filter(in_range)
        .group_by("song_id")
        .agg(pl.col("plays").sum())
    )
    top_songs = song_plays.filter(pl.col("plays") == song_plays["plays"].max())["song_id"]
    artist_plays = (
        gold(settings, DAILY_SONG_PLAYS)
        .filter(in_range & pl.col("artist_id").is_not_null())
        .group_by("artist_id")
        .agg(pl.col("plays").sum())
    )
    top_artist_plays = artist_plays["plays"].max()
    artists = dict(gold(settings, DIM_ARTISTS).select("artist_id", "name").iter_rows())
    top_artists = artist_plays.filter(pl.col("plays") == top_artist_plays)["artist_id"]
    cohorts = gold(settings, RETENTION_COHORTS).filter(pl.col("day") == end)
    genre_skips = gold(settings, SKIP_RATES).filter(in_range & (pl.col("scope") == "genre"))
    plays = gold(settings, SILVER_PLAYS).filter(
        pl.col("event_date").is_between(days[0], end)
        & pl.col("variant").is_not_null()
        & (pl.col("event_type") != "like")
    )
    ab_listeners = dict(plays.group_by("variant").agg(pl.col("user_id").n_unique()).iter_rows())
    client = redis.Redis.from_url(settings.redis.effective_url)
    try:
        rankings = {
            country: client.zrange(trending_key(country), 0, -1, desc=True, withscores=True)
            for country in world.trending_countries
        }
    finally:
        client.close()
    # the country with the most plays in its current window
    trending_country = max(rankings, key=lambda c: (rankings[c][0][1], c))
    trending_plays = int(rankings[trending_country][0][1])
    trending_titles = {
        titles[song.decode()]
        for song, plays in rankings[trending_country]
        if int(plays) == trending_plays
    }
    return Expected(
        start=days[0],
        end=end,
        overview=overview,
        country=country,
        country_overview=overview_figures(active, days, country),
        top_song_titles={titles[song] for song in top_songs},
        top_artists={artists[artist] for artist in top_artists},
        top_artist_plays=int(top_artist_plays),
        cohorts=cohorts["cohort_week"].n_unique(),
        cohort_listeners=cohorts.filter(pl.col("weeks_since") == 0)["cohort_size"].sum(),
        skip_rate=genre_skips["skips"].sum() / genre_skips["plays"].sum(),
        ab_listeners=ab_listeners,
        trending_country=trending_country,
        trending_titles=trending_titles,
        trending_plays=trending_plays,
    )


@pytest.fixture(scope="module")
def expected(analytics_world: AnalyticsWorld) -> Expected:
    return compute_expected(analytics_world)


@pytest.fixture(scope="module")
def address(analytics_world: AnalyticsWorld) -> Iterator[str]:
    """The world's dashboard, up for the module."""
    with dashboard(analytics_world.settings, free_port()) as running:
        yield running


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with browser.chromium() as running:
        yield running


@pytest.fixture()
def page(chromium: Browser) -> Iterator[Page]:
    """A fresh tab (a new Streamlit session: filters at their defaults)."""
    context = chromium.new_context(viewport=VIEWPORT)
    try:
        yield context.new_page()
    finally:
        context.close()


def assert_figures(shown: dict[str, str], figures: dict[str, float]) -> None:
    for label, value in figures.items():
        assert label in shown, f"no metric {label!r} in {shown}"
        decimals = 1 if label in ("DAU", "Listening hours") else 0
        assert number(shown[label]) == pytest.approx(round(value, decimals), abs=1e-9), label


def check_overview(page: Page, world: AnalyticsWorld, expected: Expected) -> None:
    assert_figures(metrics(page), expected.overview)


def check_trends(page: Page, world: AnalyticsWorld, expected: Expected) -> None:
    # the songs' table is wide: its plays column may be scrolled out of view
    song = rows_after(page, "Top songs")[0]
    assert song["rank"] == "1"
    assert song["title"] in expected.top_song_titles
    artist = rows_after(page, "Top artists")[0]
    assert (artist["rank"], int(artist["plays"])) == ("1", expected.top_artist_plays)
    assert artist["artist"] in expected.top_artists


def check_retention(page: Page, world: AnalyticsWorld, expected: Expected) -> None:
    shown = metrics(page)
    assert number(shown["Cohorts"]) == expected.cohorts
    assert number(shown["Listeners in them"]) == expected.cohort_listeners


def check_skips(page: Page, world: AnalyticsWorld, expected: Expected) -> None:
    assert number(metrics(page)["Skip rate"]) == pytest.approx(
        round(expected.skip_rate * 100, 1), abs=1e-9
    )


def check_real_time(page: Page, world: AnalyticsWorld, expected: Expected) -> None:
    assert number(metrics(page)["Countries trending"]) == len(world.trending_countries)
    song = rows_after(page, expected.trending_country)[0]
    assert (song["rank"], int(song["plays"])) == ("1", expected.trending_plays)
    assert song["title"] in expected.trending_titles


def check_recommendations(page: Page, world: AnalyticsWorld, expected: Expected) -> None:
    wait_for_text(page, world.models["als"])
    shown = metrics(page)
    for variant, listeners in expected.ab_listeners.items():
        assert number(shown[f"{variant}: listeners"]) == listeners


CHECKS = {
    "overview": check_overview,
    "trends": check_trends,
    "retention": check_retention,
    "skips": check_skips,
    "real-time": check_real_time,
    "recommendations": check_recommendations,
}
CHARTLESS = {"real-time"}
"""Pages drawing tables only."""


@pytest.mark.parametrize("path", list(PAGES))
def test_page_shows_the_world_without_error(
    page: Page, address: str, analytics_world: AnalyticsWorld, expected: Expected, path: str
) -> None:
    try:
        open_page(page, f"{address}/{path}")
        assert title(page) == PAGES[path]
        if path in CHARTLESS:
            assert chart_count(page) == 0
        else:
            assert wait_for_charts(page) >= 1
        CHECKS[path](page, analytics_world, expected)
        assert errors_shown(page) == []
    except BaseException:
        # what the page showed when it failed, beside the others
        with contextlib.suppress(Exception):
            save_screenshot(page, f"{path}-failed")
        raise
    shot = save_screenshot(page, path, readme=README_SCREENSHOTS if UPDATE_README else None)
    assert shot.stat().st_size > 0


def test_choosing_a_country_changes_the_overview(
    page: Page, address: str, expected: Expected
) -> None:
    open_page(page, f"{address}/overview")
    wait_for_charts(page)
    assert_figures(metrics(page), expected.overview)
    choose(page, "Countries", expected.country)
    plays = page.get_by_test_id("stMetric").filter(has_text="Plays")
    expect(plays.get_by_test_id("stMetricValue")).to_have_text(
        f"{expected.country_overview['Plays']:,.0f}"
    )
    browser.wait_idle(page)
    assert_figures(metrics(page), expected.country_overview)
    assert errors_shown(page) == []


def test_empty_lake_says_no_data_yet(
    page: Page, analytics_world: AnalyticsWorld, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    settings = analytics_world.settings.model_copy(
        update={
            # a home of its own: its dashboard runs beside the world's
            "home": tmp_path / "home",
            "lake": analytics_world.settings.lake.model_copy(update={"root": str(lake)}),
        }
    )
    with dashboard(settings, free_port()) as empty:
        for path in GOLD_PAGES:
            open_page(page, f"{empty}/{path}")
            assert title(page) == PAGES[path]
            text = page.get_by_test_id("stMain").inner_text()
            assert "No data yet" in text
            assert "encore lake build" in text
            assert errors_shown(page) == [], path
            if path == "overview":
                save_screenshot(page, "empty-overview")
