"""One typed settings object for the whole platform.

Defaults are the embedded, one-machine ones; production overrides them with environment
variables only: prefix ``ENCORE_``, nested delimiter ``__``
(``ENCORE_KAFKA__BOOTSTRAP_SERVERS=broker-1:9092,broker-2:9092``). Nothing else in the code
base reads ``os.environ`` for configuration.

Mistakes are refused when ``Settings()`` is built, with one line naming the variable
(:class:`SettingsError`): an ``ENCORE_*`` variable that is not a setting (a misspelling would
otherwise leave the default in place, a secret's included) and an impossible value (a port
outside 1-65535, a zero timeout, a URL of the wrong scheme).
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from encore.errors import ConfigurationError

REPO_ROOT = Path(__file__).resolve().parent.parent

# Ports sit off the standard ones (9092, 6379, 5432, 5000) so a developer's own servers
# never clash with the embedded platform.
DEFAULT_PORTS = {
    "kafka": 19092,
    "kafka_controller": 19093,
    "redis": 16379,
    "postgres": 15432,
    "mlflow": 15000,
    "api": 18000,
    "serving": 18001,
    "airflow": 18080,
    "dashboard": 18501,
}


ENV_PREFIX = "ENCORE_"
NOT_SETTINGS = frozenset(
    {
        "ENCORE_SETUP_AIRFLOW",
        "ENCORE_CLI",
        "ENCORE_DAG_RETRIES",
        "ENCORE_TEST_ARTIFACTS",
        "ENCORE_UPDATE_SCREENSHOTS",
    }
)
"""``ENCORE_*`` variables read by scripts (``infra/setup.sh``, ``dags/``) and the tests (where
the browser test saves its screenshots, whether it refreshes the README's), not settings."""


class SettingsError(ConfigurationError, ValueError):
    """Settings that cannot be: an unknown ``ENCORE_*`` variable or an impossible value.

    The message is one line naming each variable and what was expected.
    """


def _url(*schemes: str) -> AfterValidator:
    """Empty (the embedded default) or a URL of one of ``schemes`` with a host or path."""

    def check(value: str) -> str:
        scheme, sep, rest = value.partition("://")
        if value and (not sep or scheme not in schemes or not rest.strip("/")):
            raise ValueError(f"expected empty or a {' or '.join(s + '://' for s in schemes)} URL")
        return value

    return AfterValidator(check)


def _host_ports(value: str) -> str:
    for server in filter(None, (part.strip() for part in value.split(","))):
        host, _, port = server.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"expected a comma-separated host:port list, got {server!r}")
    return value


# One expression of the ``limits`` library's grammar (checked here without importing it:
# the Flink and Airflow environments read these settings too and do not have it).
_RATE = re.compile(
    r"\s*[1-9][0-9]*\s*(/|\s*per\s*)\s*([1-9][0-9]*)?\s*(second|minute|hour|day)s?\s*"
)


def _rate(value: str) -> str:
    if not _RATE.fullmatch(value):
        raise ValueError("expected a rate like '5/minute', '3/2 seconds' or '20 per hour'")
    return value


def _networks(value: str) -> str:
    for part in filter(None, (p.strip() for p in value.split(","))):
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise ValueError(
                f"expected comma-separated IP addresses or CIDRs, got {part!r}"
            ) from None
    return value


Port = Annotated[int, Field(ge=1, le=65535)]
Positive = Annotated[int, Field(gt=0)]
NonNegative = Annotated[int, Field(ge=0)]
Rate = Annotated[str, AfterValidator(_rate)]


