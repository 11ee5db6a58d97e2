"""Stable catalog ids: a short prefix plus a hash of the natural key.

The same artist name, album (artist, title) or song (album, title) always gets the same id,
whichever machine loads the catalog and however often: events, lake tables and models keep
naming the same song across reloads. Natural keys are compared case- and space-folded
(``"The  Beatles"`` is ``"the beatles"``), not accent-folded (``Beyoncé`` is not ``Beyonce``).
"""

from __future__ import annotations

import hashlib
import unicodedata

ID_HEX_DIGITS = 16  # 64 bits: no collision expected below billions of rows


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def _stable_id(prefix: str, *parts: str) -> str:
    digest = hashlib.sha256("\x1f".join(_fold(part) for part in parts).encode()).hexdigest()
    return f"{prefix}-{digest[:ID_HEX_DIGITS]}"


def artist_id(name: str) -> str:
    return _stable_id("ar", name)


def album_id(artist: str, title: str) -> str:
    """The id of ``title`` by the artist whose id is ``artist``."""
    return _stable_id("al", artist, title)


def song_id(album: str, title: str) -> str:
    """The id of ``title`` on the album whose id is ``album``."""
    return _stable_id("so", album, title)
