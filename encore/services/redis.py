"""Redis: a local server on 127.0.0.1, snapshots in its data dir."""

from __future__ import annotations

import shutil

from encore.errors import ConfigurationError
from encore.services.base import Service, data_dir
from encore.settings import Settings


def _redis_command(settings: Settings) -> list[str]:
    binary = shutil.which("redis-server")
    if not binary:
        raise ConfigurationError(
            "redis-server not found; `make setup` installs it with apt-get "
            "(Debian package redis-server)"
        )
    return [
        binary,
        "--port",
        str(settings.redis.port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir(settings, "redis")),
        "--save",
        "60 1000",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
    ]


def _redis_healthy(settings: Settings) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(settings.redis.effective_url, socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


SERVICE = Service(
    "redis",
    address=lambda s: s.redis.effective_url,
    command=_redis_command,
    healthy=_redis_healthy,
    prepare=lambda s: data_dir(s, "redis").mkdir(parents=True, exist_ok=True),
    external=lambda s: bool(s.redis.url),
    ports=lambda s: {"ENCORE_REDIS__PORT": s.redis.port},
    core=True,
)
