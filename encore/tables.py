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

from encore.checks import (
    Check,
    InRange,
    KnownTo,
    NotNull,
    OneOf,
    Reconciles,
    RowsEqualDistinct,
    Unique,
)
from encore.errors import NotFoundError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql.types import StructType

    from encore.settings import Settings

DType = Literal["string", "int", "long", "double", "boolean", "date", "timestamp", "array<string>"]
"""Column types, in Spark SQL's spelling; ``array<string>`` is a list of strings (its
elements may be null in the type, as PostgreSQL's and Spark's arrays allow)."""
Layer = Literal["bronze", "silver", "gold", "dims", "training", "features", "ops"]
"""``ops`` holds the lake's own records (the build audit, quality results, erasures), not
listeners' or catalog data; ``training`` holds the recommenders' inputs; ``features`` the
feature store's daily snapshots (Feast reads them offline and materialises them to Redis)."""


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
    checks: tuple[Check, ...] = ()
    """Data-quality checks run on every day's rows before they are written (encore.checks)."""

    @property
    def day_column(self) -> str | None:
        """The partition column a daily job replaces (its first ``date`` partition), if any."""
        types = {c.name: c.dtype for c in self.columns}
        return next((p for p in self.partition_by if types.get(p) == "date"), None)

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
            "array<string>": pa.list_(pa.string()),
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
            "array<string>": T.ArrayType(T.StringType(), containsNull=True),
        }
        return T.StructType(
            [T.StructField(c.name, types[c.dtype], c.nullable) for c in self.columns]
        )


VARIANT_NOTE = "A/B variant (model alias) that recommended the song; null when none did"

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
        # last: an older table gains it at the end (see pipelines.ingest.delta_sink.open_table)
        Column("variant", "string", True, VARIANT_NOTE),
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
_DIMS_WRITER = "pipelines.lake.dims:run"

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
        Column(
            "territories",
            "array<string>",
            False,
            "ISO 3166-1 alpha-2 codes the song is licensed in; elsewhere it may not be played",
        ),
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

# -- silver: bronze cleaned and joined (pipelines/lake/silver.py) -----------------------------

EVENT_TYPES = ("play", "skip", "complete", "like")
DEVICE_TYPES_NOTE = "as the client reported it (mobile, desktop, web, tablet, smart_speaker...)"

SILVER_PLAYS = Table(
    layer="silver",
    name="plays",
    writer="pipelines.lake.silver:run_plays",
    partition_by=("event_date",),
    key=("event_id",),
    description=(
        "Bronze de-duplicated over all history by event_id (the first arrival wins), joined to "
        "the dimensions; a play of an unknown song is kept with song_known false."
    ),
    columns=(
        Column("event_id", "string", False),
        Column("user_id", "string", False),
        Column("song_id", "string", False),
        Column("start_time", "timestamp", False),
        Column("end_time", "timestamp", False),
        Column("ms_played", "long", False),
        Column("event_type", "string", False, "play | skip | complete | like"),
        Column("device_type", "string", False, DEVICE_TYPES_NOTE),
        Column("country_code", "string", False),
        Column("event_date", "date", False, "UTC date of start_time; the partition"),
        Column("ingested_at", "timestamp", False, "when bronze received it (late-data watermark)"),
        Column("artist_id", "string", True, "null when the song is unknown"),
        Column("album_id", "string", True),
        Column("genre", "string", True),
        Column("duration_ms", "int", True, "the song's length; null when unknown"),
        Column("song_known", "boolean", False, "the song is in dims.songs"),
        Column("user_known", "boolean", False, "the listener is in dims.users"),
        Column("completed", "boolean", False, "played >= lake.completed_min_ms or half the song"),
        Column("skipped", "boolean", False, "a skip event, or stopped before completion"),
        Column("local_hour", "int", False, "hour of start_time in the country's main time zone"),
        Column("variant", "string", True, VARIANT_NOTE),
    ),
    checks=(
        NotNull(("event_id", "user_id", "song_id", "start_time", "event_date")),
        Unique(("event_id",)),
        InRange("ms_played", 0, None),
        InRange("local_hour", 0, 23),
        OneOf("event_type", EVENT_TYPES),
        KnownTo("song_id", "dims.songs", "song_id", flag="song_known"),
        KnownTo("user_id", "dims.users", "user_id", flag="user_known"),
        RowsEqualDistinct("bronze.play_events", "event_date", "event_id"),
    ),
)

