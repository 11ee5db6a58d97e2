"""Overview: active listeners, plays and listening hours, against the period before."""

import streamlit as st

from dashboards import metrics, ui

st.title("Overview")
filters = ui.gold_filters()
with ui.shown_errors("The overview"):
    figures = metrics.overview(ui.settings(), filters)
    shown = [
        ("DAU", figures.dau, ui.decimal),
        ("WAU", figures.wau, ui.count),
        ("MAU", figures.mau, ui.count),
        ("Plays", figures.plays, ui.count),
        ("Listening hours", figures.listening_hours, ui.decimal),
    ]
    for column, (label, metric, fmt) in zip(st.columns(len(shown)), shown, strict=True):
        column.metric(
            label,
            fmt(metric.value),
            delta=ui.change(metric.change, metric.relative_change, fmt),
            border=True,
        )
    for note in figures.notes:
        st.caption(note)
    daily = figures.daily.to_pandas()
    if daily.empty:
        st.info(f"The lake holds no day from {filters.start} to {filters.end}.")
    else:
        st.subheader("Per day")
        series = [("dau", "DAU"), ("plays", "Plays"), ("listening_hours", "Listening hours")]
        for column, (name, title) in zip(st.columns(len(series)), series, strict=True):
            column.altair_chart(ui.line_chart(daily, "day", name, title=title))
        st.dataframe(figures.daily, hide_index=True, column_config={"day": ui.DAY_COLUMN})
