"""What the feature store serves: entities, the lake sources, feature views and the feature
services each model reads.

The views are derived from the table registry (``encore.tables``): a feature table's
columns, less its entity key and its dates, are the view's features, typed from the
registry, so a column added to a feature table is one edit, not two. Each source reads the
table's Delta log (``DeltaFormat``) through DuckDB (see ``features.store``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from encore.settings import Settings
from encore.tables import (
    ARTIST_POPULARITY,
    LISTENER_ACTIVITY,
    LISTENER_SESSION,
    SONG_ACTIVITY,
    Table,
)

if TYPE_CHECKING:
    from feast import Entity, FeatureService, FeatureView, PushSource

TIMESTAMP_FIELD = "event_timestamp"
NOT_FEATURES = {"feature_date", TIMESTAMP_FIELD}

# entity name -> (join key, the feature table keyed by it)
ENTITIES = {
    "user": ("user_id", LISTENER_ACTIVITY),
    "song": ("song_id", SONG_ACTIVITY),
    "artist": ("artist_id", ARTIST_POPULARITY),
}

RANKER_SERVICE = "ranker_v1"
"""The features the ranker of model version 1 was trained on. A ranker trained on other
features gets a new service (``ranker_v2``) beside this one, so a running champion never
sees its inputs change under it."""


SESSION_VIEW = "listener_session"
SESSION_PUSH_SOURCE = "listener_session_push"
SESSION_NOT_FEATURES = {"session_date", TIMESTAMP_FIELD, "user_id", "pushed_at"}
REALTIME_SERVICE = "ranker_v1_realtime"
"""``ranker_v1``'s features plus the listener's current session (``listener_session``): for
a ranker trained with real-time signals. ``ranker_v1`` itself stays as it was."""


def entities() -> dict[str, Entity]:
    from feast import Entity, ValueType

    return {
        name: Entity(name=name, join_keys=[key], value_type=ValueType.STRING)
        for name, (key, _) in ENTITIES.items()
    }


def feature_view(settings: Settings, table: Table, entity: Entity) -> FeatureView:
    """A view over ``table``'s daily snapshots: every column but the key and the dates."""
    from feast import FeatureView, Field, FileSource
    from feast.data_format import DeltaFormat

    key = entity.join_key
    source = FileSource(
        name=f"lake_{table.name}",
        path=table.path(settings),
        file_format=DeltaFormat(),
        timestamp_field=TIMESTAMP_FIELD,
        description=f"{table.qualified_name}: {table.description}",
    )
    schema = [
        Field(name=c.name, dtype=_feast_type(c.dtype), description=c.description)
        for c in table.columns
        if c.name not in NOT_FEATURES and c.name != key
    ]
    return FeatureView(
        name=table.name,
        entities=[entity],
        ttl=timedelta(hours=settings.features.snapshot_ttl_hours),
        schema=schema,
        source=source,
        online=True,
        description=table.description,
    )


def feature_views(settings: Settings) -> dict[str, FeatureView]:
    by_name = entities()
    return {
        table.name: feature_view(settings, table, by_name[name])
        for name, (_, table) in ENTITIES.items()
    }


def session_feature_names() -> list[str]:
    """The ``listener_session`` view's features: ``features.listener_session``'s columns less
    the key, the dates and the pusher's own timestamp."""
    return [c.name for c in LISTENER_SESSION.columns if c.name not in SESSION_NOT_FEATURES]


def session_push_source(settings: Settings) -> PushSource:
    """Where ``encore features push`` sends each listener's session (``features.push``).
    Feast requires a batch source beside a push source: the pusher's own Delta log of the
    same rows, so an offline join sees exactly what was served online."""
    from feast import FileSource, PushSource
    from feast.data_format import DeltaFormat

    log = FileSource(
        name=f"lake_{LISTENER_SESSION.name}",
        path=LISTENER_SESSION.path(settings),
        file_format=DeltaFormat(),
        timestamp_field=TIMESTAMP_FIELD,
        description=f"{LISTENER_SESSION.qualified_name}: {LISTENER_SESSION.description}",
    )
    return PushSource(name=SESSION_PUSH_SOURCE, batch_source=log)


def session_view(settings: Settings, user: Entity) -> FeatureView:
    """The listener's current session, pushed within a second or so of the ingestion job
    applying a play. Its TTL is the session window: a row's timestamp is the listener's last
    play, so ``serving.session_minutes`` of silence later Feast serves nulls (no session)."""
    from feast import FeatureView, Field

    columns = {c.name: c for c in LISTENER_SESSION.columns}
    schema = [
        Field(
            name=name, dtype=_feast_type(columns[name].dtype), description=columns[name].description
        )
        for name in session_feature_names()
    ]
    return FeatureView(
        name=SESSION_VIEW,
        entities=[user],
        ttl=timedelta(minutes=settings.serving.session_minutes),
        schema=schema,
        source=session_push_source(settings),
        online=True,
        description="the listener's plays in the session window up to their last play",
    )


def feature_services(
    views: dict[str, FeatureView], session: FeatureView | None = None
) -> list[FeatureService]:
    from feast import FeatureService

    services = [
        FeatureService(
            name=RANKER_SERVICE,
            features=list(views.values()),
            description="the learned ranker's inputs: listener, song and artist features",
        )
    ]
    if session is not None:
        services.append(
            FeatureService(
                name=REALTIME_SERVICE,
                features=[*views.values(), session],
                description=f"{RANKER_SERVICE}'s features and the listener's current session",
            )
        )
    return services


def definitions(settings: Settings) -> list:
    """Everything ``encore features apply`` registers, in dependency order."""
    by_name = entities()
    views = feature_views(settings)
    session = session_view(settings, by_name["user"])
    return [
        *by_name.values(),
        session_push_source(settings),
        *views.values(),
        session,
        *feature_services(views, session),
    ]


def _feast_type(dtype: str):
    from feast import types

    mapping = {
        "string": types.String,
        "int": types.Int32,
        "long": types.Int64,
        "double": types.Float64,
        "boolean": types.Bool,
        "timestamp": types.UnixTimestamp,
    }
    if dtype not in mapping:
        raise ValueError(f"no Feast type for the registry type {dtype!r}")
    return mapping[dtype]
