"""Data quality: evaluate a table's declared checks (``encore.checks``) on a day's rows.

STUB laid by the lead: ``enforce`` passes everything until the quality helper lands.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from encore.errors import EncoreError
from encore.settings import Settings
from encore.tables import Table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


class QualityError(EncoreError):
    """A table's check failed: the message names the table, the check and an example row."""


def enforce(
    spark: SparkSession, settings: Settings, table: Table, rows: DataFrame, day: date
) -> None:
    """Run ``table.checks`` on ``rows`` (the day's rows about to be written), record every
    result in ``ops.quality_results``, and raise on the first failing check.

    Raises:
        QualityError: a check failed.
    """
    return None
