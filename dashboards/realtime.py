"""Trending now: each country's most played songs in the ingestion job's current window.

Input: Redis, as the ingestion job writes it (:mod:`encore.keys`): the sorted set
``trending:v1:<country>`` (song -> plays in the country's latest event-time window) and the
hash ``ingest:v1:trending-latest-window`` (country -> that window's start, epoch seconds).
Song titles come from ``dims.songs``. Nothing is cached: the page re-reads on its interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from dashboards.metrics import song_names
from encore.errors import ServiceError
from encore.keys import LATEST_WINDOW_KEY, TRENDING_PREFIX, read_current_trending
from encore.settings import Settings

if TYPE_CHECKING:
    import polars as pl

FILL_HINT = (
    "The ingestion job writes them as plays arrive: `encore up` then `encore ingest start`, "
    "with plays from the apps or `encore simulate`; `make demo` runs it all."
)


@dataclass(frozen=True)
class TrendingNow:
    """``rows``: country_code, rank, song_id, title, artist, plays (most played first);
    ``windows``: each country's current window as (start, end), UTC; ``read_at``: when."""

    rows: pl.DataFrame
    windows: dict[str, tuple[datetime, datetime]]
    read_at: datetime


def trending_now(settings: Settings, countries: tuple[str, ...] = (), top: int = 10) -> TrendingNow:
    """The ``top`` songs of each country's current window (of ``countries``; empty: every
    country with a ranking).

    Raises:
        ServiceError: Redis does not answer.
    """
    import polars as pl
    import redis

    url = settings.redis.effective_url
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    window_s = settings.flink.trending_window_s
    try:
        starts = {
            _text(country): int(start)
            for country, start in client.hgetall(LATEST_WINDOW_KEY).items()
        }
        known = sorted(set(starts) | set(_ranked_countries(client)))
        wanted = [c for c in known if c in countries] if countries else known
        ranked = [
            (country, rank, song, plays)
            for country in wanted
            for rank, (song, plays) in enumerate(read_current_trending(client, country, top), 1)
        ]
    except redis.RedisError as error:
        raise ServiceError(
            "redis", f"{_safe(url)} does not answer ({error}); start it with `encore up redis`"
        ) from None
    finally:
        client.close()
    rows = pl.DataFrame(
        ranked,
        schema={
            "country_code": pl.String,
            "rank": pl.Int64,
            "song_id": pl.String,
            "plays": pl.Int64,
        },
        orient="row",
    )
    rows = (
        rows.join(
            song_names(settings).select("song_id", "title", "artist"), on="song_id", how="left"
        )
        .with_columns(
            pl.col("title").fill_null(pl.col("song_id")), pl.col("artist").fill_null("unknown")
        )
        .select("country_code", "rank", "song_id", "title", "artist", "plays")
        .sort("country_code", "rank")
    )
    windows = {
        country: (
            datetime.fromtimestamp(start, UTC),
            datetime.fromtimestamp(start, UTC) + timedelta(seconds=window_s),
        )
        for country, start in starts.items()
        if country in wanted
    }
    return TrendingNow(rows, windows, datetime.now(UTC))


def _ranked_countries(client) -> list[str]:
    """Countries with a current ranking (``trending:v1:<country>``, not a window's key)."""
    countries = []
    for key in client.scan_iter(match=f"{TRENDING_PREFIX}:*", count=500):
        rest = _text(key)[len(TRENDING_PREFIX) + 1 :]
        if ":" not in rest:
            countries.append(rest)
    return countries


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _safe(url: str) -> str:
    """The URL without a password."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url
