"""Who listens to what: the catalogue, the listeners and their tastes.

Inputs: a ``SimulationConfig`` and, for the HetRec population, the lastfm-2k play counts
(``user_artists.dat``). Output: a ``Catalog`` and ``Listener`` list that
:mod:`pipelines.simulation.listening` turns into sessions and events. This is the module to
change for a real catalogue; the listening model and the senders do not depend on how it is
built.

The model, each piece a plain, documented assumption rather than a fit to real data:

* **Catalogue**: artists with 3 to ``2 * songs_per_artist`` songs (``a<artist>-s<k>``).
  Artist popularity is Zipf (exponent ``zipf_exponent``), songs within an artist Zipf with
  exponent 1, so song plays have a Zipf-like head.
* **Listeners**: a country (skewed: US first), a primary device used in 80% of sessions, a
  handful of favourite artists (by popularity) with Dirichlet-like weights, an exploration
  rate (the rest of the plays follow global popularity), a skip propensity around 25%, a
  like rate of a few percent, and a session rate (log-normal, about two sessions a day).
* **HetRec lastfm-2k**: users and artists come from the dataset; each user picks artists in
  proportion to their play counts (no exploration) and listens in proportion to their total
  count (mean two sessions a day), so the stream's user x artist counts follow the dataset's.

Everything is drawn from ``random.Random`` streams seeded by ``(seed, listener)``: the same
config gives the same population.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from encore.errors import ConfigurationError, DatasetError

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


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. The same config always yields the same events."""

    seed: int = 0
    start: datetime = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
    duration: timedelta = timedelta(hours=1)
    users: int = 10_000
    """Listeners in the population (most are idle at any moment, as in life)."""
    artists: int = 2_000
    songs_per_artist: int = 10
    zipf_exponent: float = 1.1
    mean_skip_rate: float = 0.25
    dataset: str | None = None
    """``hetrec-lastfm-2k`` to take listeners and artists from HetRec play counts."""
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
    return bisect.bisect_right(cum, rng.random() * cum[-1])


_ZIPF_CUM: dict[tuple[int, float], list[float]] = {}


def _zipf_index(n: int, exponent: float, rng: random.Random) -> int:
    cum = _ZIPF_CUM.get((n, exponent))
    if cum is None:
        cum = _ZIPF_CUM[(n, exponent)] = _cumulative(1 / (k**exponent) for k in range(1, n + 1))
    return _pick(cum, rng)


_COUNTRY_NAMES = list(COUNTRIES)
_COUNTRY_CUM = _cumulative(share for share, _ in COUNTRIES.values())
_DEVICE_NAMES = list(DEVICES)
_DEVICE_CUM = _cumulative(DEVICES.values())


@dataclass
class Catalog:
    artist_ids: list[str]
    song_counts: list[int]
    artist_cum: list[float]
    """Cumulative global popularity of artists, for exploration picks."""

    def popular_artist(self, rng: random.Random) -> int:
        """An artist index drawn by global popularity."""
        return _pick(self.artist_cum, rng)

    def song_id(self, artist: int, rng: random.Random) -> str:
        k = _zipf_index(self.song_counts[artist], 1.0, rng)
        return f"a{self.artist_ids[artist]}-s{k}"


@dataclass
class Listener:
    user_id: str
    country: str
    utc_offset_h: int
    device: str
    favourites: list[int]
    favourite_cum: list[float]
    exploration: float
    sessions_per_day: float
    skip_propensity: float
    like_rate: float

    def session_device(self, rng: random.Random) -> str:
        """The device of one session: the listener's own in 80% of sessions."""
        return self.device if rng.random() < 0.8 else _DEVICE_NAMES[_pick(_DEVICE_CUM, rng)]

    def choose_song(self, catalog: Catalog, rng: random.Random) -> tuple[str, bool]:
        """The next song, and whether it was an exploration (not a favourite artist's)."""
        explore = not self.favourites or rng.random() < self.exploration
        if explore:
            artist = catalog.popular_artist(rng)
        else:
            artist = self.favourites[_pick(self.favourite_cum, rng)]
        return catalog.song_id(artist, rng), explore


