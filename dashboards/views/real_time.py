"""Real time: each country's most played songs in the ingestion job's current window,
re-read from Redis every few seconds."""

from datetime import timedelta

import streamlit as st

from dashboards import realtime, ui

st.title("Real time")
settings = ui.settings()
refresh_s = settings.dashboard.realtime_refresh_s
chosen = ui.filters()
countries = chosen.countries if chosen else ()
top = st.slider("Songs per country", 3, 25, 10, key="realtime_top")


@st.fragment(run_every=timedelta(seconds=refresh_s))
def trending() -> None:
    with ui.shown_errors("Trending now"):
        now = realtime.trending_now(settings, countries, top=top)
        if now.rows.is_empty():
            st.subheader(ui.NO_DATA)
            st.markdown(f"Nothing is trending in Redis right now. {realtime.FILL_HINT}")
            return
        st.caption(
            f"Read at {now.read_at:%H:%M:%S} UTC, again every {refresh_s} s. Each country's "
            "current window of the ingestion job (event time)."
        )
        per_country = now.rows.partition_by("country_code", as_dict=True, maintain_order=True)
        st.metric("Countries trending", len(per_country))
        columns = st.columns(min(len(per_country), 2))
        for i, ((country,), rows) in enumerate(per_country.items()):
            column = columns[i % len(columns)]
            window = now.windows.get(country)
            span = f" ({window[0]:%H:%M}–{window[1]:%H:%M} UTC)" if window else ""
            column.subheader(f"{country}{span}")
            column.dataframe(rows.select("rank", "title", "artist", "plays"), hide_index=True)


trending()