class Section(BaseModel):
    """A settings section: unknown keys are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


class KafkaSettings(Section):
    bootstrap_servers: Annotated[str, AfterValidator(_host_ports)] = ""
    """Comma-separated ``host:port`` list; empty means the embedded broker on ``port``."""
    port: Port = DEFAULT_PORTS["kafka"]
    controller_port: Port = DEFAULT_PORTS["kafka_controller"]
    play_events_topic: str = Field("play-events", min_length=1)
    play_events_partitions: Positive = 6
    replication_factor: Positive = 1
    """Of the topics Encore creates; raise it on a real cluster (3 is usual)."""
    heap: str = "512m"

    @property
    def servers(self) -> str:
        return self.bootstrap_servers or f"localhost:{self.port}"


class RedisSettings(Section):
    url: Annotated[str, _url("redis", "rediss", "unix")] = ""
    """A ``redis://`` URL; empty means the embedded server on ``port``."""
    port: Port = DEFAULT_PORTS["redis"]

    @property
    def effective_url(self) -> str:
        return self.url or f"redis://localhost:{self.port}/0"


class PostgresSettings(Section):
    dsn: Annotated[str, _url("postgresql", "postgres", "postgresql+psycopg")] = ""
    """A ``postgresql://`` DSN; empty means the embedded cluster on ``port``."""
    port: Port = DEFAULT_PORTS["postgres"]
    user: str = "encore"
    database: str = "encore"
    mlflow_database: str = "mlflow"

    @property
    def effective_dsn(self) -> str:
        return self.dsn or f"postgresql://{self.user}@localhost:{self.port}/{self.database}"

    @property
    def mlflow_dsn(self) -> str:
        """The MLflow backend store: a sibling database on the same server."""
        base = self.effective_dsn.rsplit("/", 1)[0]
        return f"{base}/{self.mlflow_database}"


class MlflowSettings(Section):
    tracking_uri: str = ""
    """Empty means the embedded tracking server on ``port``."""
    port: Port = DEFAULT_PORTS["mlflow"]
    artifacts_root: str = ""
    """Where the embedded server stores artifacts; empty means ``$ENCORE_HOME/mlflow``."""
    workers: Positive = 1

    @property
    def effective_tracking_uri(self) -> str:
        return self.tracking_uri or f"http://127.0.0.1:{self.port}"


class LakeSettings(Section):
    root: str = ""
    """Lake root: a local directory or an ``s3://`` URI; empty means ``$ENCORE_HOME/lake``."""
    storage_options: dict[str, str] = Field(default_factory=dict)
    """Passed to delta-rs for object stores (``AWS_REGION``, ``AWS_ENDPOINT_URL``, ...)."""
    vacuum_retention_hours: NonNegative = 168
    """``encore lake maintain`` removes files unreferenced for longer than this (time travel
    and readers of older versions need them until then)."""
    target_file_mb: Positive = 128
    """Compaction's target file size."""
    session_gap_minutes: Positive = 30
    """``silver.sessions``: a listener's next play after this much silence starts a session."""
    completed_min_ms: Positive = 30_000
    """``silver.plays.completed``: at least this long played, or at least half the song."""
    top_songs_window_days: Positive = 28
    """``gold.artist_top_songs``: the rolling window counted, ending on the built day."""
    top_songs_per_artist: Positive = 10
    """Songs kept (and published to PostgreSQL) per artist."""
    late_lookback_days: NonNegative = 7
    """``encore lake build`` also rebuilds earlier days, up to this many back, whose bronze
    partition received events after their last build (late or replayed events)."""
    pseudonym_secret: SecretStr = SecretStr("dev-lake-pseudonym-secret-change-me-32b")
    """HMAC key of the ``listener_key`` pseudonyms in analytics tables (they carry no raw
    user ids) and of the erasure log's subject; refused outside development while default."""
    privacy_deadline_hours: Positive = 72
    """A queued erasure or export request must be done within this long of its arrival
    (the ``privacy_requests`` DAG processes the queue and fails loudly on one overdue)."""


class SparkSettings(Section):
    master: str = "local[*]"
    """``local[*]`` embedded; ``spark://host:7077``, ``yarn`` or ``k8s://...`` beyond."""
    driver_memory: str = "2g"
    shuffle_partitions: Positive = 8
    ui_enabled: bool = False


