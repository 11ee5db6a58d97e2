import pyarrow as pa
import pytest

from encore.errors import NotFoundError
from encore.settings import Settings
from encore.tables import PLAY_EVENTS, TABLES, get_table


def test_paths_live_under_the_lake_root(tmp_path):
    settings = Settings(home=tmp_path)
    assert PLAY_EVENTS.path(settings) == f"{tmp_path}/lake/bronze/play_events"
    s3 = Settings(home=tmp_path, lake={"root": "s3://lake/"})
    assert PLAY_EVENTS.path(s3) == "s3://lake/bronze/play_events"


def test_every_table_partitions_by_its_own_columns():
    for table in TABLES.values():
        assert set(table.partition_by) <= set(table.column_names), table.qualified_name
        assert len(set(table.column_names)) == len(table.column_names)


def test_arrow_schema_is_explicit():
    schema = PLAY_EVENTS.arrow_schema()
    assert schema.field("start_time").type == pa.timestamp("us", tz="UTC")
    assert schema.field("event_date").type == pa.date32()
    assert not schema.field("event_id").nullable


def test_unknown_table_names_the_known_ones():
    with pytest.raises(NotFoundError, match=r"bronze\.play_events"):
        get_table("bronze.nope")


def test_bronze_play_events_hold_every_event_field():
    """An event field missing from the registry would be dropped by the job (and vice versa
    the job's parse would find no value): the model and the registry move together."""
    from encore.events import PlayEventV1

    derived = {"event_date"}
    added_by_ingest = {"kafka_partition", "kafka_offset", "ingested_at"}
    assert (
        set(PlayEventV1.model_fields) == set(PLAY_EVENTS.column_names) - derived - added_by_ingest
    )


def test_every_daily_table_names_the_job_that_writes_it():
    """A writer ``module:function`` is a job of the build, so a reader of the registry
    finds the one function that fills the table."""
    from pipelines.lake.audit import JOBS

    jobs = {job.target for job in JOBS}
    named = [t for t in TABLES.values() if ":" in t.writer]
    assert len(named) >= 15  # dims, silver, gold, training
    for table in named:
        assert table.writer in jobs, table.qualified_name
