"""Who listens to what: the catalog's songs, the listeners and their tastes.

Inputs: a ``SimulationConfig``, the catalog's songs (read once from PostgreSQL by
``read_catalog``: artist, genre, duration, territories, popularity, explicit) and, for the
HetRec population, the lastfm-2k play counts (``user_artists.dat``) and artist names
(``artists.dat``). Output: a ``Catalog`` and ``Listener`` list that
:mod:`pipelines.simulation.listening` turns into sessions and events. Every song a listener
plays is a catalog song licensed in the listener's country.

The model, each piece a plain, documented assumption rather than a fit to real data:

* **Listeners**: a country (skewed: US first), a primary device used in 80% of sessions, a
  skip propensity around 25%, a like rate of a few percent, a session rate (log-normal,
  about two sessions a day) and about 8% who turned explicit content off.
* **Tastes**: two to four favourite genres (weights), four to fifteen favourite artists
  (mostly from those genres, by popularity; weights), one to three disliked genres. A play
  is a favourite artist's song (``artist_share``, about 55%), a song of a favourite genre
  (``genre_share``, about 30%), or, for the rest, any song by global popularity (discovery).
  Songs within an artist or genre follow the catalog's popularity.
* **Drift**: every simulated day the weights take a small log-normal step and, now and
  then, the least liked favourite artist gives way to a new one from a favourite genre.
* **Skips follow tastes**: a favourite artist's song is skipped at 0.45x the listener's
  propensity, a favourite genre's at 0.8x, anything else at 1.8x, a disliked genre's at 3.5x.
* **HetRec lastfm-2k**: users come from the dataset; their artists (matched to the catalog's
  by name, so load the catalog with ``--source hetrec-lastfm-2k``) are their favourites in
  proportion to their play counts, with no discovery, and they listen in proportion to
  their total count (mean two sessions a day), so the stream's user x artist counts follow
  the dataset's.

Everything is drawn from ``random.Random`` streams seeded by ``(seed, listener)``: the same
config and catalog give the same population.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

from encore.db import ids
from encore.errors import ConfigurationError, DatasetError, EncoreError, ServiceError
from encore.settings import Settings

HETREC_LASTFM_2K = "hetrec-lastfm-2k"
DATASET_DIRS = {HETREC_LASTFM_2K: "hetrec2011-lastfm-2k"}

# Share of listeners by country and the UTC offset used for their time of day (whole
# hours; one zone per country is enough to move the daily peak around the globe).
COUNTRIES: dict[str, tuple[float, int]] = {
    "US": (0.26, -5), "GB": (0.08, 0), "DE": (0.07, 1), "BR": (0.07, -3), "MX": (0.05, -6),
    "FR": (0.05, 1), "IN": (0.04, 5), "SE": (0.04, 1), "JP": (0.04, 9), "CA": (0.04, -5),
    "AU": (0.03, 10), "ES": (0.03, 1), "IT": (0.03, 1), "NL": (0.03, 1), "PL": (0.03, 1),
    "AR": (0.02, -3), "TR": (0.02, 3), "NO": (0.02, 1), "FI": (0.02, 2), "KR": (0.02, 9),
    "ZA": (0.01, 2), "NG": (0.01, 1),
}  # fmt: skip
DEVICES: dict[str, float] = {
    "mobile": 0.55, "desktop": 0.18, "web": 0.08, "smart_speaker": 0.06, "tablet": 0.05,
    "car": 0.04, "tv": 0.03, "other": 0.01,
}  # fmt: skip
MEAN_SESSIONS_PER_DAY = 2.0
NO_EXPLICIT_SHARE = 0.08

# Skip propensity multipliers by how the song sits with the listener's tastes.
FAVOURITE_ARTIST, FAVOURITE_GENRE, NEUTRAL, DISLIKED = "artist", "genre", "neutral", "disliked"
SKIP_FACTOR = {FAVOURITE_ARTIST: 0.45, FAVOURITE_GENRE: 0.8, NEUTRAL: 1.8, DISLIKED: 3.5}
LIKE_FACTOR = {FAVOURITE_ARTIST: 2.0, FAVOURITE_GENRE: 1.0, NEUTRAL: 0.3, DISLIKED: 0.0}
DAILY_DRIFT_SIGMA = 0.12
DAILY_NEW_ARTIST_CHANCE = 0.08
_TRIES = 30  # redraws before giving up on a pool (nothing licensed or allowed there)


class CatalogEmptyError(EncoreError):
    """The catalog has no songs for the simulator to play."""


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. The same config and catalog always yield the same events."""

    seed: int = 0
    start: datetime = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
    duration: timedelta = timedelta(hours=1)
    users: int = 10_000
    """Listeners in the population (most are idle at any moment, as in life)."""
    mean_skip_rate: float = 0.25
    dataset: str | None = None
    """``hetrec-lastfm-2k`` to take listeners from HetRec play counts."""
    dataset_root: Path | None = None
    """Folder holding ``hetrec2011-lastfm-2k/``; default ``settings.datasets.resolve()``."""
    max_events: int | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ConfigurationError(f"start must be timezone-aware, got {self.start}")
        if self.duration <= timedelta(0):
            raise ConfigurationError(f"duration must be positive, got {self.duration}")
        if self.dataset is not None and self.dataset not in DATASET_DIRS:
            raise ConfigurationError(
                f"unknown dataset {self.dataset!r}; known: {sorted(DATASET_DIRS)}"
            )