class AirflowSettings(Section):
    """The scheduler of the batch platform (``encore up airflow``; DAGs in ``dags/``).

    Embedded: API server, scheduler and DAG processor with the LocalExecutor, metadata in
    the platform's PostgreSQL (database ``database``). Beyond one machine: ``executor``
    ``CeleryExecutor`` or ``KubernetesExecutor`` and ``sql_alchemy_conn`` of a managed
    PostgreSQL (docs/airflow.md).
    """

    host: str = "127.0.0.1"
    port: Port = DEFAULT_PORTS["airflow"]
    database: str = "airflow"
    """Database of Airflow's metadata on the platform's PostgreSQL."""
    sql_alchemy_conn: SecretStr = SecretStr("")
    """Airflow's metadata database URL; empty means ``database`` on Encore's PostgreSQL."""
    executor: str = "LocalExecutor"
    parallelism: Positive = 2
    """Task instances running at once across every DAG: one per core here."""
    max_active_tasks_per_dag: Positive = 2
    dag_file_timeout_s: Positive = 30
    """A DAG file taking longer than this to parse fails to load (nothing heavy at parse)."""
    venv: str = ""
    """Airflow's own environment; empty means ``infra/envs/airflow/.venv`` in the checkout."""
    jwt_secret: SecretStr = SecretStr("dev-airflow-jwt-secret-change-me-32-bytes")
    """Signs the tokens between Airflow's components (task execution API); one value for
    all of them. Refused outside development while default."""
    admin_password: SecretStr = SecretStr("")
    """Password of the UI's ``admin`` user; empty in development: every visitor is admin."""


class FlinkSettings(Section):
    jobmanager: str = ""
    """``host:port`` of a Flink JobManager's REST endpoint; empty runs the mini-cluster."""
    parallelism: Positive = 2
    checkpoint_interval_ms: Positive = 2000
    venv: str = ""
    """The Flink environment's venv; empty means ``infra/envs/flink/.venv`` in the checkout."""
    state_backend: str = "hashmap"
    """``hashmap`` (state on the JVM heap, full snapshots) or ``rocksdb`` (on disk,
    incremental snapshots). The ingestion job's state is only its pending micro-batches (a
    second or two of raw records), small enough for the heap, where every append is far
    cheaper than RocksDB's serialised writes."""
    dedup_ttl_s: Positive = 3600
    """How long an ``event_id`` is remembered for de-duplication (producer retries, client
    resends). A copy arriving later than this is stored twice. The ingestion sink keeps the
    ids in memory (~100 bytes each) and reloads them from bronze when it starts."""
    commit_interval_ms: Positive = 1000
    """Ingestion micro-batch: the Flink window that hands raw records to the sink, one Redis
    transaction (and a rejected-table commit when there are rejects) per interval."""
    bronze_target_rows: Positive = 2000
    """A bronze commit is made once this many rows are pending (under load: every
    micro-batch, so Delta stays within the freshness goal) ..."""
    bronze_max_delay_ms: Positive = 10_000
    """... or once the oldest pending row waited this long (when quiet: one commit, one file
    per date, gathers many micro-batches instead of a tiny file per second)."""
    trending_window_s: Positive = 300
    """Tumbling event-time window of the trending-songs counts."""
    trending_lateness_s: NonNegative = 10
    """Event-time watermark lag: how late a play may arrive and still count in Delta."""
    recent_plays: Positive = 50
    """Length of each ``recent:v1:<user>`` list."""
    redis_ttl_s: Positive = 86400
    """TTL of the real-time Redis keys (reset on every write)."""
    ingest_parallelism: Positive = 1
    """Lanes of the ingestion job: each owns whole Kafka partitions (``partition % lanes``)
    and commits on its own. One Python interpreter per TaskManager runs every lane's sink, so
    more lanes pay off with more TaskManagers (a cluster), not on one machine."""
    python_execution_mode: Literal["thread", "process"] = "thread"
    """Where the job's Python functions run: ``thread`` embeds the interpreter in the JVM
    (pemja; no serialisation round trip per bundle), ``process`` runs separate Python workers
    over gRPC (isolation, needed for a Python that cannot be embedded)."""
    fault: str = ""
    """Fault injection, for tests only: ``<point>[:<batch>]`` makes the ingestion job kill
    itself at that point of its ``<batch>``-th bronze micro-batch (default 1); points are
    ``pipelines.ingest.faults.POINTS``. Empty (the default) injects nothing."""


