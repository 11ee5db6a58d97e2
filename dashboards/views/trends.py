"""Trends: the most played songs, artists and genres, and plays per device, day by day."""

import altair as alt
import streamlit as st

from dashboards import metrics, ui

st.title("Trends")
filters = ui.gold_filters()
top = st.slider("How many songs and artists", 3, 25, 10, key="top")
with ui.shown_errors("The trends"):
    trends = metrics.trends(ui.settings(), filters, top=top)
    if trends.top_songs.is_empty():
        st.info(f"No plays from {filters.start} to {filters.end} under these filters.")
        st.stop()
    songs, artists = st.columns(2)
    songs.subheader("Top songs")
    songs.dataframe(trends.top_songs.drop("song_id"), hide_index=True)
    songs.altair_chart(
        ui.line_chart(trends.songs_daily.to_pandas(), "day", "plays", "title", "Plays per day")
    )
    artists.subheader("Top artists")
    artists.dataframe(trends.top_artists.drop("artist_id"), hide_index=True)
    artists.altair_chart(
        ui.line_chart(trends.artists_daily.to_pandas(), "day", "plays", "artist", "Plays per day")
    )
    genres, devices = st.columns(2)
    genres.subheader("Genres")
    genres.altair_chart(
        alt.Chart(trends.genres_daily.to_pandas(), title="Plays per day")
        .mark_area()
        .encode(
            x=alt.X("day:T", title=None, axis=ui.DAY_AXIS),
            y=alt.Y("plays:Q", stack=True, title=None),
            color=alt.Color("genre:N", title=None),
            tooltip=["day:T", "genre:N", "plays:Q"],
        )
    )
    genres.dataframe(
        trends.top_genres,
        hide_index=True,
        column_config={"share": st.column_config.NumberColumn(format="percent")},
    )
    devices.subheader("Devices")
    devices.altair_chart(
        alt.Chart(trends.devices_daily.to_pandas(), title="Plays per day")
        .mark_bar()
        .encode(
            x=alt.X("day:T", title=None, axis=ui.DAY_AXIS),
            y=alt.Y("plays:Q", title=None),
            color=alt.Color("device_type:N", title=None),
            tooltip=["day:T", "device_type:N", "plays:Q"],
        )
    )
