"""One typed settings object for the whole platform.

Defaults are the embedded, one-machine ones; production overrides them with environment
variables only: prefix ``ENCORE_``, nested delimiter ``__``
(``ENCORE_KAFKA__BOOTSTRAP_SERVERS=broker-1:9092,broker-2:9092``). Nothing else in the code
base reads ``os.environ`` for configuration.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
}


class KafkaSettings(BaseModel):
    bootstrap_servers: str = ""
    """Comma-separated ``host:port`` list; empty means the embedded broker on ``port``."""
    port: int = DEFAULT_PORTS["kafka"]
    controller_port: int = DEFAULT_PORTS["kafka_controller"]
    play_events_topic: str = "play-events"
    play_events_partitions: int = 6
    replication_factor: int = 1
    """Of the topics Encore creates; raise it on a real cluster (3 is usual)."""
    heap: str = "512m"

    @property
    def servers(self) -> str:
        return self.bootstrap_servers or f"localhost:{self.port}"


class RedisSettings(BaseModel):
    url: str = ""
    """A ``redis://`` URL; empty means the embedded server on ``port``."""
    port: int = DEFAULT_PORTS["redis"]

    @property
    def effective_url(self) -> str:
        return self.url or f"redis://localhost:{self.port}/0"


class PostgresSettings(BaseModel):
    dsn: str = ""
    """A ``postgresql://`` DSN; empty means the embedded cluster on ``port``."""
    port: int = DEFAULT_PORTS["postgres"]
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


class MlflowSettings(BaseModel):
    tracking_uri: str = ""
    """Empty means the embedded tracking server on ``port``."""
    port: int = DEFAULT_PORTS["mlflow"]
    artifacts_root: str = ""
    """Where the embedded server stores artifacts; empty means ``$ENCORE_HOME/mlflow``."""
    workers: int = 1

    @property
    def effective_tracking_uri(self) -> str:
        return self.tracking_uri or f"http://127.0.0.1:{self.port}"


class LakeSettings(BaseModel):
    root: str = ""
    """Lake root: a local directory or an ``s3://`` URI; empty means ``$ENCORE_HOME/lake``."""
    storage_options: dict[str, str] = Field(default_factory=dict)
    """Passed to delta-rs for object stores (``AWS_REGION``, ``AWS_ENDPOINT_URL``, ...)."""


class SparkSettings(BaseModel):
    master: str = "local[*]"
    """``local[*]`` embedded; ``spark://host:7077``, ``yarn`` or ``k8s://...`` beyond."""
    driver_memory: str = "2g"
    shuffle_partitions: int = 8
    ui_enabled: bool = False


class FlinkSettings(BaseModel):
    jobmanager: str = ""
    """``host:port`` of a Flink JobManager's REST endpoint; empty runs the mini-cluster."""
    parallelism: int = 2
    checkpoint_interval_ms: int = 2000
    venv: str = ""
    """The Flink environment's venv; empty means ``infra/envs/flink/.venv`` in the checkout."""
    state_backend: str = "rocksdb"
    """``rocksdb`` (incremental checkpoints: cost follows the change, not the dedup state's
    size) or ``hashmap`` (faster per record, full snapshots; fine for small state)."""
    dedup_ttl_s: int = 3600
    """How long an ``event_id`` is remembered for de-duplication (producer retries, client
    resends). A copy arriving later than this is stored twice."""
    commit_interval_ms: int = 1000
    """Ingestion micro-batch: one Delta commit per table and one Redis transaction per
    interval (freshness vs Delta log size)."""
    trending_window_s: int = 300
    """Tumbling event-time window of the trending-songs counts."""
    trending_lateness_s: int = 10
    """Event-time watermark lag: how late a play may arrive and still count in Delta."""
    recent_plays: int = 50
    """Length of each ``recent:v1:<user>`` list."""
    redis_ttl_s: int = 86400
    """TTL of the real-time Redis keys (reset on every write)."""


class EventsSettings(BaseModel):
    """Time bounds of the play-event contract (``encore.events``), the same at the API and
    in the ingestion job: ``start_time`` within [arrival - age, arrival + skew]."""

    max_clock_skew_s: int = 300
    """How far ``start_time`` may lie after the event's arrival (client clocks run fast)."""
    max_event_age_s: int = 30 * 86400
    """How far ``start_time`` may lie before its arrival; older history is imported, not
    sent to the live topic."""


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORTS["api"]
    service_token: SecretStr = SecretStr("dev-service-token-change-me")
    """Bearer token of trusted service clients (simulator, backfills) posting for any user."""
    jwt_secret: SecretStr = SecretStr("dev-jwt-secret-change-me-to-32-bytes!")
    jwt_ttl_seconds: int = 3600
    max_batch_events: int = 1000
    max_body_bytes: int = 2_000_000
    """Largest request body accepted (a full batch of v1 events is ~300 KB)."""
    produce_timeout_ms: int = 10_000
    """How long a request waits for Kafka to acknowledge its events before answering 503."""
    readiness_timeout_ms: int = 2000
    """How long ``/api/v1/health/ready`` waits for each dependency (Kafka, PostgreSQL)."""
    producer_linger_ms: int = 5
    """Kafka producer batching delay; small because every request waits for its acks."""
    producer_batch_size: int = 256 * 1024
    producer_compression: str = "none"
    """Kafka producer codec: none, gzip, lz4, zstd (lz4/zstd need their Python packages)."""


class ServingSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORTS["serving"]
    model_name: str = "encore-als"
    model_alias: str = "champion"


class DatasetSettings(BaseModel):
    root: str = ""
    """Folder holding real datasets (``hetrec2011-lastfm-2k/``...); empty means
    ``../shared/datasets`` beside the checkout when it exists. Never required."""

    def resolve(self) -> Path | None:
        path = Path(self.root) if self.root else REPO_ROOT.parent / "shared" / "datasets"
        return path if path.is_dir() else None


class ModelsSettings(BaseModel):
    registry_metric: str = "ndcg@10"
    """The metric a challenger must beat the champion on to be promoted."""
    faiss_exact_max_items: int = 100_000
    """Item indexes up to this size are exact inner-product (flat); above it, HNSW."""
    faiss_hnsw_m: int = 32
    faiss_hnsw_ef_construction: int = 200
    faiss_hnsw_ef_search: int = 128


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
    events: EventsSettings = Field(default_factory=EventsSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    datasets: DatasetSettings = Field(default_factory=DatasetSettings)
    models: ModelsSettings = Field(default_factory=ModelsSettings)

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
    def flink_python(self) -> Path:
        venv = Path(self.flink.venv) if self.flink.venv else REPO_ROOT / "infra/envs/flink/.venv"
        return venv / "bin" / "python"


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