class EventsSettings(Section):
    """Time bounds of the play-event contract (``encore.events``), the same at the API and
    in the ingestion job: ``start_time`` within [arrival - age, arrival + skew]."""

    max_clock_skew_s: NonNegative = 300
    """How far ``start_time`` may lie after the event's arrival (client clocks run fast)."""
    max_event_age_s: Positive = 30 * 86400
    """How far ``start_time`` may lie before its arrival; older history is imported, not
    sent to the live topic."""


class ApiSettings(Section):
    host: str = "127.0.0.1"
    port: Port = DEFAULT_PORTS["api"]
    service_token: SecretStr = SecretStr("dev-service-token-change-me")
    """Bearer token of trusted service clients (simulator, backfills) posting for any user."""
    jwt_secret: SecretStr = SecretStr("dev-jwt-secret-change-me-to-32-bytes!")
    jwt_ttl_seconds: Positive = 3600
    workers: Positive = 2
    """uvicorn worker processes of ``encore api`` (each has its own Kafka producer and
    ``db_pool_size`` connections). One worker is GIL-bound at about one core (validation and
    kafka-python's ``send()`` are Python), so the event path scales with workers up to the
    cores it may use: 2 suits the 2-core machine it is measured on; give it about one per
    core left after Kafka on a bigger host."""
    max_batch_events: Positive = 1000
    max_body_bytes: Positive = 2_000_000
    """Largest request body accepted (a full batch of v1 events is ~300 KB)."""
    produce_timeout_ms: Positive = 10_000
    """How long a request waits for Kafka to acknowledge its events before answering 503."""
    readiness_timeout_ms: Positive = 2000
    """How long ``/api/v1/health/ready`` waits for each dependency (Kafka, PostgreSQL)."""
    producer_linger_ms: NonNegative = 5
    """Kafka producer batching delay; small because every request waits for its acks."""
    producer_batch_size: Positive = 256 * 1024
    producer_compression: str = "none"
    """Kafka producer codec: none, gzip, lz4, zstd (lz4/zstd need their Python packages)."""
    login_rate_per_ip: Rate = "20/minute"
    """Attempts at ``POST /api/v1/auth/token`` from one client address (an IPv6 client's
    /64), in a moving window shared by every API worker through Redis; more answer 429."""
    login_rate_per_user: Rate = "5/minute"
    """Attempts at ``POST /api/v1/auth/token`` for one username, from any address (the name
    compared case- and whitespace-insensitively). A window, not a ban: it frees itself."""
    register_rate_per_ip: Rate = "20/hour"
    """Accounts ``POST /api/v1/auth/register`` may be asked for from one client address."""
    register_rate_per_user: Rate = "5/minute"
    """Registrations of one username (a probe whether it is taken), from any address."""
    trusted_proxies: Annotated[str, AfterValidator(_networks)] = ""
    """Comma-separated addresses or CIDRs of reverse proxies whose ``X-Forwarded-For`` names
    the client. Empty (the default): the socket's peer is the client, the header is ignored."""
    db_pool_size: Positive = 10
    """PostgreSQL connections each API worker keeps (catalog, search, playlists, accounts)."""
    public_url: str = ""
    """Base URL clients reach the API at (stream URLs are built on it); empty means
    ``http://<host>:<port>``."""

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


class CatalogSettings(Section):
    seed: NonNegative = 7
    """Seed of the synthetic catalog (same seed, same artists, albums, songs and ids)."""
    artists: Positive = 400
    """Artists in the synthetic catalog ``encore catalog load`` creates by default."""
    songs_per_artist: Positive = 12
    """Mean songs per artist (albums hold 8-14 of them)."""


