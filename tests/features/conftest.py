"""The lake's Spark session and private lake, shared with the feature jobs' tests."""

from tests.pipelines.lake.conftest import lake_settings, spark  # noqa: F401