def _cumulative(weights: Iterable[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def _pick(cum: list[float], rng: random.Random) -> int:
    return min(bisect.bisect_right(cum, rng.random() * cum[-1]), len(cum) - 1)


_COUNTRY_NAMES = list(COUNTRIES)
_COUNTRY_CUM = _cumulative(share for share, _ in COUNTRIES.values())
_DEVICE_NAMES = list(DEVICES)
_DEVICE_CUM = _cumulative(DEVICES.values())


@dataclass(frozen=True)
class CatalogSong:
    """One catalog song as the simulator sees it."""

    song_id: str
    artist_id: str
    genre: str
    duration_ms: int
    territories: Sequence[str] | None
    """Countries it is licensed in; ``None`` for every country the simulator uses."""
    popularity: float
    explicit: bool = False


class _Pool:
    """Songs (indices) to draw from by popularity."""

    def __init__(self, songs: list[int], popularity: Sequence[float]) -> None:
        self.songs = songs
        # a floor keeps songs rounded to zero popularity reachable
        self.cum = _cumulative(max(popularity[s], 1e-9) for s in songs)

    def draw(self, rng: random.Random) -> int:
        return self.songs[_pick(self.cum, rng)]


class Catalog:
    """The catalog's songs with the pools listeners draw from (by artist, genre, overall)."""

    def __init__(self, songs: Iterable[CatalogSong]) -> None:
        everywhere = set(COUNTRIES)
        restricted: dict[frozenset[str], frozenset[str]] = {}  # one set per distinct licence
        artist_first: dict[str, int] = {}
        genre_first: dict[str, int] = {}
        self.song_ids: list[str] = []
        self.duration_ms: list[int] = []
        self.explicit: list[bool] = []
        # None: licensed in every country the simulator's listeners live in
        self.territories: list[frozenset[str] | None] = []
        popularity: list[float] = []
        artist_of: list[int] = []
        genre_of: list[int] = []
        # one pass, columns only: a million songs must not sit in memory as objects
        for song in songs:
            self.song_ids.append(song.song_id)
            self.duration_ms.append(song.duration_ms)
            self.explicit.append(song.explicit)
            popularity.append(song.popularity)
            licence = None if song.territories is None else frozenset(song.territories)
            if licence is not None and not everywhere <= licence:
                self.territories.append(restricted.setdefault(licence, licence))
            else:
                self.territories.append(None)
            artist_of.append(artist_first.setdefault(song.artist_id, len(artist_first)))
            genre_of.append(genre_first.setdefault(song.genre, len(genre_first)))
        if not self.song_ids:
            raise CatalogEmptyError("no songs in the catalog: run `encore catalog load`")
        # indices in sorted id order, whatever order the songs came in
        self.artist_ids = sorted(artist_first)
        self.genres = sorted(genre_first)
        artist_rank = [0] * len(artist_first)
        for rank, artist in enumerate(self.artist_ids):
            artist_rank[artist_first[artist]] = rank
        genre_rank = [0] * len(genre_first)
        for rank, genre in enumerate(self.genres):
            genre_rank[genre_first[genre]] = rank
        self.artist_of = [artist_rank[a] for a in artist_of]
        self.genre_of = [genre_rank[g] for g in genre_of]
        by_artist: list[list[int]] = [[] for _ in self.artist_ids]
        by_genre: list[list[int]] = [[] for _ in self.genres]
        for index, (artist, genre) in enumerate(zip(self.artist_of, self.genre_of, strict=True)):
            by_artist[artist].append(index)
            by_genre[genre].append(index)
        self.overall = _Pool(list(range(len(self.song_ids))), popularity)
        self.by_artist = [_Pool(s, popularity) for s in by_artist]
        self.by_genre = [_Pool(s, popularity) for s in by_genre]
        artist_popularity = [sum(popularity[s] for s in pool) for pool in by_artist]
        # an artist's genre is that of most of its songs; genres weigh their songs' popularity
        genre_counts: list[Counter[int]] = [Counter() for _ in self.artist_ids]
        for artist, genre in zip(self.artist_of, self.genre_of, strict=True):
            genre_counts[artist][genre] += 1
        self.artist_genre = [counts.most_common(1)[0][0] for counts in genre_counts]
        artists_in_genre: list[list[int]] = [[] for _ in self.genres]
        for artist, genre in enumerate(self.artist_genre):
            artists_in_genre[genre].append(artist)
        self.artists_overall = _Pool(list(range(len(self.artist_ids))), artist_popularity)
        self.artists_by_genre = [_Pool(a, artist_popularity) for a in artists_in_genre]
        self.genre_cum = _cumulative(
            sum(artist_popularity[a] for a in pool) + 1e-9 for pool in artists_in_genre
        )

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, object]]) -> Catalog:
        """From song records named by the songs table's columns (extra columns ignored)."""
        names = [field.name for field in fields(CatalogSong)]
        return cls(CatalogSong(**{name: record[name] for name in names}) for record in records)

    def __len__(self) -> int:
        return len(self.song_ids)

    def licensed(self, song: int, country: str) -> bool:
        territories = self.territories[song]
        return territories is None or country in territories


