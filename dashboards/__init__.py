"""The analysts' dashboard: Streamlit pages over the gold tables, Redis and MLflow.

The library core (:mod:`dashboards.lake`, :mod:`dashboards.metrics`,
:mod:`dashboards.realtime`, :mod:`dashboards.recommendations`) holds every query and imports no
Streamlit; the pages (``dashboards/app.py``, ``dashboards/views/``) only draw what it returns.
Tables are read with delta-rs and polars, never Spark, each read cached per Delta version.
``encore dashboard`` (or ``encore up dashboard``) serves it.
"""
