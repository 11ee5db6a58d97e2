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
from encore.tables import ARTIST_POPULARITY, LISTENER_ACTIVITY, SONG_ACTIVITY, Table

if TYPE_CHECKING:
    from feast import Entity, FeatureService, FeatureView

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


def feature_services(views: dict[str, FeatureView]) -> list[FeatureService]:
    from feast import FeatureService

    return [
        FeatureService(
            name=RANKER_SERVICE,
            features=list(views.values()),
            description="the learned ranker's inputs: listener, song and artist features",
        )
    ]


def definitions(settings: Settings) -> list:
    """Everything ``encore features apply`` registers, in dependency order."""
    views = feature_views(settings)
    return [*entities().values(), *views.values(), *feature_services(views)]


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
