"""What the service knows about songs and listeners: the lake's dimensions, held in memory.

Every request filters a few hundred candidates (licensed in the listener's country? explicit?
which artist, which genre?), so those facts must be a dictionary lookup, not a query. They
come from ``dims.songs`` and ``dims.users`` (built from the catalog and accounts by
``encore lake build``), loaded at start-up and reloaded when the tables' Delta versions move.

Licensing follows the listener API's rule: a listener with no country on file gets only songs
licensed in every market the catalog licenses anywhere (the catalog's worldwide set).
A listener the dimensions do not know yet (registered after the last build) has no country
and is treated as not allowing explicit songs: the safe side of both filters.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field

from encore.delta import open_delta, read_delta
from encore.settings import Settings
from encore.tables import DIM_SONGS, DIM_USERS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Song:
    song_id: str
    artist_id: str
    genre: str
    explicit: bool
    territories: frozenset[str] | None
    """None when the dimension has no licensing column (an older lake): licensed everywhere."""
    popularity: float


@dataclass(frozen=True)
class Listener:
    user_id: str
    country: str | None
    allow_explicit: bool


UNKNOWN_LISTENER_EXPLICIT = False


@dataclass
class Catalog:
    """One snapshot of the dimensions (immutable once built; swapped whole)."""

    songs: dict[str, Song]
    listeners: dict[str, Listener]
    versions: tuple[int | None, int | None] = (None, None)
    worldwide: frozenset[str] = field(init=False)
    by_genre: dict[str, list[str]] = field(init=False)
    """Genre -> its songs, most popular first (cold start, genre requests, new songs)."""
    by_artist: dict[str, list[str]] = field(init=False)
    """Artist -> their songs, most popular first (the listener's recent artists)."""

    def __post_init__(self) -> None:
        everywhere: set[str] = set()
        for song in self.songs.values():
            if song.territories:
                everywhere |= song.territories
        self.worldwide = frozenset(everywhere)
        by_genre: dict[str, list[Song]] = defaultdict(list)
        by_artist: dict[str, list[Song]] = defaultdict(list)
        for song in self.songs.values():
            by_genre[song.genre].append(song)
            by_artist[song.artist_id].append(song)

        def ranked(songs: list[Song]) -> list[str]:
            return [s.song_id for s in sorted(songs, key=lambda s: (-s.popularity, s.song_id))]

        self.by_genre = {genre: ranked(songs) for genre, songs in by_genre.items()}
        self.by_artist = {artist: ranked(songs) for artist, songs in by_artist.items()}

    def listener(self, user_id: str) -> Listener:
        return self.listeners.get(user_id) or Listener(user_id, None, UNKNOWN_LISTENER_EXPLICIT)

    def allowed(self, song_id: str, listener: Listener) -> bool:
        """Whether ``song_id`` may be recommended to ``listener`` (known, licensed, explicit)."""
        song = self.songs.get(song_id)
        if song is None:
            return False
        if song.explicit and not listener.allow_explicit:
            return False
        if song.territories is None:
            return True
        if listener.country is None:
            return song.territories >= self.worldwide
        return listener.country in song.territories

    def popular(self, listener: Listener, genre: str | None, n: int) -> list[str]:
        """The most popular songs the listener may hear, of ``genre`` when given."""
        pool = self.by_genre.get(genre, []) if genre else self._all_by_popularity
        out = []
        for song_id in pool:
            if self.allowed(song_id, listener):
                out.append(song_id)
                if len(out) == n:
                    break
        return out

    @property
    def _all_by_popularity(self) -> list[str]:
        cached = self.__dict__.get("_popular_cache")
        if cached is None:
            cached = sorted(self.songs, key=lambda s: (-self.songs[s].popularity, s))
            self.__dict__["_popular_cache"] = cached
        return cached


def load_catalog(settings: Settings) -> Catalog:
    """The dimensions as they are now (empty when the lake has none yet)."""
    songs_table = open_delta(settings, DIM_SONGS)
    users_table = open_delta(settings, DIM_USERS)
    songs: dict[str, Song] = {}
    listeners: dict[str, Listener] = {}
    if songs_table is not None:
        names = set(songs_table.schema().to_arrow().names)
        columns = ["song_id", "artist_id", "genre", "explicit", "popularity"]
        has_territories = "territories" in names
        rows = read_delta(songs_table, columns + (["territories"] if has_territories else []))
        data = rows.to_pydict()
        territories = data.get("territories") or [None] * rows.num_rows
        for song_id, artist, genre, explicit, popularity, licensed in zip(
            data["song_id"],
            data["artist_id"],
            data["genre"],
            data["explicit"],
            data["popularity"],
            territories,
            strict=True,
        ):
            songs[song_id] = Song(
                song_id,
                artist,
                genre,
                bool(explicit),
                None if licensed is None else frozenset(licensed),
                float(popularity or 0.0),
            )
    if users_table is not None:
        data = read_delta(users_table, ["user_id", "country", "allow_explicit"]).to_pydict()
        for user_id, country, explicit in zip(
            data["user_id"], data["country"], data["allow_explicit"], strict=True
        ):
            listeners[user_id] = Listener(user_id, country or None, bool(explicit))
    versions = (
        None if songs_table is None else songs_table.version(),
        None if users_table is None else users_table.version(),
    )
    return Catalog(songs, listeners, versions)


def table_versions(settings: Settings) -> tuple[int | None, int | None]:
    songs, users = open_delta(settings, DIM_SONGS), open_delta(settings, DIM_USERS)
    return (
        None if songs is None else songs.version(),
        None if users is None else users.version(),
    )


class CatalogHolder:
    """The current :class:`Catalog`, reloaded off to the side when the dimensions change."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.current = Catalog({}, {})
        self._loading = threading.Lock()

    def refresh(self) -> bool:
        with self._loading:
            try:
                if table_versions(self.settings) == self.current.versions and self.current.songs:
                    return False
                catalog = load_catalog(self.settings)
            except Exception:  # keep the snapshot we have; the next check retries
                log.exception("could not load the dimensions")
                return False
            self.current = catalog
            log.info(
                "catalog: %d songs, %d listeners (dims versions %s)",
                len(catalog.songs),
                len(catalog.listeners),
                catalog.versions,
            )
            return True


def mmr(
    ranked: list[tuple[str, float]],
    catalog: Catalog,
    n: int,
    *,
    relevance_weight: float,
    max_per_artist: int,
    head: int = 10,
) -> list[tuple[str, float]]:
    """Maximal marginal relevance: trade a song's score against its likeness to those picked.

    Likeness is 1 for the same artist, 0.5 for the same genre, else 0 (a content measure the
    dimensions give for every song, new or old). In the first ``head`` places no artist has
    more than ``max_per_artist`` songs (a hard cap on top of the soft trade-off). ``ranked``
    must be best first: the scan of each round stops once no later song can win.
    """
    if not ranked:
        return []
    scores = [score for _, score in ranked]
    low, high = min(scores), max(scores)
    spread = high - low
    relevance = [(x - low) / spread if spread > 0 else 1.0 for x in scores]
    songs = [catalog.songs.get(song) for song, _ in ranked]
    artists = [song.artist_id if song else "" for song in songs]
    genres = [song.genre if song else "" for song in songs]
    diversity = 1.0 - relevance_weight
    remaining = list(range(len(ranked)))
    picked: list[int] = []
    per_artist: dict[str, int] = {}
    per_genre: dict[str, int] = {}
    while remaining and len(picked) < n:
        capped = len(picked) < head
        best, best_value = -1, -float("inf")
        for i in remaining:
            if relevance_weight * relevance[i] <= best_value:
                break  # relevance only falls from here, and likeness only costs
            same_artist = per_artist.get(artists[i], 0)
            if capped and same_artist >= max_per_artist:
                continue
            likeness = 1.0 if same_artist else (0.5 if per_genre.get(genres[i]) else 0.0)
            value = relevance_weight * relevance[i] - diversity * likeness
            if value > best_value:
                best, best_value = i, value
        if best < 0:  # only capped artists left for the head: take them after it
            head = 0
            continue
        picked.append(best)
        remaining.remove(best)
        per_artist[artists[best]] = per_artist.get(artists[best], 0) + 1
        per_genre[genres[best]] = per_genre.get(genres[best], 0) + 1
    return [ranked[i] for i in picked]