SILVER_SESSIONS = Table(
    layer="silver",
    name="sessions",
    writer="pipelines.lake.silver:run_sessions",
    partition_by=("session_date",),
    key=("session_id",),
    description=(
        "A listener's plays grouped into sessions: a new session after "
        "lake.session_gap_minutes of silence; a session belongs to the day it started."
    ),
    columns=(
        Column("session_id", "string", False, "hash of user_id and the session's first start"),
        Column("user_id", "string", False),
        Column("session_start", "timestamp", False),
        Column("session_end", "timestamp", False, "the last play's end_time"),
        Column("session_date", "date", False, "UTC date of session_start; the partition"),
        Column("length_s", "double", False, "session_end - session_start, seconds"),
        Column("plays", "long", False),
        Column("skips", "long", False),
        Column("completed", "long", False),
        Column("distinct_songs", "long", False),
        Column("device_type", "string", False, "the device of most of the session's plays"),
        Column("country_code", "string", False),
    ),
    checks=(
        NotNull(("session_id", "user_id", "session_start", "session_date")),
        Unique(("session_id",)),
        InRange("length_s", 0, None),
        InRange("plays", 1, None),
    ),
)

# -- gold: one writer each (pipelines/lake/gold/); analytics tables carry no raw user ids ----

LISTENER_KEY_NOTE = "HMAC-SHA256 pseudonym of the user id under lake.pseudonym_secret (hex)"

DAILY_SONG_PLAYS = Table(
    layer="gold",
    name="daily_song_plays",
    writer="pipelines.lake.gold.songs:run_daily_song_plays",
    partition_by=("day",),
    key=("day", "country_code", "device_type", "song_id"),
    description=(
        "Plays per song, country, device and day (listening events; likes counted apart)."
    ),
    columns=(
        Column("day", "date", False),
        Column("country_code", "string", False),
        Column("device_type", "string", False),
        Column("song_id", "string", False),
        Column("artist_id", "string", True),
        Column("genre", "string", True),
        Column("song_known", "boolean", False),
        Column("plays", "long", False, "listening events: complete, skip, play"),
        Column("likes", "long", False),
        Column(
            "listeners",
            "long",
            False,
            "distinct listeners who played it on that device (a listener on two devices "
            "counts in each: do not sum across devices or countries)",
        ),
        Column("completed", "long", False),
        Column("skips", "long", False),
        Column("ms_played", "long", False),
    ),
    checks=(
        Unique(("day", "country_code", "device_type", "song_id")),
        InRange("plays", 0, None),
        InRange("likes", 0, None),
        Reconciles("silver.plays", "event_date", source_expr="1", target_expr="plays + likes"),
    ),
)

ARTIST_TOP_SONGS = Table(
    layer="gold",
    name="artist_top_songs",
    writer="pipelines.lake.gold.songs:run_artist_top_songs",
    partition_by=("day",),
    key=("day", "artist_id", "song_id"),
    description=(
        "Each artist's most played songs over the lake.top_songs_window_days ending on day "
        "(ties broken by song_id); the latest day is published to PostgreSQL."
    ),
    columns=(
        Column("day", "date", False, "the window's last day"),
        Column("artist_id", "string", False),
        Column("song_id", "string", False),
        Column("rank", "int", False, "1 = most played"),
        Column("plays", "long", False, "plays over the window"),
        # no distinct listeners: the window's sum of daily listeners counts a listener once
        # per day, and counting them exactly would re-read 28 days of silver
        Column("window_days", "int", False),
    ),
    checks=(Unique(("day", "artist_id", "song_id")), Unique(("day", "artist_id", "rank"))),
)

