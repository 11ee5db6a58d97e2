"""The analysts' dashboard, a Streamlit multipage app: ``encore dashboard`` serves it
(``streamlit run dashboards/app.py`` with the platform's ``ENCORE_*`` settings works too).

Every page is a thin script in ``views/`` over the library (:mod:`dashboards.metrics` and
friends); the filters live in the sidebar, drawn here so they hold across pages. Not a
``pages/`` folder: beside the main script Streamlit takes that for the older multipage
layout, and its ``AppTest`` then runs a page without this script (no sidebar, no filters).
"""

from pathlib import Path

import streamlit as st

from dashboards import ui

PAGES = Path(__file__).parent / "views"

st.set_page_config(page_title="Encore dashboards", page_icon=":material/equalizer:", layout="wide")

overview = st.Page(PAGES / "overview.py", title="Overview", url_path="overview")
pages = [
    overview,
    st.Page(PAGES / "trends.py", title="Trends", url_path="trends"),
    st.Page(PAGES / "retention.py", title="Retention", url_path="retention"),
    st.Page(PAGES / "skips.py", title="Skips", url_path="skips"),
    st.Page(PAGES / "real_time.py", title="Real time", url_path="real-time"),
    st.Page(PAGES / "recommendations.py", title="Recommendations", url_path="recommendations"),
]


def _home() -> None:
    # the root URL opens the overview at its own path: every page has one (/overview...)
    st.switch_page(overview)


home = st.Page(_home, title="Encore", url_path="home", default=True, visibility="hidden")
navigation = st.navigation([home, *pages])
with ui.shown_errors("The filters"):
    ui.sidebar_filters()
navigation.run()
