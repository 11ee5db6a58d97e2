"""Brute-force limits on the auth routes, per client address and per username, in Redis.

``POST /api/v1/auth/token`` and ``POST /api/v1/auth/register`` each count attempts under
two keys: the client's address and the username tried. The counters live in Redis
(``settings.redis``), so every API worker and every instance behind a load balancer shares
them. The ``limits`` library keeps them: a moving window (at most N attempts in any span of
the window's length), checked and counted in one Redis script, so concurrent requests
cannot overshoot. An attempt over the limit answers 429 with ``Retry-After`` and is not
recorded: the window frees itself however long an attacker keeps trying, so a victim's
username is never locked beyond the attack plus one window.

Keys: ``ratelimit:v1:LIMITER/<rule>/<subject>/<amount>/<multiples>/<granularity>``
(``encore.keys.RATELIMIT_PREFIX``); the username part is a hash of the name folded for case,
compatibility forms and surrounding whitespace, so ``Ada``, ``ada `` and ``ＡＤＡ`` share
one budget and no username is stored in a key name. IPv6 clients are counted per /64 (what
one subscriber gets).

The client address is the socket's peer. ``X-Forwarded-For`` is believed only when the peer
is one of ``api.trusted_proxies``; then the client is the right-most address in it that is
not a trusted proxy (the left part of the header is whatever the client wrote).

Redis down: the limits fail open (the attempt goes on to the password check; a warning is
logged at most once a minute). Logins do not otherwise need Redis, and a Redis outage must
not lock every listener out; passwords are still verified at full scrypt cost, and the
outage is visible in the logs. A Redis that answers slowly costs a request at most
``REDIS_TIMEOUT_S`` per check.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
import unicodedata
from dataclasses import dataclass

import redis.asyncio
from fastapi import Request
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from encore.keys import RATELIMIT_PREFIX
from encore.settings import Settings
from streaming_api.errors import RateLimitedError

log = logging.getLogger(__name__)

REDIS_TIMEOUT_S = 0.5
"""Connect and read timeout of the limiter's Redis calls."""
_WARN_EVERY_S = 60.0
_MAX_SUBJECT = 64  # longest non-IP peer name kept in a key (test clients, unix sockets)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Rule:
    """One limit: what it counts, the setting holding its rate, the rate parsed."""

    name: str
    setting: str
    subject: str
    """What the limit is per, as the error names it: ``client address`` or ``username``."""
    item: RateLimitItem


def parse_networks(text: str) -> tuple[Network, ...]:
    """``api.trusted_proxies`` (comma-separated addresses or CIDRs) as networks."""
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()
    )


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def _trusted(text: str, proxies: tuple[Network, ...]) -> bool:
    ip = _ip(text)
    return ip is not None and any(ip in network for network in proxies)


def client_address(request: Request, proxies: tuple[Network, ...] = ()) -> str:
    """The address the limits count ``request`` under (see the module docstring)."""
    address = request.client.host if request.client else "unknown"
    if proxies and _trusted(address, proxies):
        hops = [
            hop.strip()
            for header in request.headers.getlist("x-forwarded-for")
            for hop in header.split(",")
            if hop.strip()
        ]
        untrusted = [hop for hop in hops if not _trusted(hop, proxies)]
        if untrusted:
            address = untrusted[-1]
        elif hops:
            address = hops[0]
    ip = _ip(address)
    if ip is None:
        return address[:_MAX_SUBJECT]
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def username_key(username: str) -> str:
    """The per-username counter's subject: one value for every spelling of the same name."""
    folded = unicodedata.normalize("NFKC", username).strip().casefold()
    return hashlib.sha256(folded.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class AuthRateLimiter:
    """The auth routes' limits over one Redis connection pool; one per app (``lifespan``)."""

    def __init__(self, settings: Settings) -> None:
        api = settings.api
        url = settings.redis.effective_url
        self._pool = redis.asyncio.ConnectionPool.from_url(
            url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
        storage = RedisStorage(
            f"async+redis+{url}" if url.startswith("unix") else f"async+{url}",
            implementation="redispy",
            key_prefix=RATELIMIT_PREFIX,
            wrap_exceptions=True,
            connection_pool=self._pool,
        )
        self._limiter = MovingWindowRateLimiter(storage)
        self.proxies = parse_networks(api.trusted_proxies)

        def rule(name: str, field: str, subject: str) -> Rule:
            return Rule(name, f"api.{field}", subject, parse(getattr(api, field)))

        self.login = (
            rule("login-ip", "login_rate_per_ip", "client address"),
            rule("login-user", "login_rate_per_user", "username"),
        )
        self.register = (
            rule("register-ip", "register_rate_per_ip", "client address"),
            rule("register-user", "register_rate_per_user", "username"),
        )
        self._warned_at = -math.inf

    async def check(self, rules: tuple[Rule, Rule], request: Request, username: str) -> None:
        """Count one attempt at ``username`` from ``request``'s client under ``rules`` (per
        address, then per username: a refused address does not spend the username's budget).

        Raises:
            RateLimitedError: a limit is spent; names it and when to retry.
        """
        address, user = rules
        await self._hit(address, client_address(request, self.proxies))
        await self._hit(user, username_key(username))

    async def _hit(self, rule: Rule, subject: str) -> None:
        try:
            if await self._limiter.hit(rule.item, rule.name, subject):
                return
            stats = await self._limiter.get_window_stats(rule.item, rule.name, subject)
        except StorageError as error:
            self._warn(error)
            return
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        reason = (
            f"at most {rule.item.amount} attempts per {_window(rule.item)} per {rule.subject} "
            f"({rule.setting}); retry in {retry_after} s"
        )
        raise RateLimitedError(
            f"too many attempts: {reason}",
            retry_after=retry_after,
            items=[
                {
                    "index": None,
                    "field": "username" if rule.subject == "username" else "(client address)",
                    "reason": reason,
                    "type": "rate_limited",
                    "limit": rule.setting,
                }
            ],
        )

    def _warn(self, error: StorageError) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY_S:
            self._warned_at = now
            log.warning("auth rate limits not enforced, Redis unavailable: %s", error)

    async def close(self) -> None:
        await self._pool.aclose()


def _window(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"
