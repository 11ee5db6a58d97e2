"""Pseudonyms of listeners in analytics tables: ``listener_key`` instead of the user id.

``listener_key = HMAC-SHA256(lake.pseudonym_secret, user_id)`` in hex. Analysts can count,
join and follow a listener across gold tables without learning who it is; whoever holds
the key (an erasure, an export) can find one listener's rows. The same function runs in
Python (:func:`listener_key`) and as a Spark column expression computed on the JVM
(:func:`listener_key_column`: HMAC spelled out with ``sha2`` over the padded key, no
Python UDF), and a test proves them equal.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

from encore.errors import ConfigurationError
from encore.settings import LakeSettings, Settings

if TYPE_CHECKING:
    from pyspark.sql import Column

_BLOCK = 64  # SHA-256's block size, in bytes


def _key(settings: Settings) -> bytes:
    return settings.lake.pseudonym_secret.get_secret_value().encode()


def check_pseudonym_secret(settings: Settings) -> None:
    """Refuse the built-in default key outside development: with a public key, anybody
    could recompute a listener's pseudonym from a guessed user id.

    Raises:
        ConfigurationError: the default key is in use and ``settings.development`` is off.
    """
    default = LakeSettings().pseudonym_secret.get_secret_value()
    if not settings.development and settings.lake.pseudonym_secret.get_secret_value() == default:
        raise ConfigurationError(
            "ENCORE_LAKE__PSEUDONYM_SECRET: the built-in default is in use; set a secret of "
            "at least 32 bytes (it keys the listener pseudonyms of the analytics tables)"
        )


def listener_key(settings: Settings, user_id: str) -> str:
    """The pseudonym of ``user_id`` (64 hex characters)."""
    return hmac.new(_key(settings), user_id.encode(), hashlib.sha256).hexdigest()


def listener_key_column(settings: Settings, user_id: Column | str) -> Column:
    """A Spark column: the pseudonym of each row's ``user_id`` (equal to :func:`listener_key`).

    HMAC(K, m) = H((K' ^ opad) || H((K' ^ ipad) || m)), with K' the key padded to the block
    (hashed first when longer than a block).
    """
    from pyspark.sql import functions as F

    key = _key(settings)
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner_pad = bytearray(b ^ 0x36 for b in key)
    outer_pad = bytearray(b ^ 0x5C for b in key)
    message = F.encode(F.col(user_id) if isinstance(user_id, str) else user_id, "UTF-8")
    inner = F.unhex(F.sha2(F.concat(F.lit(inner_pad), message), 256))
    return F.sha2(F.concat(F.lit(outer_pad), inner), 256)
