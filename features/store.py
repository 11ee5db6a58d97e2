"""The feature store: Feast with the lake as its offline store and Redis as its online store.

``feature_store.yaml`` is rendered from the settings into ``settings.features_repo`` (never
edited by hand: a setting changes it), beside Feast's file registry. The offline store is
Feast's DuckDB store, which reads the lake's Delta tables with DuckDB's ``delta`` extension
(``delta_scan``, which follows ``_delta_log``: a file a compaction or an overwrite removed
from the table is never read, unlike Feast's plain file store, which lists parquet files).
The extension comes from the PyPI package ``duckdb-extension-delta`` built for the pinned
DuckDB and is loaded from that file; DuckDB is told never to download one.

Beyond one machine: the same definitions with a remote Redis (``ENCORE_REDIS__URL``) and an
``s3://`` lake; the offline store stays DuckDB (one process reading Delta from S3) until the
training sets outgrow one machine, then Feast's Spark offline store is the setting to add.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import yaml

from encore.delta import open_delta
from encore.errors import ConfigurationError, NotFoundError
from encore.settings import Settings
from encore.tables import Table

if TYPE_CHECKING:
    from feast import FeatureStore

log = logging.getLogger(__name__)

CONFIG_FILE = "feature_store.yaml"


def render_config(settings: Settings) -> dict[str, Any]:
    """``feature_store.yaml``'s content for ``settings``."""
    repo = settings.features_repo
    if settings.features.online_store == "redis":
        online: dict[str, Any] = {
            "type": "redis",
            "connection_string": redis_connection_string(settings.redis.effective_url),
            # a listener who stopped playing drops out of Redis with their last snapshot
            "key_ttl_seconds": settings.features.snapshot_ttl_hours * 3600,
        }
    else:
        online = {"type": "sqlite", "path": str(repo / "online.db")}
    return {
        "project": settings.features.project,
        "provider": "local",
        "registry": {"registry_type": "file", "path": str(repo / "registry.db")},
        "offline_store": {"type": "duckdb"},
        "online_store": online,
        "entity_key_serialization_version": 3,
    }


def redis_connection_string(url: str) -> str:
    """A ``redis://`` URL in Feast's own form: ``host:port,db=N[,password=...][,ssl=true]``."""
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss"):
        raise ConfigurationError(f"the feature store needs a redis:// URL, not {url!r}")
    parts = [f"{parsed.hostname or 'localhost'}:{parsed.port or 6379}"]
    database = parsed.path.lstrip("/")
    if database:
        parts.append(f"db={int(database)}")
    if parsed.password:
        parts.append(f"password={unquote(parsed.password)}")
    if parsed.scheme == "rediss":
        parts.append("ssl=true")
    return ",".join(parts)


def feature_tables() -> list[Table]:
    """The lake tables the feature views read."""
    from features.definitions import ENTITIES

    return [table for _, table in ENTITIES.values()]


def write_config(settings: Settings) -> Path:
    """Render ``feature_store.yaml`` into the repo folder (created if needed); its path.
    An unchanged file is left alone (its time too)."""
    repo = settings.features_repo
    repo.mkdir(parents=True, exist_ok=True)
    path = repo / CONFIG_FILE
    content = config_text(settings)
    if _read_text(path) != content:
        path.write_text(content)
    return path


def config_text(settings: Settings) -> str:
    """``feature_store.yaml`` for ``settings``, as written to the repo."""
    return yaml.safe_dump(render_config(settings), sort_keys=False)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def delta_extension_file() -> Path:
    """DuckDB's ``delta`` extension, as the PyPI package ``duckdb-extension-delta`` ships it
    for the installed DuckDB.

    Raises:
        ConfigurationError: the package is missing, or built for another DuckDB.
    """
    import duckdb

    try:
        import duckdb_extension_delta
    except ImportError as error:
        raise ConfigurationError(
            "DuckDB's delta extension is missing: install duckdb-extension-delta "
            f"=={duckdb.__version__} (make setup does)"
        ) from error
    path = (
        Path(duckdb_extension_delta.__file__).parent
        / "extensions"
        / f"v{duckdb.__version__}"
        / "delta.duckdb_extension"
    )
    if not path.is_file():
        raise ConfigurationError(
            f"duckdb-extension-delta holds no extension for DuckDB {duckdb.__version__} "
            f"(looked for {path}); pin both to the same version"
        )
    return path


def use_duckdb_with_delta(extension_directory: Path) -> None:
    """Make ibis's default backend, which Feast's DuckDB offline store uses, a DuckDB
    connection with the ``delta`` extension installed from its file (into
    ``extension_directory``, not the user's ``~/.duckdb``) and loaded; downloads forbidden.
    Installed, not only loaded: ibis installs any extension DuckDB reports as not installed,
    which would mean a download."""
    import ibis

    extension_directory.mkdir(parents=True, exist_ok=True)
    connection = ibis.duckdb.connect(
        extension_directory=str(extension_directory),
        autoinstall_known_extensions=False,
        autoload_known_extensions=False,
    )
    connection.raw_sql(f"INSTALL '{delta_extension_file()}'")
    connection.raw_sql("LOAD delta")
    ibis.set_backend(connection)