def read_catalog(settings: Settings) -> Catalog:
    """The catalog's songs from PostgreSQL, read once.

    Raises:
        CatalogEmptyError: the catalog has no songs (or no tables yet).
        ServiceError: PostgreSQL is unreachable.
    """
    import psycopg

    try:
        connection = psycopg.connect(settings.postgres.effective_dsn)
    except psycopg.OperationalError as error:
        raise ServiceError("postgres", "unreachable: " + " ".join(str(error).split())) from None
    with connection:
        if connection.execute("SELECT to_regclass('songs')").fetchone() == (None,):
            raise CatalogEmptyError(
                "no songs in the catalog: run `encore db upgrade`, then `encore catalog load`"
            )
        # streamed, and worldwide licences sent as NULL: a million songs' 36-country arrays
        # would cost gigabytes of Python strings
        with connection.cursor(name="simulator_catalog") as cursor:
            cursor.itersize = 20_000
            cursor.execute(
                "SELECT song_id, artist_id, genre, duration_ms, "
                "CASE WHEN territories @> %s::varchar[] THEN NULL ELSE territories END, "
                "popularity, explicit FROM songs ORDER BY song_id",
                (sorted(COUNTRIES),),
            )
            return Catalog(CatalogSong(*row) for row in cursor)


@dataclass
class Listener:
    user_id: str
    country: str
    utc_offset_h: int
    device: str
    sessions_per_day: float
    skip_propensity: float
    like_rate: float
    allow_explicit: bool = True
    genre_weights: dict[int, float] = field(default_factory=dict)
    artist_weights: dict[int, float] = field(default_factory=dict)
    disliked: frozenset[int] = frozenset()
    artist_share: float = 0.55
    genre_share: float = 0.30
    _artist_cum: tuple[list[int], list[float]] | None = None
    _genre_cum: tuple[list[int], list[float]] | None = None

    def session_device(self, rng: random.Random) -> str:
        """The device of one session: the listener's own in 80% of sessions."""
        return self.device if rng.random() < 0.8 else _DEVICE_NAMES[_pick(_DEVICE_CUM, rng)]

    def affinity(self, catalog: Catalog, song: int) -> str:
        """How ``song`` sits with this listener's tastes (a key of ``SKIP_FACTOR``)."""
        if catalog.artist_of[song] in self.artist_weights:
            return FAVOURITE_ARTIST
        genre = catalog.genre_of[song]
        if genre in self.genre_weights:
            return FAVOURITE_GENRE
        return DISLIKED if genre in self.disliked else NEUTRAL

    def _weighted(self, weights: dict[int, float], cache: str) -> tuple[list[int], list[float]]:
        cached = getattr(self, cache)
        if cached is None:
            keys = sorted(weights)
            cached = (keys, _cumulative(weights[k] for k in keys))
            setattr(self, cache, cached)
        return cached

    def _draw(self, catalog: Catalog, rng: random.Random) -> int | None:
        roll = rng.random()
        if roll < self.artist_share and self.artist_weights:
            artists, cum = self._weighted(self.artist_weights, "_artist_cum")
            return catalog.by_artist[artists[_pick(cum, rng)]].draw(rng)
        if roll < self.artist_share + self.genre_share and self.genre_weights:
            genres, cum = self._weighted(self.genre_weights, "_genre_cum")
            return catalog.by_genre[genres[_pick(cum, rng)]].draw(rng)
        if self.artist_share >= 1:
            return None
        return catalog.overall.draw(rng)

    def choose_song(self, catalog: Catalog, rng: random.Random) -> int:
        """The next song (a catalog index), licensed in the listener's country and, when
        the listener turned explicit content off, not explicit."""
        for _ in range(_TRIES):
            song = self._draw(catalog, rng)
            if song is not None and self.may_play(catalog, song):
                return song
        # nothing allowed among the tastes: a popular song the listener may play
        for _ in range(_TRIES * 10):
            song = catalog.overall.draw(rng)
            if self.may_play(catalog, song):
                return song
        allowed = next((s for s in range(len(catalog)) if self.may_play(catalog, s)), None)
        if allowed is None:
            raise CatalogEmptyError(
                f"no song in the catalog may be played in {self.country}"
                + ("" if self.allow_explicit else " without explicit content")
            )
        return allowed

    def may_play(self, catalog: Catalog, song: int) -> bool:
        """Licensed in the listener's country, and not explicit if they turned that off."""
        return catalog.licensed(song, self.country) and (
            self.allow_explicit or not catalog.explicit[song]
        )

    def drift(self, catalog: Catalog, rng: random.Random) -> None:
        """One simulated day's change of taste: small steps in every weight, and now and
        then a new favourite artist in place of the least liked one. HetRec listeners keep
        the dataset's counts."""
        if self.artist_share >= 1:
            return
        for weights in (self.genre_weights, self.artist_weights):
            for key in weights:
                weights[key] *= math.exp(rng.gauss(0, DAILY_DRIFT_SIGMA))
        if self.genre_weights and rng.random() < DAILY_NEW_ARTIST_CHANCE:
            genres, cum = self._weighted(self.genre_weights, "_genre_cum")
            newcomer = catalog.artists_by_genre[genres[_pick(cum, rng)]].draw(rng)
            if newcomer not in self.artist_weights and len(self.artist_weights) > 1:
                weakest = min(self.artist_weights, key=self.artist_weights.__getitem__)
                del self.artist_weights[weakest]
                self.artist_weights[newcomer] = rng.expovariate(1)
        self._artist_cum = self._genre_cum = None