class MediaSettings(Section):
    root: str = ""
    """Where renditions and keys live: a local folder, or an ``s3://bucket/prefix`` root
    (``storage_options`` passed to fsspec). Empty means ``<home>/media``."""
    storage_options: dict[str, str] = Field(default_factory=dict)
    ladder_kbps: list[Positive] = Field(default_factory=lambda: [64, 128, 256])
    """The AAC HLS bitrate ladder every master is transcoded to."""
    segment_seconds: Positive = 6
    ingest_workers: Positive = 2
    """Masters transcoded at once by ``encore content ingest`` (each runs one ffmpeg)."""
    stream_secret: SecretStr = SecretStr("dev-stream-secret-change-me-to-32-bytes")
    """HMAC key of stream tokens (bound to user, song and expiry); refused outside development
    while it is the built-in default."""
    stream_token_ttl_s: Positive = 3600
    """How long a stream URL stays valid (a whole song must be fetched within it)."""


class FeaturesSettings(Section):
    """The feature store (Feast): offline over the lake, online in Redis."""

    project: str = "encore"
    repo: str = ""
    """Folder of the rendered ``feature_store.yaml`` and the file registry; empty means
    ``<home>/features``."""
    online_store: Literal["redis", "sqlite"] = "redis"
    """``redis`` (the platform's Redis, ``redis.url``) or ``sqlite`` (a file in the repo,
    for a machine without Redis)."""
    snapshot_ttl_hours: Positive = 48
    """How old a daily snapshot may be and still be served (offline joins and online
    reads): one day's snapshot is known at the next 00:00, a day's slack covers a late
    build."""
    push_interval_ms: Positive = 1000
    """How often ``encore features push`` pushes the sessions of listeners the ingestion job
    has just applied plays of (``listener_session``)."""
    push_wait_s: Positive = 10
    """How long a play may wait for the ingestion job to apply it before its listener's
    session is recomputed anyway (a duplicate or rejected event never shows in the job's
    offsets)."""
    session_log_interval_s: Positive = 60
    """How often the pushed sessions are appended to ``features.listener_session`` (the
    offline copy): fewer, larger Delta commits than one per push."""


class ServingSettings(Section):
    host: str = "127.0.0.1"
    port: Port = DEFAULT_PORTS["serving"]
    workers: Positive = 1
    """uvicorn worker processes; each holds its own models (memory grows with them)."""
    model_name: str = "encore-als"
    model_alias: str = "champion"
    registry_poll_s: Positive = 30
    """How often the service checks which version the alias names; a new one loads in the
    background and swaps in whole."""
    ranker_name: str = "encore-ranker"
    """Registered model of the second stage (LightGBM LambdaRank); served at ``model_alias``."""
    ab_split: dict[str, float] = Field(default_factory=lambda: {"champion": 1.0})
    """A/B variants: model alias -> share of listeners (weights, normalised). A listener's
    variant is a stable hash of ``ab_salt`` and their id, so it never flips between calls."""
    ab_salt: str = "encore-ab-1"
    """Names the experiment: a new salt reshuffles every listener."""
    candidates: Positive = 200
    """First-stage candidates per request (champion FAISS + trending + recent artists)."""
    exclude_played_days: NonNegative = 7
    """Songs the listener played in the last days are not recommended."""
    max_per_artist: Positive = 2
    """At most this many songs of one artist in the top 10 (MMR re-rank)."""
    mmr_lambda: float = Field(0.7, ge=0.0, le=1.0)
    """Relevance against diversity in the MMR re-rank (1 = relevance only)."""
    session_minutes: Positive = 30
    """Plays this recent (``recent:v1``) shape the next answer: their genres and artists."""
    feature_budget_ms: Positive = 25
    """A Feast online read slower than this is skipped and the answer flagged."""
    redis_timeout_ms: Positive = 50
    """Socket timeout of the service's Redis calls: a slow Redis degrades, never blocks."""
    recs_top_n: Positive = 100
    """Songs per precomputed ``recs:v1`` list."""
    recs_ttl_s: Positive = 2 * 86400
    """TTL of a precomputed list: a list not refreshed for two days is not served."""
    recs_active_days: Positive = 28
    """Listeners with a play in these last days get a precomputed list."""

    @field_validator("ab_split")
    @classmethod
    def _split_has_weight(cls, split: dict[str, float]) -> dict[str, float]:
        if not split or any(share < 0 for share in split.values()) or sum(split.values()) <= 0:
            raise ValueError(
                "ab_split maps model aliases to non-negative shares, at least one above 0, "
                f"got {split}"
            )
        # the alias is recorded in play events as their `variant`: it must pass the contract
        from encore.events import VARIANT_MAX_CHARS, VARIANT_PATTERN

        bad = [a for a in split if len(a) > VARIANT_MAX_CHARS or not re.match(VARIANT_PATTERN, a)]
        if bad:
            raise ValueError(
                f"expected ab_split aliases of 1-{VARIANT_MAX_CHARS} letters, digits, '_' or "
                f"'-' (each is recorded as a play event's variant), got {bad}"
            )
        return split


