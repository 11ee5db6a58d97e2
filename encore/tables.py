"""The lake's table registry: every Delta table's name, path and explicit schema.

Each table has exactly one writer (named in ``writer``); readers find it here rather than
by spelling a path. Paths are ``<lake root>/<layer>/<table>``, with the root from
``settings.lake_root`` (a local folder by default, ``s3://...`` beyond one machine).

Schemas are declared once in a neutral form and rendered for each engine that needs them:
``arrow_schema()`` for delta-rs and polars, ``spark_schema()`` for Spark jobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from encore.errors import NotFoundError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql.types import StructType

    from encore.settings import Settings

DType = Literal["string", "int", "long", "double", "boolean", "date", "timestamp"]
Layer = Literal["bronze", "silver", "gold", "dims", "ops"]
"""``ops`` holds the lake's own records (the build audit), not listeners' or catalog data."""


@dataclass(frozen=True)
class Column:
    name: str
    dtype: DType
    nullable: bool = True
    description: str = ""


@dataclass(frozen=True)
class Table:
    layer: Layer
    name: str
    columns: tuple[Column, ...]
    writer: str
    partition_by: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    """Columns that identify a row (a MERGE's match, a uniqueness check); empty: none."""
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def qualified_name(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def path(self, settings: Settings) -> str:
        return f"{settings.lake_root.rstrip('/')}/{self.layer}/{self.name}"

    def arrow_schema(self) -> pa.Schema:
        import pyarrow as pa

        types = {
            "string": pa.string(),
            "int": pa.int32(),
            "long": pa.int64(),
            "double": pa.float64(),
            "boolean": pa.bool_(),
            "date": pa.date32(),
            # Delta's TIMESTAMP is microseconds, UTC-adjusted
            "timestamp": pa.timestamp("us", tz="UTC"),
        }
        return pa.schema([pa.field(c.name, types[c.dtype], c.nullable) for c in self.columns])

    def spark_schema(self) -> StructType:
        from pyspark.sql import types as T

        types = {
            "string": T.StringType(),
            "int": T.IntegerType(),
            "long": T.LongType(),
            "double": T.DoubleType(),
            "boolean": T.BooleanType(),
            "date": T.DateType(),
            "timestamp": T.TimestampType(),
        }
        return T.StructType(
            [T.StructField(c.name, types[c.dtype], c.nullable) for c in self.columns]
        )


PLAY_EVENTS = Table(
    layer="bronze",
    name="play_events",
    writer="the Flink ingestion job",
    partition_by=("event_date",),
    description="Every valid play event exactly once (deduplicated by event_id).",
    # closed days are Z-ordered by `encore lake maintain`: one song's or one listener's plays
    # then sit in few files (top songs, skip rates, erasure, export)
    extra={"zorder_by": ("song_id", "user_id")},
    columns=(
        Column("event_id", "string", False, "UUID of the event, the deduplication key"),
        Column("user_id", "string", False),
        Column("song_id", "string", False),
        Column("start_time", "timestamp", False),
        Column("end_time", "timestamp", False),
        Column("ms_played", "long", False),
        Column("event_type", "string", False, "play | skip | complete | like"),
        Column("device_type", "string", False),
        Column("country_code", "string", False, "ISO 3166-1 alpha-2"),
        Column("schema_version", "int", False),
        Column("event_date", "date", False, "UTC date of start_time; the partition"),
        Column("kafka_partition", "int", False),
        Column("kafka_offset", "long", False),
        Column("ingested_at", "timestamp", False),
    ),
)

PLAY_EVENTS_REJECTED = Table(
    layer="bronze",
    name="play_events_rejected",
    writer="the Flink ingestion job",
    partition_by=("rejected_date",),
    description="Dead letters: every record on play-events that failed the v1 contract.",
    columns=(
        Column("raw_payload", "string", False, "the record value as received (UTF-8, lossy)"),
        Column("reason", "string", False),
        Column("topic", "string", False),
        Column("kafka_partition", "int", False),
        Column("kafka_offset", "long", False),
        Column("rejected_at", "timestamp", False),
        Column("rejected_date", "date", False),
    ),
)

TRENDING_SONGS = Table(
    layer="gold",
    name="trending_songs_realtime",
    writer="the Flink ingestion job",
    partition_by=("window_date",),
    description="Play counts per country and song in tumbling event-time windows.",
    columns=(
        Column("window_start", "timestamp", False),
        Column("window_end", "timestamp", False),
        Column("window_date", "date", False),
        Column("country_code", "string", False),
        Column("song_id", "string", False),
        Column("plays", "long", False),
    ),
)

# The dimensions: snapshots of the catalog and accounts in PostgreSQL (pipelines/lake/dims.py).
# ``extra["source_table"]`` names the PostgreSQL table; column names are its columns' names,
# and the job selects exactly these, nothing more.
_DIMS_WRITER = "pipelines.lake.dims"

DIM_ARTISTS = Table(
    layer="dims",
    name="artists",
    writer=_DIMS_WRITER,
    extra={"source_table": "artists"},
    key=("artist_id",),
    description="Every catalog artist, as PostgreSQL holds it now.",
    columns=(
        Column("artist_id", "string", False),
        Column("name", "string", False),
        Column("popularity", "double", False, "the catalog's relative popularity"),
        Column("created_at", "timestamp", False, "when the catalog row was created"),
        Column("updated_at", "timestamp", False, "when the catalog row last changed"),
    ),
)

DIM_ALBUMS = Table(
    layer="dims",
    name="albums",
    writer=_DIMS_WRITER,
    extra={"source_table": "albums"},
    key=("album_id",),
    description="Every catalog album, as PostgreSQL holds it now.",
    columns=(
        Column("album_id", "string", False),
        Column("artist_id", "string", False),
        Column("title", "string", False),
        Column("release_year", "int"),
        Column("created_at", "timestamp", False),
        Column("updated_at", "timestamp", False),
    ),
)

DIM_SONGS = Table(
    layer="dims",
    name="songs",
    writer=_DIMS_WRITER,
    extra={"source_table": "songs"},
    key=("song_id",),
    description="Every catalog song, as PostgreSQL holds it now.",
    columns=(
        Column("song_id", "string", False),
        Column("title", "string", False),
        Column("artist_id", "string", False),
        Column("album_id", "string", False),
        Column("track_number", "int"),
        Column("genre", "string", False),
        Column("duration_ms", "int", False, "length of the song; silver's 'completed' needs it"),
        Column("release_date", "date"),
        Column("explicit", "boolean", False),
        Column("popularity", "double", False),
        Column("created_at", "timestamp", False),
        Column("updated_at", "timestamp", False),
    ),
)

DIM_USERS = Table(
    layer="dims",
    name="users",
    writer=_DIMS_WRITER,
    extra={"source_table": "accounts"},
    key=("user_id",),
    description=(
        "Every listener account: no credentials, no e-mail, no username (the lake needs "
        "none of them, and holds less to erase)."
    ),
    columns=(
        Column("user_id", "string", False),
        Column("country", "string", True, "ISO 3166-1 alpha-2, as the listener gave it"),
        Column("subscription_plan", "string", False, "free | premium | family | student"),
        Column("allow_explicit", "boolean", False),
        Column("created_at", "timestamp", False, "when the account was registered"),
    ),
)

JOB_RUNS = Table(
    layer="ops",
    name="job_runs",
    writer="pipelines.lake.audit",
    description="The build audit: one row per table a lake job wrote, per run (append only).",
    columns=(
        Column("run_id", "string", False, "one `encore lake build` (or one job run) invocation"),
        Column("job", "string", False, "the job's name in the build's job list"),
        Column("table_name", "string", False, "layer.name of the table written"),
        Column("day", "date", False, "the day the job ran for"),
        Column("delta_version", "long", False, "the table's version after the run"),
        Column("rows_in", "long", False, "rows the job read from its sources for this table"),
        Column("rows_out", "long", False, "rows the table holds for the day after the run"),
        Column("seconds", "double", False, "wall time spent on this table"),
        Column("finished_at", "timestamp", False),
    ),
)

TABLES: dict[str, Table] = {
    t.qualified_name: t
    for t in (
        PLAY_EVENTS,
        PLAY_EVENTS_REJECTED,
        TRENDING_SONGS,
        DIM_ARTISTS,
        DIM_ALBUMS,
        DIM_SONGS,
        DIM_USERS,
        JOB_RUNS,
    )
}


def tables_in(layer: Layer) -> list[Table]:
    """The registry's tables of one layer, in registry order."""
    return [t for t in TABLES.values() if t.layer == layer]


def get_table(qualified_name: str) -> Table:
    """Look a table up by ``layer.name``."""
    try:
        return TABLES[qualified_name]
    except KeyError:
        known = ", ".join(sorted(TABLES))
        raise NotFoundError(
            f"Table {qualified_name!r} is not in the registry; known: {known}"
        ) from None


# The privacy erasure log (pipelines/lake/privacy.py): one row per `encore privacy forget`,
# holding no personal data. It has no ``user_id`` column on purpose: erasure finds
# user-level tables by that column, and this table must never be one of them.
ERASURES = Table(
    layer="ops",
    name="erasures",
    writer="pipelines.lake.privacy",
    description="Every erasure of a listener from the lake: what it touched, never who.",
    columns=(
        Column("request_id", "string", False, "UUID of the erasure request"),
        Column("erased_at", "timestamp", False),
        Column(
            "subject_hmac",
            "string",
            False,
            "HMAC-SHA256 of the user id under a secret key: matches a known id, reveals none",
        ),
        Column("tables_touched", "string", False, "comma-separated layer.name of changed tables"),
        Column("rows_deleted", "long", False),
        Column("files_removed", "long", False, "data files physically deleted"),
        Column("rows_unattributed", "long", False, "dead letters that could not be parsed"),
        Column("details", "string", False, "JSON: per table rows, files, log compacted"),
    ),
)
TABLES[ERASURES.qualified_name] = ERASURES
