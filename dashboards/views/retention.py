"""Retention: weekly cohorts by first play, the share still listening each week after."""

import altair as alt
import streamlit as st

from dashboards import metrics, ui

st.title("Retention")
filters = ui.gold_filters()
with ui.shown_errors("The retention cohorts"):
    found = metrics.retention(ui.settings(), filters)
    if found.as_of is None:
        st.info(f"gold.retention_cohorts has no build day from {filters.start} to {filters.end}.")
        st.stop()
    st.caption(
        f"As of {found.as_of} (the latest build in the range). Cohorts are every listener "
        "by the Monday of their first play; countries and devices do not apply here."
    )
    sizes = found.cohorts.unique("cohort_week")["cohort_size"]
    cohorts_shown, listeners_shown = st.columns(2)
    cohorts_shown.metric("Cohorts", ui.count(sizes.len()), border=True)
    listeners_shown.metric("Listeners in them", ui.count(sizes.sum()), border=True)
    cohorts = found.cohorts.to_pandas()
    cohorts["cohort_week"] = cohorts["cohort_week"].astype(str)  # one row per week, not a time
    heatmap = alt.Chart(cohorts).encode(
        x=alt.X("weeks_since:O", title="weeks since the first play"),
        y=alt.Y("cohort_week:O", title="cohort (week of the first play)"),
    )
    st.altair_chart(
        heatmap.mark_rect().encode(
            color=alt.Color("retention:Q", scale=alt.Scale(domain=[0, 1]), title="retention"),
            tooltip=[
                "cohort_week",
                "weeks_since",
                "cohort_size",
                "active",
                alt.Tooltip("retention:Q", format=".1%"),
            ],
        )
        + heatmap.mark_text().encode(text=alt.Text("retention:Q", format=".0%"))
    )
    st.dataframe(
        found.cohorts,
        hide_index=True,
        column_config={
            "cohort_week": ui.DAY_COLUMN,
            "retention": st.column_config.NumberColumn(format="percent"),
        },
    )