def _listener(seed: int, user_id: str, skip_scale: float) -> tuple[random.Random, Listener]:
    rng = random.Random(f"{seed}/listener/{user_id}")
    country = _COUNTRY_NAMES[_pick(_COUNTRY_CUM, rng)]
    device = _DEVICE_NAMES[_pick(_DEVICE_CUM, rng)]
    skip, like = rng.betavariate(2, 6), rng.betavariate(1.2, 40)  # skip mean 0.25
    listener = Listener(
        user_id=user_id,
        country=country,
        utc_offset_h=COUNTRIES[country][1],
        device=device,
        sessions_per_day=rng.lognormvariate(math.log(1.5), 0.8),
        skip_propensity=min(0.9, skip * skip_scale),
        like_rate=like,
        allow_explicit=rng.random() >= NO_EXPLICIT_SHARE,
    )
    return rng, listener


def build_synthetic_population(config: SimulationConfig, catalog: Catalog) -> list[Listener]:
    """``config.users`` listeners with tastes over ``catalog`` (see the module docstring)."""
    skip_scale = config.mean_skip_rate / 0.25
    genre_count = len(catalog.genres)
    listeners = []
    for index in range(config.users):
        rng, listener = _listener(config.seed, f"u{index}", skip_scale)
        genres = {_pick(catalog.genre_cum, rng) for _ in range(rng.randint(2, 4))}
        listener.genre_weights = {g: rng.expovariate(1) for g in sorted(genres)}
        genre_list = sorted(genres)
        artists = set()
        for _ in range(rng.randint(4, 15)):
            if rng.random() < 0.8:
                pool = catalog.artists_by_genre[rng.choice(genre_list)]
            else:
                pool = catalog.artists_overall
            artists.add(pool.draw(rng))
        listener.artist_weights = {a: rng.expovariate(1) for a in sorted(artists)}
        others = [g for g in range(genre_count) if g not in genres]
        listener.disliked = frozenset(rng.sample(others, min(len(others), rng.randint(1, 3))))
        listener.artist_share = rng.uniform(0.45, 0.65)
        listener.genre_share = rng.uniform(0.2, 0.35)
        listeners.append(listener)
    return listeners


