"""Skips: skip rates per genre and per song over the range, and the worst offenders."""

import altair as alt
import streamlit as st

from dashboards import metrics, ui

st.title("Skips")
filters = ui.gold_filters()
min_plays = st.number_input(
    "Minimum plays to rank a song among the worst",
    min_value=1,
    value=ui.settings().dashboard.worst_min_plays,
    key="min_plays",
)
with ui.shown_errors("The skip rates"):
    found = metrics.skips(ui.settings(), filters, min_plays=int(min_plays))
    if found.overall is None:
        st.info(f"No plays from {filters.start} to {filters.end} under these filters.")
        st.stop()
    st.metric("Skip rate", ui.percent(found.overall), border=True)
    st.caption("Rates are skips over plays summed across the range, not a mean of daily rates.")
    rate = st.column_config.NumberColumn(format="percent")
    genres, worst = st.columns(2)
    genres.subheader("Per genre")
    genres.altair_chart(
        alt.Chart(found.genres.to_pandas())
        .mark_bar()
        .encode(
            x=alt.X("skip_rate:Q", axis=alt.Axis(format="%"), title="skip rate"),
            y=alt.Y("genre:N", sort="-x", title=None),
            tooltip=["genre", "plays", "skips", alt.Tooltip("skip_rate:Q", format=".1%")],
        )
    )
    genres.dataframe(found.genres, hide_index=True, column_config={"skip_rate": rate})
    worst.subheader(f"Worst songs (at least {found.min_plays} plays)")
    if found.worst.is_empty():
        worst.info(f"No song has {found.min_plays} plays in the range; lower the minimum.")
    else:
        worst.dataframe(
            found.worst.drop("song_id"), hide_index=True, column_config={"skip_rate": rate}
        )
    st.subheader("Every song")
    st.dataframe(found.songs, hide_index=True, column_config={"skip_rate": rate})