class DatasetSettings(Section):
    root: str = ""
    """Folder holding real datasets (``hetrec2011-lastfm-2k/``...); empty means
    ``../shared/datasets`` beside the checkout when it exists. Never required."""

    def resolve(self) -> Path | None:
        path = Path(self.root) if self.root else REPO_ROOT.parent / "shared" / "datasets"
        return path if path.is_dir() else None


class ModelsSettings(Section):
    registry_metric: str = "ndcg@10"
    """The metric a challenger must beat the champion on to be promoted."""
    faiss_exact_max_items: NonNegative = 100_000
    """Item indexes up to this size are exact inner-product (flat); above it, HNSW."""
    faiss_hnsw_m: Positive = 32
    faiss_hnsw_ef_construction: Positive = 200
    faiss_hnsw_ef_search: Positive = 128


class DashboardSettings(Section):
    """The analysts' dashboard (Streamlit, ``encore dashboard``; ``dashboards/``)."""

    host: str = "127.0.0.1"
    port: Port = DEFAULT_PORTS["dashboard"]
    realtime_refresh_s: Positive = 5
    """How often the real-time page re-reads the trending rankings from Redis."""
    worst_min_plays: Positive = 20
    """A song needs at least this many plays in the range to rank among the worst skipped
    (a song played twice and skipped twice says little)."""