def load_hetrec_play_counts(root: Path) -> list[tuple[str, str, int]]:
    """``(userID, artistID, weight)`` rows of HetRec lastfm-2k's ``user_artists.dat``.

    ``root`` is the datasets folder holding ``hetrec2011-lastfm-2k/``.

    Raises:
        DatasetError: the file is missing or a row is not ``user<TAB>artist<TAB>count``.
    """
    path = Path(root) / DATASET_DIRS[HETREC_LASTFM_2K] / "user_artists.dat"
    if not path.is_file():
        raise DatasetError(f"HetRec lastfm-2k play counts not found: expected {path}")
    rows = []
    with path.open(encoding="utf-8", errors="replace") as lines:
        header = next(lines, "").split()
        if header[:3] != ["userID", "artistID", "weight"]:
            raise DatasetError(f"{path}: expected header 'userID artistID weight', got {header}")
        for number, line in enumerate(lines, start=2):
            parts = line.split()
            if not parts:
                continue
            try:
                user, artist, weight = parts[0], parts[1], int(parts[2])
            except (IndexError, ValueError) as error:
                raise DatasetError(
                    f"{path}:{number}: expected 'user<TAB>artist<TAB>count', got {line!r}"
                ) from error
            if weight > 0:
                rows.append((user, artist, weight))
    if not rows:
        raise DatasetError(f"{path} holds no play counts")
    return rows


def load_hetrec_artist_names(root: Path) -> dict[str, str]:
    """HetRec artist id -> name, from ``artists.dat``.

    Raises:
        DatasetError: the file is missing.
    """
    path = Path(root) / DATASET_DIRS[HETREC_LASTFM_2K] / "artists.dat"
    if not path.is_file():
        raise DatasetError(f"HetRec lastfm-2k artist names not found: expected {path}")
    names = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) >= 2 and parts[1].strip():
            names[parts[0]] = parts[1].strip()
    return names


def build_hetrec_population(
    config: SimulationConfig,
    rows: list[tuple[str, str, int]],
    names: dict[str, str],
    catalog: Catalog,
) -> list[Listener]:
    """Listeners from HetRec play counts, their artists matched to the catalog's by name.

    Raises:
        DatasetError: none of the dataset's artists is in the catalog.
    """
    catalog_artist = {a: i for i, a in enumerate(catalog.artist_ids)}
    to_catalog = {
        hetrec: catalog_artist[ids.artist_id(name)]
        for hetrec, name in names.items()
        if ids.artist_id(name) in catalog_artist
    }
    by_user: dict[str, Counter[int]] = defaultdict(Counter)
    for user, artist, weight in rows:
        if artist in to_catalog:
            by_user[user][to_catalog[artist]] += weight
    if not by_user:
        raise DatasetError(
            "none of HetRec lastfm-2k's artists is in the catalog: load it with "
            "`encore catalog load --source hetrec-lastfm-2k`"
        )
    totals = {user: sum(counts.values()) for user, counts in by_user.items()}
    mean_total = sum(totals.values()) / len(totals)
    skip_scale = config.mean_skip_rate / 0.25
    listeners = []
    for user in sorted(by_user, key=int):
        _, listener = _listener(config.seed, f"u{user}", skip_scale)
        counts = by_user[user]
        genres: Counter[int] = Counter()
        for artist, weight in counts.items():
            genres[catalog.artist_genre[artist]] += weight
        listener.artist_weights = {a: float(w) for a, w in sorted(counts.items())}
        listener.genre_weights = {g: float(w) for g, w in sorted(genres.items())}
        listener.artist_share, listener.genre_share = 1.0, 0.0  # the dataset's counts only
        listener.allow_explicit = True
        listener.sessions_per_day = MEAN_SESSIONS_PER_DAY * totals[user] / mean_total
        listeners.append(listener)
    return listeners


def build_population(config: SimulationConfig, catalog: Catalog) -> list[Listener]:
    """The listeners of ``config`` over ``catalog``: synthetic, or from its dataset."""
    if config.dataset is None:
        return build_synthetic_population(config, catalog)
    root = config.dataset_root
    if root is None:
        from encore.settings import get_settings

        root = get_settings().datasets.resolve()
        if root is None:
            raise DatasetError(
                f"dataset {config.dataset!r} needs the datasets folder: set "
                "ENCORE_DATASETS__ROOT to the folder holding hetrec2011-lastfm-2k/"
            )
    return build_hetrec_population(
        config, load_hetrec_play_counts(root), load_hetrec_artist_names(root), catalog
    )
