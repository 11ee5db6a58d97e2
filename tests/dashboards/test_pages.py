"""Every page of the dashboard run by Streamlit's ``AppTest`` (in this process) on the
analytics world: its title, its numbers equal to the library's, filters that change them,
no exception shown; and the "No data yet" page of an empty lake."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from dashboards import metrics, realtime, recommendations, ui
from dashboards.metrics import Filters
from encore.settings import get_settings, settings_env

APP = Path(__file__).resolve().parents[2] / "dashboards" / "app.py"
PAGES = {
    "overview.py": "Overview",
    "trends.py": "Trends",
    "retention.py": "Retention",
    "skips.py": "Skips",
    "real_time.py": "Real time",
    "recommendations.py": "Recommendations",
}
TIMEOUT_S = 120
"""A first run imports Streamlit, polars and the app (seconds on a busy machine)."""


def use_settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """The app reads ``get_settings()`` (cached per process): the environment, then a fresh
    read; monkeypatch restores the variables, the finaliser the cache."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


@pytest.fixture()
def world(analytics_world, monkeypatch):
    use_settings(monkeypatch, settings_env(analytics_world.settings))
    yield analytics_world
    get_settings.cache_clear()


def open_page(page: str) -> AppTest:
    """The app opened at its root (which shows the overview), then at ``page``."""
    app = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S).run()
    assert [t.value for t in app.title] == ["Overview"]
    return app.switch_page(f"views/{page}").run() if page != "overview.py" else app


def shown(app: AppTest) -> dict[str, str]:
    """Each st.metric's label -> its value as shown."""
    return {metric.label: metric.value for metric in app.metric}


def no_failure(app: AppTest) -> None:
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]


@pytest.mark.integration
@pytest.mark.spark
# the first test to ask for the world builds it: its timeout covers a lake build beside other
# Spark work
@pytest.mark.timeout(2700)
class TestOnTheWorld:
    def test_every_page_has_its_title_and_no_error(self, world):
        app = open_page("overview.py")
        for page, title in PAGES.items():
            app.switch_page(f"views/{page}").run()
            assert [t.value for t in app.title] == [title], page
            no_failure(app)

    def test_overview_shows_the_librarys_figures_and_filters_change_them(self, world):
        app = open_page("overview.py")
        no_failure(app)
        filters = metrics.filter_options(world.settings).default_filters()
        self.check_overview(app, metrics.overview(world.settings, filters))

        # the last three days: the lake holds the three before, so each figure has a change
        days = Filters(world.days[-3], world.days[-1])
        app.date_input(key="days").set_value((days.start, days.end)).run()
        no_failure(app)
        everywhere = metrics.overview(world.settings, days)
        assert everywhere.plays.change is not None
        self.check_overview(app, everywhere)

        country = app.multiselect(key="countries").options[0]
        app.multiselect(key="countries").set_value([country]).run()
        no_failure(app)
        in_country = metrics.overview(world.settings, Filters(days.start, days.end, (country,)))
        self.check_overview(app, in_country)
        assert in_country.plays.value < everywhere.plays.value

        device = app.multiselect(key="devices").options[0]
        app.multiselect(key="devices").set_value([device]).run()
        no_failure(app)
        chosen = Filters(days.start, days.end, (country,), (device,))
        self.check_overview(app, metrics.overview(world.settings, chosen))
        assert shown(app)["WAU"] == "–"

    @staticmethod
    def check_overview(app: AppTest, figures: metrics.Overview) -> None:
        values = shown(app)
        expected = {
            "DAU": ui.decimal(figures.dau.value),
            "WAU": ui.count(figures.wau.value),
            "MAU": ui.count(figures.mau.value),
            "Plays": ui.count(figures.plays.value),
            "Listening hours": ui.decimal(figures.listening_hours.value),
        }
        assert values == expected
        deltas = {metric.label: metric.delta or None for metric in app.metric}
        assert deltas["Plays"] == ui.change(
            figures.plays.change, figures.plays.relative_change, ui.count
        )
        assert deltas["DAU"] == ui.change(figures.dau.change, figures.dau.relative_change)
        daily = app.dataframe[0].value
        assert daily["plays"].tolist() == figures.daily["plays"].to_list()

    def test_trends_tables_follow_the_device_filter(self, world):
        app = open_page("trends.py")
        no_failure(app)
        filters = metrics.filter_options(world.settings).default_filters()
        found = metrics.trends(world.settings, filters, top=10)
        songs = app.dataframe[0].value
        assert songs["title"].tolist() == found.top_songs["title"].to_list()
        assert songs["plays"].tolist() == found.top_songs["plays"].to_list()
        artists = app.dataframe[1].value
        assert artists["artist"].tolist() == found.top_artists["artist"].to_list()

        device = app.multiselect(key="devices").options[0]
        app.multiselect(key="devices").set_value([device]).run()
        no_failure(app)
        chosen = metrics.trends(world.settings, Filters(filters.start, filters.end, (), (device,)))
        songs = app.dataframe[0].value
        assert songs["plays"].tolist() == chosen.top_songs["plays"].to_list()
        assert songs["plays"].sum() < found.top_songs["plays"].sum()

    def test_retention_heatmap_of_two_cohorts(self, world):
        app = open_page("retention.py")
        no_failure(app)
        filters = metrics.filter_options(world.settings).default_filters()
        found = metrics.retention(world.settings, filters)
        sizes = found.cohorts.unique("cohort_week")["cohort_size"]
        assert shown(app) == {"Cohorts": "2", "Listeners in them": ui.count(sizes.sum())}
        table = app.dataframe[0].value
        assert table["retention"].tolist() == found.cohorts["retention"].to_list()

    def test_skips_follow_the_country_filter(self, world):
        app = open_page("skips.py")
        no_failure(app)
        filters = metrics.filter_options(world.settings).default_filters()
        minimum = world.settings.dashboard.worst_min_plays
        found = metrics.skips(world.settings, filters, min_plays=minimum)
        assert shown(app) == {"Skip rate": ui.percent(found.overall)}
        country = app.multiselect(key="countries").options[-1]
        app.multiselect(key="countries").set_value([country]).run()
        no_failure(app)
        chosen = metrics.skips(
            world.settings, Filters(filters.start, filters.end, (country,)), min_plays=minimum
        )
        assert shown(app) == {"Skip rate": ui.percent(chosen.overall)}
        assert chosen.overall != found.overall

    def test_real_time_lists_each_countrys_songs(self, world):
        app = open_page("real_time.py")
        no_failure(app)
        assert shown(app) == {"Countries trending": str(len(world.trending_countries))}
        found = realtime.trending_now(world.settings, top=10)
        first = world.trending_countries[0]
        table = app.dataframe[0].value
        expected = found.rows.filter(pl.col("country_code") == first)
        assert table["title"].tolist() == expected["title"].to_list()
        assert table["plays"].tolist() == expected["plays"].to_list()

    def test_recommendations_show_versions_and_the_ab_figures(self, world):
        app = open_page("recommendations.py")
        no_failure(app)
        versions = app.dataframe[0].value
        assert set(versions["model"]) == {world.models["als"]}
        assert any("champion" in aliases.split(", ") for aliases in versions["aliases"])
        filters = metrics.filter_options(world.settings).default_filters()
        figures = recommendations.ab_figures(world.settings, filters)
        values = shown(app)
        for row in figures.report.variants:
            assert values[f"{row.variant}: listeners"] == ui.count(row.listeners)
            assert values[f"{row.variant}: skip rate"] == ui.percent(row.skip_rate.value)


