"""A/B assignment: which variant (model alias) serves a listener.

A listener's variant is a pure function of ``settings.serving.ab_salt``, the split and their
id: the first 8 bytes of ``sha256(f"{salt}:{user_id}")`` read as a number in [0, 1), placed
on the cumulative shares of the aliases in sorted order. No state, no lookup, the same answer
in every process and on every call; changing the salt starts a new experiment (everyone is
reshuffled), and an alias with share 0 is never assigned. Shares are weights: they are
normalised, so ``{"champion": 9, "challenger": 1}`` is a 90/10 split.
"""

from __future__ import annotations

import functools
import hashlib
from bisect import bisect_right
from itertools import accumulate

from encore.settings import Settings

_SCALE = float(2**64)


@functools.cache
def _boundaries(split: tuple[tuple[str, float], ...]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """The aliases with a positive share, sorted, and the upper end of each one's interval."""
    live = [(alias, share) for alias, share in sorted(split) if share > 0]
    total = sum(share for _, share in live)
    ends = [end / total for end in accumulate(share for _, share in live)]
    ends[-1] = 1.0  # rounding must not leave a sliver at the top unassigned
    return tuple(alias for alias, _ in live), tuple(ends)


def bucket(salt: str, user_id: str) -> float:
    """The listener's stable position in [0, 1) for the experiment named by ``salt``."""
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def assign_variant(settings: Settings, user_id: str) -> str:
    """The model alias (``settings.serving.ab_split``'s key) that serves ``user_id``."""
    aliases, ends = _boundaries(tuple(settings.serving.ab_split.items()))
    position = bucket(settings.serving.ab_salt, user_id)
    return aliases[bisect_right(ends, position)]
