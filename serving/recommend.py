"""The two-stage recommender the service answers with: candidates, filters, ranking, diversity.

For one listener, ``for_you``:

1. **Variant**: the listener's A/B arm (``serving.experiments``) names the model alias.
2. **Candidates** (first stage), each with the sources that proposed it:
   ``model``: the variant's precomputed ``recs:v1`` list when it is the served version, else
   a FAISS search of the listener's vector; ``session``: songs like the ones played in the
   last ``session_minutes`` (``recent:v1``, written by the ingestion job seconds after a
   play) and popular songs of the session's genres; ``artists``: the recent artists' top
   songs; ``trending``: the country's current window; ``content``: songs the model has never
   seen (no plays yet) of the listener's genres, so a new song enters through content;
   ``popular``: the catalog's most popular songs the listener may hear (the cold start).
3. **Filters**: not played in the last ``exclude_played_days`` (nor in the model's training
   rows), licensed in the listener's country, not explicit for a listener who opted out,
   of the requested genre.
4. **Ranking** (second stage): the registered ranker over Feast's online features when both
   answer within budget; otherwise a blend of the sources' normalised scores. Either way the
   session's genres lift their songs, so the next answer follows what is playing now.
5. **Diversity**: MMR with at most ``max_per_artist`` songs of an artist in the top 10.

Nothing here raises for a missing dependency: each one missing adds a flag to ``degraded``
(``realtime``: Redis; ``model``: no model registered, popularity answers; ``features``: the
feature read failed or ran over budget) and the answer goes on without it.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from encore.settings import Settings
from serving.catalog import Catalog, CatalogHolder, Listener, mmr
from serving.experiments import assign_variant

if TYPE_CHECKING:
    from serving.bundle import ModelBundle, ModelHolder
    from serving.ranker import RankerHolder
    from serving.signals import OnlineFeatures, RealtimeSignals, RealtimeView

log = logging.getLogger(__name__)

# How much each source's normalised score counts in the blend (no ranker, or before it).
SOURCE_WEIGHTS = {
    "model": 1.0,
    "session": 0.8,
    "artists": 0.4,
    "trending": 0.5,
    "content": 0.3,
    "popular": 0.2,
}
SESSION_GENRE_LIFT = 0.6
"""Added to a song of the session's genres, times that genre's share of the session."""
SESSION_SEEDS = 5
"""Songs of the session whose neighbours become candidates."""


@dataclass
class Candidate:
    song_id: str
    scores: dict[str, float] = field(default_factory=dict)
    """source -> score normalised to [0, 1] within that source"""
    ranks: dict[str, int] = field(default_factory=dict)
    """source -> the song's rank in that source's list (1 = its best), what the ranker reads"""

    def blended(self) -> float:
        return sum(SOURCE_WEIGHTS[source] * score for source, score in self.scores.items())


@dataclass(frozen=True)
class Recommended:
    song_id: str
    artist_id: str
    genre: str
    score: float
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Answer:
    items: list[Recommended]
    variant: str | None
    model: tuple[str, str] | None
    """(registered name, version) of the candidate model that answered, None without one."""
    ranker: str | None
    """The ranker's version when it ordered the list."""
    degraded: list[str]
    cold_start: bool