class Settings(BaseSettings):
    """Everything configurable about Encore, from one place."""

    model_config = SettingsConfigDict(
        env_prefix="ENCORE_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    home: Path = REPO_ROOT / ".encore"
    """State of the embedded platform: service data, logs, pid files, the local lake."""
    jars_dir: Path = REPO_ROOT / ".jars"
    """JVM jars resolved by Maven at setup (``make jars``); one folder per engine."""
    development: bool = False
    """Turns on development conveniences: the built-in default secrets are accepted. Never
    set in production (``ENCORE_DEVELOPMENT``)."""

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    lake: LakeSettings = Field(default_factory=LakeSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    flink: FlinkSettings = Field(default_factory=FlinkSettings)
    airflow: AirflowSettings = Field(default_factory=AirflowSettings)
    events: EventsSettings = Field(default_factory=EventsSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    features: FeaturesSettings = Field(default_factory=FeaturesSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    datasets: DatasetSettings = Field(default_factory=DatasetSettings)
    models: ModelsSettings = Field(default_factory=ModelsSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)

    def __init__(self, **values: Any) -> None:
        """Read the environment, refusing unknown ``ENCORE_*`` variables and impossible values.

        Raises:
            SettingsError: one line naming each variable and what was expected.
        """
        problems = [_unknown(name) for name in sorted(unknown_env_vars(os.environ))]
        if problems:
            raise SettingsError("; ".join(problems))
        try:
            super().__init__(**values)
        except ValidationError as error:
            raise SettingsError(_describe(error)) from None

    @model_validator(mode="after")
    def _absolute_paths(self) -> Settings:
        self.home = self.home.expanduser().resolve()
        self.jars_dir = self.jars_dir.expanduser().resolve()
        return self

    @property
    def lake_root(self) -> str:
        return self.lake.root or str(self.home / "lake")

    @property
    def mlflow_artifacts_root(self) -> Path:
        return (
            Path(self.mlflow.artifacts_root) if self.mlflow.artifacts_root else self.home / "mlflow"
        )

    @property
    def features_repo(self) -> Path:
        return Path(self.features.repo) if self.features.repo else self.home / "features"

    @property
    def airflow_bin(self) -> Path:
        default = REPO_ROOT / "infra/envs/airflow/.venv"
        return (Path(self.airflow.venv) if self.airflow.venv else default) / "bin"

    @property
    def flink_python(self) -> Path:
        venv = Path(self.flink.venv) if self.flink.venv else REPO_ROOT / "infra/envs/flink/.venv"
        return venv / "bin" / "python"


def env_var_names(model: type[BaseModel] = Settings, prefix: str = ENV_PREFIX) -> set[str]:
    """Every ``ENCORE_*`` variable that names a setting, sections included (a section's own
    name takes JSON). A dict field's name ends with ``__``: any key may follow it."""
    names: set[str] = set()
    for field_name, info in model.model_fields.items():
        name = f"{prefix}{field_name.upper()}"
        names.add(name)
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            names |= env_var_names(kind, f"{name}__")
        elif getattr(kind, "__origin__", None) is dict:
            names.add(f"{name}__")
    return names


@functools.cache
def _known_env_vars() -> frozenset[str]:
    """:func:`env_var_names` of ``Settings``: it depends on the model only, so once."""
    return frozenset(env_var_names())


def unknown_env_vars(environ: dict[str, str] | os._Environ) -> list[str]:
    """The ``ENCORE_*`` variables of ``environ`` that are not settings (case-insensitive, as
    pydantic-settings reads them)."""
    known = _known_env_vars()
    open_prefixes = tuple(name for name in known if name.endswith("__"))
    return [
        key
        for key in environ
        if key.upper().startswith(ENV_PREFIX)
        and key.upper() not in known
        and key.upper() not in NOT_SETTINGS
        and not key.upper().startswith(open_prefixes)
    ]


def _unknown(name: str) -> str:
    close = difflib.get_close_matches(name.upper(), sorted(_known_env_vars()), n=1, cutoff=0.75)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{name} is not a setting{hint}"


# Values never repeated in an error message: they may hold a password.
_SECRET_WORDS = ("secret", "token", "password", "dsn", "url", "uri", "storage_options")


def _describe(error: ValidationError) -> str:
    """One line for a settings ValidationError: each problem named by its variable."""
    problems = []
    for item in error.errors():
        name = ENV_PREFIX + "__".join(str(part).upper() for part in item["loc"])
        if item["type"] == "extra_forbidden":
            problems.append(_unknown(name))
            continue
        expected = item["msg"].removeprefix("Value error, ").replace("Input should be ", "", 1)
        expected = expected if expected.startswith("expected") else f"expected {expected}"
        shown = not any(word in name.lower() for word in _SECRET_WORDS)
        shown = shown and item["type"] != "missing" and ", got " not in expected
        got = f", got {item['input']!r}" if shown else ""
        problems.append(f"{name}: {expected}{got}")
    return "; ".join(problems)


def settings_env(settings: Settings) -> dict[str, str]:
    """``settings`` as ``ENCORE_*`` variables, so a child process (a Flink job, an API server)
    sees exactly the settings of its parent, including ones set in code by tests."""

    def render(value: object) -> str:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, dict):
            return json.dumps(value)
        return str(value)

    env: dict[str, str] = {}
    for name, value in settings:
        if isinstance(value, BaseModel):
            for field_name, field_value in value:
                env[f"ENCORE_{name.upper()}__{field_name.upper()}"] = render(field_value)
        else:
            env[f"ENCORE_{name.upper()}"] = render(value)
    return env


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