USER_DAILY_LISTENING = Table(
    layer="gold",
    name="user_daily_listening",
    writer="pipelines.lake.gold.listeners:run_user_daily_listening",
    partition_by=("day",),
    key=("day", "listener_key"),
    description="One row per listener and day they played (pseudonymous).",
    columns=(
        Column("day", "date", False),
        Column("listener_key", "string", False, LISTENER_KEY_NOTE),
        Column("country_code", "string", False, "the country of most of the day's plays"),
        Column("plays", "long", False),
        Column("skips", "long", False),
        Column("completed", "long", False),
        Column("ms_played", "long", False),
        Column("distinct_songs", "long", False),
        Column("distinct_artists", "long", False),
        Column("sessions", "long", False, "sessions started that day"),
        Column("top_genre", "string", True),
    ),
    checks=(Unique(("day", "listener_key")), InRange("plays", 1, None)),
)

DAILY_ACTIVE_USERS = Table(
    layer="gold",
    name="daily_active_users",
    writer="pipelines.lake.gold.listeners:run_daily_active_users",
    partition_by=("day",),
    key=("day", "country_code"),
    description=(
        "Distinct listeners over 1, 7 and 28 days ending on day, per country and for all "
        "countries together (country_code 'ALL': not the sum, a listener counts once)."
    ),
    columns=(
        Column("day", "date", False),
        Column("country_code", "string", False, "ISO code, or ALL"),
        Column("dau", "long", False),
        Column("wau", "long", False),
        Column("mau", "long", False, "28 days"),
        Column("new_listeners", "long", False, "first play ever on day"),
        Column("plays", "long", False),
        Column("listening_hours", "double", False),
    ),
    checks=(Unique(("day", "country_code")), InRange("dau", 0, None)),
)

RETENTION_COHORTS = Table(
    layer="gold",
    name="retention_cohorts",
    writer="pipelines.lake.gold.listeners:run_retention_cohorts",
    partition_by=("day",),
    key=("day", "cohort_week", "weeks_since"),
    description=(
        "Weekly cohorts by first play (weeks start on Monday): of the listeners whose first "
        "play fell in cohort_week, how many played in each later week, as of day."
    ),
    columns=(
        Column("day", "date", False, "the build day the table is as of"),
        Column("cohort_week", "date", False, "Monday of the week of the first play"),
        Column("weeks_since", "int", False, "0 = the cohort's own week"),
        Column("cohort_size", "long", False),
        Column("active", "long", False),
        Column("retention", "double", False, "active / cohort_size"),
    ),
    checks=(Unique(("day", "cohort_week", "weeks_since")), InRange("retention", 0, 1)),
)

COUNTRY_DEVICE_BREAKDOWN = Table(
    layer="gold",
    name="country_device_breakdown",
    writer="pipelines.lake.gold.listeners:run_country_device_breakdown",
    partition_by=("day",),
    key=("day", "country_code", "device_type"),
    description="Plays, listeners and listening time per country and device, per day.",
    columns=(
        Column("day", "date", False),
        Column("country_code", "string", False),
        Column("device_type", "string", False),
        Column("plays", "long", False),
        Column("listeners", "long", False),
        Column("skips", "long", False),
        Column("ms_played", "long", False),
    ),
    checks=(Unique(("day", "country_code", "device_type")),),
)

SKIP_RATES = Table(
    layer="gold",
    name="skip_rates",
    writer="pipelines.lake.gold.songs:run_skip_rates",
    partition_by=("day",),
    key=("day", "scope", "subject_id"),
    description="Skip rate per song and per genre (scope), per day.",
    columns=(
        Column("day", "date", False),
        Column("scope", "string", False, "song | genre"),
        Column("subject_id", "string", False, "the song id or the genre"),
        Column("genre", "string", True),
        Column("plays", "long", False),
        Column("skips", "long", False),
        Column("skip_rate", "double", False, "skips / plays"),
    ),
    checks=(
        Unique(("day", "scope", "subject_id")),
        OneOf("scope", ("song", "genre")),
        InRange("skip_rate", 0, 1),
        Reconciles(
            "silver.plays",
            "event_date",
            source_expr="CASE WHEN event_type = 'like' THEN 0 ELSE 1 END",
            target_expr="CASE WHEN scope = 'song' THEN plays ELSE 0 END",
        ),
    ),
)