_stores: dict[Path, tuple[str, FeatureStore]] = {}
"""The open store of each repo folder, with the ``feature_store.yaml`` it was opened on."""
_stores_lock = threading.Lock()


def feature_store(settings: Settings) -> FeatureStore:
    """A Feast ``FeatureStore`` over the rendered repo, ready to read Delta.

    Opened once per repo folder and reused while ``feature_store.yaml`` (on disk, and as the
    settings render it) stays the same: opening renders the file, loads DuckDB's delta
    extension and reads Feast's registry, which the demo, the jobs and the service would
    otherwise repeat on every call. Changed settings (another Redis, another project) open a
    new store; another repo folder has its own. What this process applies it sees at once;
    what another process applies, once Feast's registry cache expires (600 s by default).
    """
    from feast import FeatureStore

    repo = settings.features_repo.resolve()
    content = config_text(settings)
    with _stores_lock:
        cached = _stores.get(repo)
        if cached and cached[0] == content and _read_text(repo / CONFIG_FILE) == content:
            return cached[1]
        write_config(settings)
        use_duckdb_with_delta(repo / "duckdb_extensions")
        opened = FeatureStore(repo_path=str(repo))
        _stores[repo] = (content, opened)
        return opened


def apply(settings: Settings) -> list[str]:
    """Register every definition (entities, sources, views, services); the names applied.
    Idempotent: applying unchanged definitions changes nothing."""
    from features.definitions import definitions

    objects = definitions(settings)
    feature_store(settings).apply(objects)
    return [obj.name for obj in objects]


def materialize(
    settings: Settings, end: datetime | None = None, start: datetime | None = None
) -> None:
    """Load each entity's latest values known in ``[start, end]`` into the online store;
    ``end`` defaults to now, ``start`` to ``end`` less the snapshot TTL (what is servable).

    Raises:
        NotFoundError: a feature table does not exist yet (the lake build makes them).
    """
    missing = [t.qualified_name for t in feature_tables() if open_delta(settings, t) is None]
    if missing:
        raise NotFoundError(
            f"feature tables not built yet: {', '.join(missing)} (run `encore lake build`)"
        )
    end = end or datetime.now(UTC)
    # the snapshots still servable at ``end``: older ones have expired in Redis too
    start = start or end - timedelta(hours=settings.features.snapshot_ttl_hours)
    from features.definitions import feature_views

    # the lake's views only: a push-fed view's online values come from its pushes, and its
    # batch log holds nothing newer than them
    views = list(feature_views(settings))
    feature_store(settings).materialize(start_date=start, end_date=end, feature_views=views)


def read_session(feast: FeatureStore, user_id: str) -> dict[str, Any] | None:
    """The listener's current session features (``listener_session``, pushed by ``encore
    features push``) by name, or None when they played nothing in the last
    ``serving.session_minutes`` (or the pusher never saw them)."""
    from features.definitions import SESSION_VIEW, session_feature_names

    names = session_feature_names()
    row = feast.get_online_features(
        features=[f"{SESSION_VIEW}:{name}" for name in names],
        entity_rows=[{"user_id": user_id}],
    ).to_dict()
    values = {name: row[name][0] for name in names}
    return None if values["session_plays"] is None else values


def forget_listener(settings: Settings, user_id: str) -> int:
    """Delete a listener's features from the online store (part of ``encore privacy
    forget``); how many stored entries went. Nothing to do before the first ``apply``.

    Feast has no public call to delete one entity, so the key is built the way Feast's
    online stores build it (``_redis_key``, ``serialize_entity_key``); the test reads the
    listener back through Feast to prove the entry is gone.
    """
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    from features.definitions import ENTITIES

    if not (settings.features_repo / "registry.db").exists():
        return 0
    join_key = ENTITIES["user"][0]
    entity_key = EntityKey(join_keys=[join_key], entity_values=[Value(string_val=user_id)])
    version = render_config(settings)["entity_key_serialization_version"]
    if settings.features.online_store == "redis":
        import redis
        from feast.infra.online_stores.helpers import _redis_key

        key = _redis_key(settings.features.project, entity_key, version)
        with redis.Redis.from_url(settings.redis.effective_url) as client:
            return int(client.delete(key))
    return _forget_in_sqlite(settings, serialize_entity_key(entity_key, version))


def _forget_in_sqlite(settings: Settings, entity_key: bytes) -> int:
    import sqlite3

    from feast.infra.online_stores.helpers import compute_table_id

    from features.definitions import entities, feature_views, session_view

    path = settings.features_repo / "online.db"
    if not path.exists():
        return 0
    deleted = 0
    views = [*feature_views(settings).values(), session_view(settings, entities()["user"])]
    with sqlite3.connect(path) as connection:
        for view in views:
            if "user" not in view.entities:
                continue
            table = compute_table_id(settings.features.project, view)
            exists = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()
            if exists:
                cursor = connection.execute(
                    f'DELETE FROM "{table}" WHERE entity_key = ?', (entity_key,)
                )
                deleted += cursor.rowcount
    return deleted