def test_an_empty_lake_shows_no_data_yet_and_the_command(tmp_path, monkeypatch):
    use_settings(monkeypatch, {"ENCORE_LAKE__ROOT": str(tmp_path / "lake")})
    try:
        app = open_page("overview.py")
        for page in ("overview.py", "trends.py", "retention.py", "skips.py"):
            app.switch_page(f"views/{page}").run()
            assert not app.exception
            assert [s.value for s in app.subheader] == ["No data yet"], page
            assert "encore lake build" in app.code[0].value
            assert "make demo" in app.code[0].value
    finally:
        get_settings.cache_clear()


def test_the_dashboard_is_a_service_and_a_demo_step():
    from encore import parts, services
    from encore.settings import DashboardSettings, Settings

    settings = Settings(dashboard=DashboardSettings(host="127.0.0.1", port=28999))
    service = services.registry()["dashboard"]
    assert service.address(settings) == "http://127.0.0.1:28999"
    command = service.command(settings)
    for flag in (
        "--server.headless=true",
        "--browser.gatherUsageStats=false",
        "--server.fileWatcherType=none",
        "--server.address=127.0.0.1",
        "--server.port=28999",
    ):
        assert flag in command
    assert command[4].endswith("dashboards/app.py")
    # the child reads the same lake, Redis and MLflow as its parent
    assert service.env(settings)["ENCORE_DASHBOARD__PORT"] == "28999"
    assert service.env(settings)["ENCORE_LAKE__ROOT"] == settings.lake.root
    steps = {step.order: step.title for step in parts.demo_steps(parts.load_parts())}
    assert steps[40].startswith("dashboards and notebooks")


def test_encore_urls_lists_the_dashboard(monkeypatch):
    from typer.testing import CliRunner

    from encore.cli import app
    from encore.settings import get_settings

    monkeypatch.setenv("ENCORE_DEVELOPMENT", "true")
    monkeypatch.setenv("ENCORE_DASHBOARD__PORT", "28998")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["urls"], env={"COLUMNS": "200"})
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "Analysts' dashboard (encore up dashboard)" in result.output
    assert "http://127.0.0.1:28998" in result.output
