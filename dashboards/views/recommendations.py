"""Recommendations: registered model versions with their offline metrics (MLflow), and the
online A/B experiment's figures with their 95% intervals."""

import altair as alt
import streamlit as st

from dashboards import recommendations, ui

st.title("Recommendations")
settings = ui.settings()


@st.cache_data(ttl=60, show_spinner="Reading the MLflow registry")
def _models(tracking_uri: str) -> list[str]:
    # keyed by the tracking URI: the registry changes on training, a minute old is fine
    return recommendations.registered_models(settings)


@st.cache_data(ttl=60, show_spinner="Reading the model versions")
def _versions(tracking_uri: str, names: tuple[str, ...]):
    return recommendations.model_versions(settings, list(names))


st.subheader("Model versions")
with ui.shown_errors("The model registry"):
    uri = settings.mlflow.effective_tracking_uri
    names = _models(uri)
    if not names:
        st.info("No model is registered yet: `encore train als` trains and registers one.")
    else:
        default = [names[0]]
        chosen = st.multiselect("Registered models", names, default=default, key="models")
        versions = _versions(uri, tuple(chosen))
        st.dataframe(versions, hide_index=True)
        st.caption(f"From {uri}. Metrics are the offline evaluation of each version's run.")

st.subheader("A/B experiment")
chosen_filters = ui.filters()
if chosen_filters is None:
    ui.no_data(ui.lake())
    st.stop()
with ui.shown_errors("The A/B report"):
    from encore.errors import NotFoundError

    try:
        figures = recommendations.ab_figures(settings, chosen_filters)
    except NotFoundError as error:
        st.info(str(error))
        st.stop()
    report = figures.report
    st.caption(
        f"{chosen_filters.start} to {chosen_filters.end}, every country and device: the "
        f"listener is the unit. Baseline: {report.baseline}. Intervals are 95%."
    )
    if report.shared_listeners:
        st.warning(
            f"{report.shared_listeners} listeners were seen under two variants: the range "
            "spans two experiments."
        )
    for column, row in zip(st.columns(len(report.variants)), report.variants, strict=True):
        column.metric(f"{row.variant}: listeners", ui.count(row.listeners))
        column.metric(
            f"{row.variant}: skip rate",
            ui.percent(row.skip_rate.value),
            help=ui.interval(row.skip_rate.low, row.skip_rate.high, ui.percent),
        )
        column.metric(
            f"{row.variant}: plays per listener",
            ui.decimal(row.plays_per_listener.value),
            help=ui.interval(row.plays_per_listener.low, row.plays_per_listener.high),
        )
    st.dataframe(figures.variants, hide_index=True)
    if not figures.differences.is_empty():
        st.markdown(f"**Against {report.baseline}** (an interval without 0 is a difference)")
        st.dataframe(figures.differences, hide_index=True)
        long = figures.variants.to_pandas()
        bars = alt.Chart(long).encode(y=alt.Y("variant:N", title=None))
        st.altair_chart(
            bars.mark_rule().encode(
                x=alt.X(
                    "skip_rate_low:Q", title="skip rate (95% interval)", axis=alt.Axis(format="%")
                ),
                x2="skip_rate_high:Q",
            )
            + bars.mark_point(filled=True, size=80).encode(x="skip_rate:Q")
        )
