"""Real-time signals and online features, each read within a budget and never fatal.

Redis holds what the ingestion job knows seconds after a play (``recent:v1``,
``trending:v1``) and the precomputed lists (``recs:v1``); Feast's online store holds the
daily feature snapshots. Every read here returns ``None`` instead of raising when its store
is down or slow, and the caller flags the answer as degraded: a listener gets a slightly
worse list, never an error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from encore import keys
from encore.settings import Settings

if TYPE_CHECKING:
    import redis
    from feast import FeatureStore

log = logging.getLogger(__name__)

# after a failure, do not try a dead store again on every request (each try costs a timeout)
RETRY_AFTER_S = 2.0


def redis_client(settings: Settings) -> redis.Redis:
    import redis

    timeout = settings.serving.redis_timeout_ms / 1000
    return redis.Redis.from_url(
        settings.redis.effective_url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
    )


@dataclass(frozen=True)
class RealtimeView:
    """What Redis says about one listener now."""

    recent: list[keys.RecentPlay]
    trending: list[tuple[str, int]]
    precomputed: keys.PrecomputedRecs | None


class RealtimeSignals:
    """Reads of the Redis contract with a circuit breaker: down means None, fast."""

    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.client = client or redis_client(settings)
        self._down_until = 0.0

    def _guard(self, read: Any) -> Any:
        import redis

        if time.monotonic() < self._down_until:
            return None
        try:
            return read()
        except (redis.RedisError, OSError) as error:
            self._down_until = time.monotonic() + RETRY_AFTER_S
            log.warning("Redis read failed (%s): answering without real-time signals", error)
            return None

    def listener(self, user_id: str, country: str | None, model: str | None) -> RealtimeView | None:
        """Recent plays, the country's trending songs and the precomputed list, one round trip."""

        def read() -> RealtimeView:
            pipe = self.client.pipeline(transaction=False)
            pipe.lrange(keys.recent_key(user_id), 0, 49)
            if country:  # trending is kept per country only
                pipe.zrange(keys.trending_key(country), 0, 49, desc=True, withscores=True)
            if model:
                pipe.get(keys.recs_key(model, user_id))
            replies = pipe.execute()
            recent = [keys.parse_recent_entry(raw) for raw in replies.pop(0)]
            trending = (
                [(_text(song), int(plays)) for song, plays in replies.pop(0)] if country else []
            )
            raw_recs = replies.pop(0) if model else None
            precomputed = None if raw_recs is None else keys.parse_recs_entry(raw_recs)
            return RealtimeView(recent, trending, precomputed)

        return self._guard(read)

    def trending(self, country: str, n: int) -> list[tuple[str, int]] | None:
        return self._guard(lambda: keys.read_current_trending(self.client, country, n))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class OnlineFeatures:
    """Feast online reads within ``serving.feature_budget_ms``; over budget is skipped."""

    def __init__(self, settings: Settings, store: FeatureStore | None) -> None:
        self.settings = settings
        self.store = store
        self.budget_s = settings.serving.feature_budget_ms / 1000
        # reads run here so a slow one can be abandoned at the budget
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="feast-read")
        self._down_until = 0.0
        self._views: dict[str, Any] = {}

    def read(self, refs: list[str], rows: list[dict[str, str]]) -> dict[str, list[Any]] | None:
        """Columns of ``refs`` (full names, ``view__feature``) for ``rows``; None if skipped."""
        return self._within_budget(
            refs,
            lambda: self.store.get_online_features(
                features=refs, entity_rows=rows, full_feature_names=True
            ).to_dict(),
        )

    def read_entity(self, refs: list[str], join_key: str, value: str) -> dict[str, Any] | None:
        """One entity's features (full names) straight from the online store, within budget.

        The same read as ``get_online_features`` for a single entity, through the online
        store's own ``online_read`` (Feast's Redis format, the view's TTL): without the
        SDK's per-call planning, which costs more than the read itself. None if skipped.
        """
        return self._within_budget(refs, lambda: self._read_entity(refs, join_key, value))

    def _within_budget(self, refs: list[str], read: Callable[[], Any]) -> Any:
        """``read()`` on the pool, abandoned at the budget; None if skipped or failing."""
        if self.store is None or not refs or time.monotonic() < self._down_until:
            return None
        future = self._pool.submit(read)
        try:
            return future.result(timeout=self.budget_s)
        except FutureTimeout:
            log.info("a feature read took over %.0f ms: skipped", self.budget_s * 1000)
            return None
        except Exception as error:
            self._down_until = time.monotonic() + RETRY_AFTER_S
            log.warning("Feast online read failed (%s): answering without features", error)
            return None

    def _read_entity(self, refs: list[str], join_key: str, value: str) -> dict[str, Any]:
        from datetime import UTC, datetime

        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value
        from feast.type_map import feast_value_type_to_python_type

        by_view: dict[str, list[str]] = {}
        for ref in refs:
            view, feature = ref.split(":", 1)
            by_view.setdefault(view, []).append(feature)
        key = EntityKey(join_keys=[join_key], entity_values=[Value(string_val=value)])
        provider = self.store._get_provider()
        out: dict[str, Any] = {}
        now = datetime.now(UTC)
        for view_name, features in by_view.items():
            view = self._views.get(view_name)
            if view is None:
                view = self._views[view_name] = self.store.get_feature_view(view_name)
            [(stamp, values)] = provider.online_read(self.store.config, view, [key], features)
            fresh = values is not None and (
                not view.ttl or stamp is None or _utc(stamp) + view.ttl >= now
            )
            for feature in features:
                raw = values.get(feature) if fresh else None
                out[f"{view_name}__{feature}"] = (
                    None if raw is None else feast_value_type_to_python_type(raw)
                )
        return out

    def read_now(self, refs: list[str], rows: list[dict[str, str]]) -> dict[str, list[Any]]:
        """The same read without a budget, for the background warm-up (raises on failure)."""
        if self.store is None:
            raise RuntimeError("no feature store yet")
        return self.store.get_online_features(
            features=refs, entity_rows=rows, full_feature_names=True
        ).to_dict()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _utc(stamp):
    from datetime import UTC

    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)