GENRE_TRENDS = Table(
    layer="gold",
    name="genre_trends",
    writer="pipelines.lake.gold.songs:run_genre_trends",
    partition_by=("day",),
    key=("day", "country_code", "genre"),
    description=(
        "Plays per genre, country (and ALL) and day, their share of the day's plays, and the "
        "change of the last 7 days against the 7 before."
    ),
    columns=(
        Column("day", "date", False),
        Column("country_code", "string", False, "ISO code, or ALL"),
        Column("genre", "string", False, "unknown songs count as 'unknown'"),
        Column("plays", "long", False),
        Column("listeners", "long", False),
        Column("share", "double", False, "of the country's plays that day"),
        Column("plays_7d", "long", False),
        Column("plays_prev_7d", "long", False),
        Column("change_7d", "double", True, "plays_7d / plays_prev_7d - 1; null when no base"),
    ),
    checks=(Unique(("day", "country_code", "genre")), InRange("share", 0, 1)),
)

# -- training: the recommenders' inputs (pipelines/lake/training.py) --------------------------

TRAINING_INTERACTIONS = Table(
    layer="training",
    name="interactions",
    writer="pipelines.lake.training:run",
    partition_by=("cutoff_date",),
    key=("cutoff_date", "user_id", "song_id"),
    description=(
        "Listener x song weighted counts of every play before the cut-off (the end of "
        "cutoff_date, UTC); one snapshot per cut-off, so a model names the data it saw."
    ),
    columns=(
        Column("cutoff_date", "date", False, "plays strictly before the next day's 00:00 UTC"),
        Column("user_id", "string", False),
        Column("song_id", "string", False),
        Column("plays", "long", False),
        Column("completed", "long", False),
        Column("skips", "long", False),
        Column("likes", "long", False),
        Column("weight", "double", False, "the implicit-feedback confidence the models read"),
        Column("first_played_at", "timestamp", False),
        Column("last_played_at", "timestamp", False),
    ),
    checks=(Unique(("cutoff_date", "user_id", "song_id")), InRange("weight", 0, None)),
)

# -- features: daily snapshots the feature store serves (features/jobs.py) ---------------------
# One row per entity and day, as known at the end of the day: ``event_timestamp`` is the next
# day's 00:00 UTC, so a point-in-time join gives an event only what was known before it.

FEATURE_TIME = Column(
    "event_timestamp", "timestamp", False, "when the values became known: feature_date + 1 day"
)

LISTENER_ACTIVITY = Table(
    layer="features",
    name="listener_activity",
    writer="features.jobs:run_listener_activity",
    partition_by=("feature_date",),
    key=("feature_date", "user_id"),
    description=(
        "Per listener with a play in the 28 days up to feature_date: volume, skips, completion, "
        "taste (top genres) and habits (hours) over 7 and 28 days. Likes are not plays."
    ),
    columns=(
        Column("feature_date", "date", False),
        FEATURE_TIME,
        Column("user_id", "string", False),
        Column("plays_7d", "long", False),
        Column("skip_rate_7d", "double", True, "skips / plays; null without plays"),
        Column("completion_rate_7d", "double", True, "completed / plays; null without plays"),
        Column("plays_28d", "long", False),
        Column("skip_rate_28d", "double", True),
        Column("completion_rate_28d", "double", True),
        Column("distinct_artists_28d", "long", False),
        Column("top_genre_28d", "string", True, "most played genre; ties by name"),
        Column("second_genre_28d", "string", True),
        Column("top_genre_share_28d", "double", True, "top genre's share of the plays"),
        Column("peak_local_hour_28d", "int", True, "the local hour with most plays, 0-23"),
        Column("active_hours_28d", "long", False, "distinct local hours with a play"),
        Column("last_played_at", "timestamp", False),
    ),
    checks=(
        Unique(("feature_date", "user_id")),
        InRange("plays_28d", 1, None),
        InRange("skip_rate_28d", 0, 1),
        InRange("completion_rate_28d", 0, 1),
        InRange("peak_local_hour_28d", 0, 23),
    ),
)