def _listener_traits(seed: int, user_id: str) -> tuple[random.Random, str, str, float, float]:
    rng = random.Random(f"{seed}/listener/{user_id}")
    country = _COUNTRY_NAMES[_pick(_COUNTRY_CUM, rng)]
    device = _DEVICE_NAMES[_pick(_DEVICE_CUM, rng)]
    return rng, country, device, rng.betavariate(2, 6), rng.betavariate(1.2, 40)


def build_synthetic_population(config: SimulationConfig) -> tuple[Catalog, list[Listener]]:
    """A Zipf catalogue and ``config.users`` listeners (see the module docstring)."""
    rng = random.Random(f"{config.seed}/catalog")
    upper = max(3, 2 * config.songs_per_artist - 3)
    catalog = Catalog(
        artist_ids=[str(a) for a in range(config.artists)],
        song_counts=[rng.randint(3, upper) for _ in range(config.artists)],
        artist_cum=_cumulative(
            1 / (rank**config.zipf_exponent) for rank in range(1, config.artists + 1)
        ),
    )
    skip_scale = config.mean_skip_rate / 0.25  # betavariate(2, 6) has mean 0.25
    listeners = []
    for index in range(config.users):
        user_id = f"u{index}"
        rng, country, device, skip, like = _listener_traits(config.seed, user_id)
        favourites = sorted({catalog.popular_artist(rng) for _ in range(rng.randint(3, 12))})
        listeners.append(
            Listener(
                user_id=user_id,
                country=country,
                utc_offset_h=COUNTRIES[country][1],
                device=device,
                favourites=favourites,
                favourite_cum=_cumulative(rng.expovariate(1) for _ in favourites),
                exploration=rng.uniform(0.1, 0.4),
                sessions_per_day=rng.lognormvariate(math.log(1.5), 0.8),
                skip_propensity=min(0.9, skip * skip_scale),
                like_rate=like,
            )
        )
    return catalog, listeners


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


def build_hetrec_population(
    config: SimulationConfig, rows: list[tuple[str, str, int]]
) -> tuple[Catalog, list[Listener]]:
    """Listeners and artists from HetRec play counts (see the module docstring)."""
    artist_ids = sorted({artist for _, artist, _ in rows}, key=int)
    artist_index = {artist: i for i, artist in enumerate(artist_ids)}
    rng = random.Random(f"{config.seed}/catalog")
    totals: Counter[str] = Counter()
    per_artist: Counter[str] = Counter()
    for user, artist, weight in rows:
        totals[user] += weight
        per_artist[artist] += weight
    catalog = Catalog(
        artist_ids=artist_ids,
        song_counts=[rng.randint(3, max(3, 2 * config.songs_per_artist - 3)) for _ in artist_ids],
        artist_cum=_cumulative(per_artist[a] for a in artist_ids),
    )
    by_user: dict[str, list[tuple[int, int]]] = {}
    for user, artist, weight in rows:
        by_user.setdefault(user, []).append((artist_index[artist], weight))
    mean_total = sum(totals.values()) / len(totals)
    skip_scale = config.mean_skip_rate / 0.25
    listeners = []
    for user in sorted(by_user, key=int):
        user_id = f"u{user}"
        _, country, device, skip, like = _listener_traits(config.seed, user_id)
        artists = sorted(by_user[user])
        listeners.append(
            Listener(
                user_id=user_id,
                country=country,
                utc_offset_h=COUNTRIES[country][1],
                device=device,
                favourites=[a for a, _ in artists],
                favourite_cum=_cumulative(w for _, w in artists),
                exploration=0.0,  # plays follow the dataset's counts only
                sessions_per_day=MEAN_SESSIONS_PER_DAY * totals[user] / mean_total,
                skip_propensity=min(0.9, skip * skip_scale),
                like_rate=like,
            )
        )
    return catalog, listeners


def build_population(config: SimulationConfig) -> tuple[Catalog, list[Listener]]:
    """The catalogue and listeners of ``config``: synthetic, or from its dataset."""
    if config.dataset is None:
        return build_synthetic_population(config)
    root = config.dataset_root
    if root is None:
        from encore.settings import get_settings

        root = get_settings().datasets.resolve()
        if root is None:
            raise DatasetError(
                f"dataset {config.dataset!r} needs the datasets folder: set "
                "ENCORE_DATASETS__ROOT to the folder holding hetrec2011-lastfm-2k/"
            )
    return build_hetrec_population(config, load_hetrec_play_counts(root))