def _normalised(scored: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Scores mapped to [0, 1] by rank-preserving min-max (1 = the best of that source)."""
    if not scored:
        return []
    values = [float(s) for _, s in scored]
    low, high = min(values), max(values)
    if high - low <= 1e-12:
        return [(song, 1.0) for song, _ in scored]
    return [(song, (s - low) / (high - low)) for song, s in scored]


def _by_position(songs: list[str]) -> list[tuple[str, float]]:
    """Scores for a plain ordered list: 1 for the first, falling linearly."""
    n = len(songs)
    return [(song, 1.0 - i / max(n, 1)) for i, song in enumerate(songs)]


class Recommender:
    """Answers for-you, similar and trending from the holders it is given."""

    def __init__(
        self,
        settings: Settings,
        models: dict[str, ModelHolder],
        catalog: CatalogHolder,
        realtime: RealtimeSignals,
        features: OnlineFeatures | None = None,
        ranker: RankerHolder | None = None,
    ) -> None:
        self.settings = settings
        self.models = models
        self.catalog = catalog
        self.realtime = realtime
        self.features = features
        self.ranker = ranker
        self._fresh_key: tuple | None = None
        self._fresh: dict[str, list[str]] = {}

    # -- the model a listener is served by --------------------------------------------------

    def bundle_for(self, user_id: str) -> tuple[str, ModelBundle | None]:
        """The listener's variant and its bundle (the champion's if the variant has none)."""
        variant = assign_variant(self.settings, user_id)
        holder = self.models.get(variant)
        if holder is not None and holder.current is not None:
            return variant, holder.current
        fallback = self.models.get(self.settings.serving.model_alias)
        if fallback is not None and fallback.current is not None:
            return self.settings.serving.model_alias, fallback.current
        return variant, None

    # -- for-you -----------------------------------------------------------------------------

    def for_you(self, user_id: str, limit: int, genre: str | None = None) -> Answer:
        serving = self.settings.serving
        catalog = self.catalog.current
        listener = catalog.listener(user_id)
        degraded: list[str] = []
        variant, bundle = self.bundle_for(user_id)
        if bundle is None:
            degraded.append("model")
        view = self.realtime.listener(
            user_id, listener.country, bundle.name if bundle is not None else None
        )
        if view is None:
            degraded.append("realtime")

        now = datetime.now(UTC)
        recent = view.recent if view is not None else []
        session = [
            p for p in recent if now - p.start_time <= timedelta(minutes=serving.session_minutes)
        ]
        excluded = {
            p.song_id
            for p in recent
            if now - p.start_time <= timedelta(days=serving.exclude_played_days)
        }
        known = bundle is not None and bundle.knows_user(user_id)
        if known:
            excluded |= bundle.played(user_id)

        candidates: dict[str, Candidate] = {}

        def add(source: str, scored: list[tuple[str, float]]) -> None:
            ordered = sorted(_normalised(scored), key=lambda pair: -pair[1])
            for rank, (song_id, score) in enumerate(ordered, start=1):
                candidate = candidates.setdefault(song_id, Candidate(song_id))
                candidate.scores[source] = max(score, candidate.scores.get(source, 0.0))
                candidate.ranks.setdefault(source, rank)

        n = serving.candidates
        if known:
            add("model", self._model_candidates(bundle, user_id, view, n))
        session_genres = Counter(
            catalog.songs[p.song_id].genre for p in session if p.song_id in catalog.songs
        )
        if session:
            add("session", self._session_candidates(bundle, catalog, session, session_genres, n))
            add("artists", self._artist_candidates(catalog, session))
        if view is not None and view.trending:
            add("trending", [(song, float(plays)) for song, plays in view.trending])
        profile = self._genre_profile(catalog, bundle, user_id, session_genres, genre)
        if bundle is not None and profile:
            add("content", self._content_candidates(catalog, bundle, profile))
        cold_start = not known and not session
        if cold_start or len(candidates) < limit * 2:
            wanted = genre or (profile.most_common(1)[0][0] if profile else None)
            add("popular", _by_position(catalog.popular(listener, wanted, n)))
        if genre:  # a genre request: its popular songs make sure the page fills
            add("popular", _by_position(catalog.popular(listener, genre, n)))

        pool = [
            c
            for c in candidates.values()
            if c.song_id not in excluded
            and catalog.allowed(c.song_id, listener)
            and (genre is None or catalog.songs[c.song_id].genre == genre)
        ]
        ranked, ranker_version = self._rank(
            pool, catalog, listener, bundle, session_genres, degraded
        )
        top = mmr(
            ranked[: max(limit * 4, 40)],
            catalog,
            limit,
            relevance_weight=serving.mmr_lambda,
            max_per_artist=serving.max_per_artist,
        )
        items = [self._item(catalog, candidates[song], score) for song, score in top]
        model = (bundle.name, bundle.version) if bundle is not None else None
        return Answer(items, variant, model, ranker_version, degraded, cold_start)

    def _model_candidates(
        self, bundle: ModelBundle, user_id: str, view: RealtimeView | None, n: int
    ) -> list[tuple[str, float]]:
        """The precomputed list when it is the served version's; else a FAISS search."""
        precomputed = view.precomputed if view is not None else None
        if precomputed is not None and precomputed.model_version == bundle.version:
            return precomputed.songs[:n]
        return bundle.recommend(user_id, n)

    def _session_candidates(
        self,
        bundle: ModelBundle | None,
        catalog: Catalog,
        session: list,
        session_genres: Counter,
        n: int,
    ) -> list[tuple[str, float]]:
        scored: dict[str, float] = defaultdict(float)
        seeds = list(dict.fromkeys(p.song_id for p in session))[:SESSION_SEEDS]
        if bundle is not None:
            for seed in seeds:
                for song_id, score in bundle.similar(seed, max(n // len(seeds), 10)):
                    scored[song_id] = max(scored[song_id], score)
        total = sum(session_genres.values()) or 1
        for session_genre, count in session_genres.most_common(3):
            for song_id, score in _by_position(catalog.by_genre.get(session_genre, [])[:50]):
                scored[song_id] = max(scored[song_id], score * count / total)
        return list(scored.items())

    def _artist_candidates(self, catalog: Catalog, session: list) -> list[tuple[str, float]]:
        artists = list(
            dict.fromkeys(
                catalog.songs[p.song_id].artist_id for p in session if p.song_id in catalog.songs
            )
        )[:5]
        out: list[tuple[str, float]] = []
        for rank, artist in enumerate(artists):
            for song_id, score in _by_position(catalog.by_artist.get(artist, [])[:10]):
                out.append((song_id, score / (rank + 1)))
        return out

    def _genre_profile(
        self,
        catalog: Catalog,
        bundle: ModelBundle | None,
        user_id: str,
        session_genres: Counter,
        genre: str | None,
    ) -> Counter:
        """The listener's genres: the session's, their training plays', the requested one."""
        profile: Counter = Counter()
        for session_genre, count in session_genres.items():
            profile[session_genre] += 3 * count
        if bundle is not None and bundle.knows_user(user_id):
            for song_id in bundle.played(user_id):
                song = catalog.songs.get(song_id)
                if song is not None:
                    profile[song.genre] += 1
        if genre:
            profile[genre] += max(profile.values(), default=1)
        return profile

    def _content_candidates(
        self, catalog: Catalog, bundle: ModelBundle, profile: Counter, per_genre: int = 5
    ) -> list[tuple[str, float]]:
        """Songs without plays (unknown to the model) of the listener's top genres."""
        total = sum(profile.values()) or 1
        out = []
        for profile_genre, weight in profile.most_common(3):
            fresh = self._fresh_songs(catalog, bundle, profile_genre)[:per_genre]
            out += [(song, weight / total) for song in fresh]
        return out

    def _fresh_songs(self, catalog: Catalog, bundle: ModelBundle, genre: str) -> list[str]:
        """The genre's most popular songs the model has not seen, cached per model and
        catalog snapshot (a scan of the genre per request would grow with the catalog)."""
        key = (id(catalog), catalog.versions, bundle.name, bundle.version)
        if self._fresh_key != key:
            self._fresh_key, self._fresh = key, {}
        fresh = self._fresh.get(genre)
        if fresh is None:
            fresh = [s for s in catalog.by_genre.get(genre, []) if not bundle.knows_song(s)][:50]
            self._fresh[genre] = fresh
        return fresh

    def _rank(
        self,
        pool: list[Candidate],
        catalog: Catalog,
        listener: Listener,
        bundle: ModelBundle | None,
        session_genres: Counter,
        degraded: list[str],
    ) -> tuple[list[tuple[str, float]], str | None]:
        """Pool ordered best first: the ranker's scores if it can, else the sources' blend."""
        total = sum(session_genres.values())

        def lift(song_id: str) -> float:
            if not total:
                return 0.0
            song = catalog.songs.get(song_id)
            return SESSION_GENRE_LIFT * session_genres.get(song.genre, 0) / total if song else 0.0

        blended = {c.song_id: c.blended() for c in pool}
        ranker_version = None
        if self.ranker is not None and self.features is not None and pool:
            scored = self.ranker.score(listener.user_id, pool, self.features, bundle)
            if scored is None:
                if self.ranker.current is not None:
                    degraded.append("features")
            else:
                ranker_version = self.ranker.current.version
                # the ranker orders; the blend breaks its ties and the session still lifts
                blended = {song: _squash(scored[song]) + 0.1 * blended[song] for song in blended}
        ranked = sorted(
            ((song, score + lift(song)) for song, score in blended.items()),
            key=lambda pair: (-pair[1], pair[0]),
        )
        return ranked, ranker_version

    @staticmethod
    def _item(catalog: Catalog, candidate: Candidate, score: float) -> Recommended:
        song = catalog.songs[candidate.song_id]
        return Recommended(
            song.song_id,
            song.artist_id,
            song.genre,
            round(float(score), 6),
            tuple(sorted(candidate.scores)),
        )

    # -- similar and trending ----------------------------------------------------------------

    def similar(self, song_id: str, limit: int, user_id: str | None) -> Answer:
        """Songs like ``song_id``: the model's neighbours, else (a new song) its genre's."""
        catalog = self.catalog.current
        listener = catalog.listener(user_id) if user_id else Listener("", None, False)
        degraded: list[str] = []
        if user_id:
            variant, bundle = self.bundle_for(user_id)
        else:
            variant = self.settings.serving.model_alias
            holder = self.models.get(variant)
            bundle = holder.current if holder is not None else None
        if bundle is None:
            degraded.append("model")
        scored: list[tuple[str, float]] = []
        sources = ("model",)
        if bundle is not None and bundle.knows_song(song_id):
            scored = bundle.similar(song_id, limit * 3)
        if not scored:  # a song without plays enters through content: artist, then genre
            song = catalog.songs[song_id]
            same_artist = [s for s in catalog.by_artist.get(song.artist_id, []) if s != song_id]
            same_genre = [s for s in catalog.by_genre.get(song.genre, []) if s != song_id]
            scored = _by_position(list(dict.fromkeys(same_artist[:5] + same_genre[: limit * 3])))
            sources = ("content",)
        allowed = [(s, score) for s, score in scored if catalog.allowed(s, listener)]
        items = [
            Recommended(
                s,
                catalog.songs[s].artist_id,
                catalog.songs[s].genre,
                round(float(score), 6),
                sources,
            )
            for s, score in allowed[:limit]
        ]
        model = (bundle.name, bundle.version) if bundle is not None else None
        return Answer(items, variant, model, None, degraded, False)

    def trending(self, country: str, limit: int, user_id: str | None) -> Answer:
        """The country's current window (Redis); the catalog's popular songs when Redis is
        down or the window is empty."""
        catalog = self.catalog.current
        listener = catalog.listener(user_id) if user_id else Listener("", country, True)
        listener = Listener(listener.user_id, country, listener.allow_explicit)
        degraded: list[str] = []
        window = self.realtime.trending(country, limit * 3)
        if window is None:
            degraded.append("realtime")
        scored = [(s, float(plays)) for s, plays in (window or []) if catalog.allowed(s, listener)]
        sources: tuple[str, ...] = ("trending",)
        if not scored:
            scored = _by_position(catalog.popular(listener, None, limit))
            sources = ("popular",)
        items = [
            Recommended(s, catalog.songs[s].artist_id, catalog.songs[s].genre, score, sources)
            for s, score in scored[:limit]
        ]
        return Answer(items, None, None, None, degraded, False)


def _squash(score: float) -> float:
    """A ranker score (any real) mapped into (0, 1) for blending."""
    return float(1.0 / (1.0 + np.exp(-score)))
