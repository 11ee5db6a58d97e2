"""What every page shares: the settings, the sidebar's filters, the "No data yet" page, errors
shown as a reason (never a traceback), and number formats. Streamlit only; no queries."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import date

import altair as alt
import pandas as pd
import streamlit as st

from dashboards.lake import DEMO_COMMAND, FILL_COMMAND, LakeStatus, lake_status
from dashboards.metrics import FilterOptions, Filters, filter_options
from encore.errors import EncoreError
from encore.settings import Settings, get_settings

log = logging.getLogger(__name__)

NO_DATA = "No data yet"
DAY_AXIS = alt.Axis(format="%b %d", tickCount="day")
DAY_COLUMN = st.column_config.DateColumn(format="YYYY-MM-DD")


def settings() -> Settings:
    """The platform's settings (``ENCORE_*``), as every Encore process reads them."""
    return get_settings()


def lake() -> LakeStatus:
    return lake_status(settings())


def sidebar_filters() -> None:
    """The date range, countries and devices, in the sidebar of every page (the app's
    entry point draws them, so a choice stays as the analyst moves between pages)."""
    status = lake()
    if not status.has_data:
        st.session_state["filters"] = None
        return
    options = filter_options(settings())
    default = options.default_filters()
    st.sidebar.header("Filters")
    chosen = st.sidebar.date_input(
        "Days",
        value=(default.start, default.end),
        min_value=options.first_day,
        max_value=options.last_day,
        key="days",
        help="Changes compare with the period of the same length just before.",
    )
    start, end = _range(chosen, default)
    countries = st.sidebar.multiselect(
        "Countries", options.countries, key="countries", placeholder="all countries"
    )
    devices = st.sidebar.multiselect(
        "Devices", options.devices, key="devices", placeholder="all devices"
    )
    st.session_state["filters"] = Filters(start, end, tuple(countries), tuple(devices))
    st.session_state["filter_options"] = options


def _range(chosen: object, default: Filters) -> tuple[date, date]:
    """The date input's value: a pair, or one day while the analyst is still picking."""
    days = [d for d in (chosen if isinstance(chosen, tuple | list) else (chosen,)) if d]
    if not days:
        return default.start, default.end
    return min(days), max(days)


def filters() -> Filters | None:
    return st.session_state.get("filters")


def options() -> FilterOptions | None:
    return st.session_state.get("filter_options")


def gold_filters() -> Filters:
    """The filters of a page over gold tables; on an empty lake, the "No data yet" page
    (and the page stops there)."""
    chosen = filters()
    if chosen is None:
        no_data(lake())
        st.stop()
    return chosen


def no_data(status: LakeStatus) -> None:
    st.subheader(NO_DATA)
    st.markdown(f"The lake at `{status.root}` holds no gold tables to show yet. {status.fill_hint}")
    st.code(
        f"{FILL_COMMAND}  # silver and gold from the plays in the lake\n"
        f"{DEMO_COMMAND}  # or: the whole platform on simulated listeners",
        language="bash",
    )


@contextlib.contextmanager
def shown_errors(what: str) -> Iterator[None]:
    """Run a part of a page; an error there becomes a red box naming ``what`` failed and why.

    Encore's errors carry their reason; anything else is a bug, logged with its traceback
    for the developer and shown as one line to the analyst.
    """
    try:
        yield
    except EncoreError as error:
        st.error(f"{what}: {error}")
    except Exception as error:
        log.exception("dashboard: %s failed", what)
        st.error(f"{what} failed: {type(error).__name__}: {error}")


def line_chart(
    frame: pd.DataFrame, x: str, y: str, color: str | None = None, title: str = ""
) -> alt.Chart:
    """A line per ``color`` (or one) of ``y`` over the days in ``x``, with tooltips."""
    encoding = {
        "x": alt.X(f"{x}:T", title=None, axis=DAY_AXIS),
        "y": alt.Y(f"{y}:Q", title=None),
        "tooltip": [
            f"{x}:T",
            *([f"{color}:N"] if color else []),
            alt.Tooltip(f"{y}:Q", format=","),
        ],
    }
    if color:
        encoding["color"] = alt.Color(f"{color}:N", title=None)
    return alt.Chart(frame, title=title).mark_line(point=True).encode(**encoding)


def count(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def decimal(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def interval(low: float | None, high: float | None, fmt=decimal) -> str:
    """A metric's help: its 95% interval."""
    if low is None or high is None:
        return "too few listeners for a 95% interval"
    return f"95% interval {fmt(low)} to {fmt(high)}"


def change(value: float | None, relative: float | None, fmt=decimal) -> str | None:
    """``st.metric``'s delta: the change and its share of the previous value."""
    if value is None:
        return None
    sign = "+" if value >= 0 else "-"
    text = f"{sign}{fmt(abs(value))}"
    return f"{text} ({relative:+.1%})" if relative is not None else text