SONG_ACTIVITY = Table(
    layer="features",
    name="song_activity",
    writer="features.jobs:run_song_activity",
    partition_by=("feature_date",),
    key=("feature_date", "song_id"),
    description=(
        "Per catalog song: plays, listeners and skip rate over 1 and 7 days up to "
        "feature_date, and its age; songs without plays are there with zeros (cold start)."
    ),
    columns=(
        Column("feature_date", "date", False),
        FEATURE_TIME,
        Column("song_id", "string", False),
        Column("artist_id", "string", False),
        Column("genre", "string", True),
        Column("plays_1d", "long", False),
        Column("skip_rate_1d", "double", True, "null without plays"),
        Column("plays_7d", "long", False),
        Column("listeners_7d", "long", False),
        Column("skip_rate_7d", "double", True),
        Column("age_days", "int", True, "days since release; null when unknown"),
    ),
    checks=(
        Unique(("feature_date", "song_id")),
        InRange("skip_rate_7d", 0, 1),
        InRange("plays_7d", 0, None),
    ),
)

ARTIST_POPULARITY = Table(
    layer="features",
    name="artist_popularity",
    writer="features.jobs:run_artist_popularity",
    partition_by=("feature_date",),
    key=("feature_date", "artist_id"),
    description="Per catalog artist: plays and listeners over 7 and 28 days and the rank.",
    columns=(
        Column("feature_date", "date", False),
        FEATURE_TIME,
        Column("artist_id", "string", False),
        Column("plays_7d", "long", False),
        Column("plays_28d", "long", False),
        Column("listeners_28d", "long", False),
        Column("popularity_rank_28d", "int", False, "1 = most played over 28 days"),
    ),
    checks=(Unique(("feature_date", "artist_id")), InRange("popularity_rank_28d", 1, None)),
)

LISTENER_SESSION = Table(
    layer="features",
    name="listener_session",
    writer="the session feature pusher (features.push, `encore features push`)",
    partition_by=("session_date",),
    description=(
        "Every listener session state pushed to the online store (Feast push source "
        "listener_session_push): the plays of the serving.session_minutes up to the "
        "listener's last play, from the ingestion job's recent:v1 lists. The offline copy of "
        "what was served, for point-in-time training joins (append only)."
    ),
    columns=(
        Column("session_date", "date", False, "the UTC day of event_timestamp"),
        Column(
            "event_timestamp",
            "timestamp",
            False,
            "the listener's last play (never later than when it was computed)",
        ),
        Column("user_id", "string", False),
        Column("session_plays", "long", False, "plays, skips and completions; not likes"),
        Column("session_skips", "long", False),
        Column("session_ms_played", "long", False),
        Column("session_top_genre", "string", True, "most played genre; ties by most recent"),
        Column("session_last_song_id", "string", False),
        Column("session_last_artist_id", "string", True, "null when the song is not in dims"),
        Column("last_play_at", "timestamp", False),
        Column("pushed_at", "timestamp", False, "when the pusher computed the row"),
    ),
)

QUALITY_RESULTS = Table(
    layer="ops",
    name="quality_results",
    writer="pipelines.lake.quality",
    description="Every data-quality check run on a table's day, passed or not (append only).",
    columns=(
        Column("run_id", "string", False),
        Column("table_name", "string", False),
        Column("day", "date", False),
        Column("check_name", "string", False),
        Column("passed", "boolean", False),
        Column("rows_checked", "long", False),
        Column("failing_rows", "long", False),
        Column("example", "string", True, "one failing row as JSON (ids pseudonymised)"),
        Column("checked_at", "timestamp", False),
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
        SILVER_PLAYS,
        SILVER_SESSIONS,
        DAILY_SONG_PLAYS,
        ARTIST_TOP_SONGS,
        USER_DAILY_LISTENING,
        DAILY_ACTIVE_USERS,
        RETENTION_COHORTS,
        COUNTRY_DEVICE_BREAKDOWN,
        SKIP_RATES,
        GENRE_TRENDS,
        TRAINING_INTERACTIONS,
        LISTENER_ACTIVITY,
        SONG_ACTIVITY,
        ARTIST_POPULARITY,
        LISTENER_SESSION,
        JOB_RUNS,
        QUALITY_RESULTS,
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
