"""A realistic synthetic catalog: named artists, their albums and songs, deterministic by seed.

The model, each piece a plain assumption rather than a fit to real data:

* **Artists**: generated plausible names (unique, also case-folded), one genre of
  ``taxonomy.GENRES`` each, a home country, a career start year (recent years likelier).
  Popularity is Zipf over artists (exponent 1, rank shuffled against the name order).
* **Albums**: ``songs_per_artist`` songs per artist on average, in albums of 8-14 songs
  (an artist with a smaller mean gets one shorter album); one to four years apart. Most
  albums are in the artist's genre, a few in a neighbour (parent or sibling) genre.
* **Songs**: durations log-normal around the genre's median, explicit at the genre's rate,
  release dates in the album's year; popularity = artist popularity x Zipf over the
  artist's songs (a random track is the hit) x log-normal noise, so the top 10% of songs
  hold most of it.
* **Licensing**: 90% of albums are licensed worldwide (``taxonomy.WORLDWIDE``), the rest in
  one to four countries only (usually including the artist's home), so a listener
  elsewhere gets 451.

``build_catalog`` takes artists from any source (HetRec gives real names and genres) and
yields ``CatalogBatch`` es of ready rows, a few thousand artists at a time, so a million
songs never sit in memory at once.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from encore.db import ids
from streaming_api.catalog.taxonomy import GENRES, WORLDWIDE

PLACEHOLDER_HOST = "encore.invalid"  # a reserved TLD: placeholders never resolve
LAST_RELEASE_YEAR = 2026
RESTRICTED_SHARE = 0.10
ALBUM_SONGS = (8, 14)


def _words(text: str) -> list[str]:
    return text.split()


_GENRE_NAMES = list(GENRES)
# Genre mix of the synthetic artists: parents and popular sub-genres weigh more.
_GENRE_WEIGHTS = [3.0 if GENRES[g].parent is None else 1.5 for g in _GENRE_NAMES]

_FIRST = _words("""Ada Alma Amos Ana Arlo Bea Ben Cal Cleo Dara Dev Eli Ella Emil Eva Finn Gia Gus
Hana Ike Ines Ivo Jade Jonas Juno Kai Kira Leo Lena Lior Luca Mae Mara Milo Nia Noor Omar
Otto Pia Remy Rosa Ruth Sami Sana Theo Tove Uma Vera Wren Yara Zane Zoe""")
_LAST = _words("""Abbott Alvarez Baker Banerjee Castillo Dahl Duarte Ekström Fontaine García Haas
Holm Ibarra Jansen Kaur Kowalski Lindqvist Moreau Nakamura Novak Okafor Olsen Park Quinn
Reyes Rossi Sato Schmidt Silva Stone Tanaka Varga Vogel Weiss Young Zhou""")
_ADJECTIVES = _words("""Amber Analog Ashen Blue Brass Broken Burning Cobalt Crimson Crystal Dead
Distant Electric Empty Endless Feral Fading Frozen Gentle Golden Hollow Iron Last Lazy
Lonely Lucky Lunar Midnight Neon Northern Pale Paper Quiet Restless Rusty Sacred Secret
Silent Silver Solar Static Stray Sunken Velvet Violet Wild Wooden""")
_NOUNS = _words("""Anchor Arrow Atlas Bird Bridge Canyon Comet Crow Dream Echo Ember Engine Falcon
Feather Fire Forest Ghost Harbor Heart Horizon Island Lantern Machine Mirror Moon Mountain
Ocean Orchid Pilot Planet Prophet River Rose Saint Shadow Signal Sparrow Storm Stranger
Sun Tide Tiger Tower Valley Wave Whale Wolf""")
_SYLLABLES = _words("""ka lo mi ra ven tor sa li na vo zu el an bri dor fe gal ko lum mar nel or pax
qui ren sol tam ul vek wyn xa yel zor""")
_VERBS = _words("""Chasing Counting Dancing Drifting Falling Finding Holding Leaving Losing Running
Saving Singing Waiting Waking Burning Calling""")
_PLACES = _words("""Tokyo Lisbon Berlin Memphis Havana Oslo Lagos Seoul Dublin Austin Rio Kyoto
Marseille Detroit Bombay Reno""")


@dataclass(frozen=True)
class ArtistSpec:
    """An artist to generate albums and songs for."""

    name: str
    genre: str
    popularity: float
    """Relative popularity (any scale; songs inherit it)."""
    home: str = "US"


@dataclass
class CatalogBatch:
    """Ready rows for a slice of artists (tuples in ``load``'s column order)."""

    artists: list[tuple] = field(default_factory=list)
    albums: list[tuple] = field(default_factory=list)
    songs: list[tuple] = field(default_factory=list)


def _artist_name(rng: random.Random) -> str:
    style = rng.random()
    if style < 0.25:
        return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    if style < 0.45:
        return f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}s"
    if style < 0.60:
        return f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
    if style < 0.75:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3)))
        return word.capitalize()
    if style < 0.85:
        return f"{rng.choice(_FIRST)} & the {rng.choice(_NOUNS)}s"
    if style < 0.93:
        return f"{rng.choice(_NOUNS)} {rng.choice(_PLACES)}"
    return f"DJ {''.join(rng.choice(_SYLLABLES) for _ in range(2)).capitalize()}"


def synthetic_artists(count: int, seed: int) -> list[ArtistSpec]:
    """``count`` artists with unique generated names, genres, homes and Zipf popularity."""
    rng = random.Random(f"{seed}/artists")
    names: list[str] = []
    taken: set[str] = set()
    for _ in range(count):
        name = _artist_name(rng)
        attempt = 1
        while name.casefold() in taken:
            attempt += 1
            name = _artist_name(rng) if attempt < 6 else f"{_artist_name(rng)} {attempt}"
        taken.add(name.casefold())
        names.append(name)
    ranks = list(range(1, count + 1))
    rng.shuffle(ranks)
    genres = rng.choices(_GENRE_NAMES, weights=_GENRE_WEIGHTS, k=count)
    homes = rng.choices(WORLDWIDE[:22], k=count)
    return [
        ArtistSpec(name, genre, 100.0 / rank, home)
        for name, genre, rank, home in zip(names, genres, ranks, homes, strict=True)
    ]


def _neighbour_genre(genre: str, rng: random.Random) -> str:
    parent = GENRES[genre].parent or genre
    family = [g.name for g in GENRES.values() if g.name == parent or g.parent == parent]
    return rng.choice(family)


def _album_sizes(songs_per_artist: int, rng: random.Random) -> list[int]:
    low, high = ALBUM_SONGS
    if songs_per_artist < low:
        return [max(1, songs_per_artist + rng.randint(-2, 2))]
    mean_albums = songs_per_artist / ((low + high) / 2)
    # 1 + Poisson(mean - 1) albums of mean 11 songs: songs_per_artist songs on average
    extra, threshold, product = 0, math.exp(-(mean_albums - 1)), rng.random()
    while product > threshold:
        extra += 1
        product *= rng.random()
    return [rng.randint(low, high) for _ in range(1 + extra)]


def _unique_title(make, taken: set[str], rng: random.Random) -> str:  # type: ignore[no-untyped-def]
    title = make(rng)
    attempt = 1
    while title.casefold() in taken:
        attempt += 1
        title = make(rng) if attempt < 5 else f"{make(rng)} (Part {attempt})"
    taken.add(title.casefold())
    return title


def _album_title(rng: random.Random) -> str:
    style = rng.random()
    if style < 0.35:
        return f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
    if style < 0.55:
        return f"{rng.choice(_NOUNS)}s of {rng.choice(_PLACES)}"
    if style < 0.75:
        return rng.choice(_ADJECTIVES) + " " + rng.choice(_ADJECTIVES) + " " + rng.choice(_NOUNS)
    return f"The {rng.choice(_NOUNS)} Sessions"


def _song_title(rng: random.Random) -> str:
    style = rng.random()
    if style < 0.35:
        return f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
    if style < 0.60:
        return f"{rng.choice(_VERBS)} {rng.choice(_NOUNS)}s"
    if style < 0.75:
        return f"{rng.choice(_VERBS)} in {rng.choice(_PLACES)}"
    if style < 0.88:
        return rng.choice(_NOUNS)
    return f"{rng.choice(_NOUNS)} and {rng.choice(_NOUNS)}"


def _significant(value: float) -> float:
    # six significant digits: stable text in the database, the tail's skew kept
    return float(f"{value:.6g}")


def _territories(home: str, rng: random.Random) -> str:
    """A PostgreSQL array literal: worldwide, or (for a minority) a few countries."""
    if rng.random() >= RESTRICTED_SHARE:
        return "{" + ",".join(WORLDWIDE) + "}"
    countries = {home} if rng.random() < 0.8 else set()
    countries.update(rng.sample(WORLDWIDE, rng.randint(1, 3)))
    return "{" + ",".join(sorted(countries)) + "}"


def _artist_rows(spec: ArtistSpec, songs_per_artist: int, seed: int, batch: CatalogBatch) -> None:
    rng = random.Random(f"{seed}/artist/{spec.name}")
    artist = ids.artist_id(spec.name)
    genre = GENRES[spec.genre]
    first_year = min(LAST_RELEASE_YEAR, int(LAST_RELEASE_YEAR - rng.expovariate(1 / 12)))
    batch.artists.append(
        (
            artist,
            spec.name,
            f"{spec.name} is a {genre.name} act from {spec.home}, releasing music since "
            f"{max(1950, first_year)}.",
            f"https://images.{PLACEHOLDER_HOST}/artists/{artist}.jpg",
            _significant(spec.popularity),
        )
    )
    sizes = _album_sizes(songs_per_artist, rng)
    hit_ranks = list(range(1, sum(sizes) + 1))
    rng.shuffle(hit_ranks)
    album_titles: set[str] = set()
    year = max(1950, first_year)
    song_index = 0
    for size in sizes:
        album_title = _unique_title(_album_title, album_titles, rng)
        album = ids.album_id(artist, album_title)
        year = min(LAST_RELEASE_YEAR, year + rng.randint(1, 4) * (song_index > 0))
        batch.albums.append(
            (
                album,
                artist,
                album_title,
                year,
                f"https://images.{PLACEHOLDER_HOST}/albums/{album}.jpg",
            )
        )
        album_genre = genre if rng.random() < 0.85 else GENRES[_neighbour_genre(genre.name, rng)]
        released = date(year, 1, 1) + timedelta(days=rng.randrange(365))
        territories = _territories(spec.home, rng)
        song_titles: set[str] = set()
        for track in range(1, size + 1):
            title = _unique_title(_song_title, song_titles, rng)
            song = ids.song_id(album, title)
            seconds = rng.lognormvariate(
                math.log(album_genre.median_duration_s), album_genre.duration_sigma
            )
            duration_ms = int(min(1_200_000, max(45_000, seconds * 1000)))
            popularity = spec.popularity / hit_ranks[song_index] * rng.lognormvariate(0, 0.3)
            lyrics = (
                None
                if album_genre.name in ("classical", "ambient", "soundtrack")
                else f"https://lyrics.{PLACEHOLDER_HOST}/songs/{song}"
            )
            batch.songs.append(
                (
                    song,
                    title,
                    artist,
                    album,
                    track,
                    album_genre.name,
                    duration_ms,
                    lyrics,
                    released,
                    rng.random() < album_genre.explicit_share,
                    territories,
                    _significant(popularity),
                )
            )
            song_index += 1


def build_catalog(
    artists: Sequence[ArtistSpec], songs_per_artist: int, seed: int, batch_artists: int = 2_000
) -> Iterator[CatalogBatch]:
    """Albums and songs for ``artists``, ``batch_artists`` artists per yielded batch.

    Deterministic: the same artists, mean and seed give the same rows (and ids).
    """
    for start in range(0, len(artists), batch_artists):
        batch = CatalogBatch()
        for spec in artists[start : start + batch_artists]:
            _artist_rows(spec, songs_per_artist, seed, batch)
        yield batch


SONG_COLUMNS = (
    "song_id", "title", "artist_id", "album_id", "track_number", "genre", "duration_ms",
    "lyrics_url", "release_date", "explicit", "territories", "popularity",
)  # fmt: skip
"""The layout of ``CatalogBatch.songs`` rows (columns of ``encore.db.schema.songs``), which
the loader copies in this order."""


def synthetic_songs(artists: int, songs_per_artist: int, seed: int) -> Iterator[dict[str, object]]:
    """The songs ``load_catalog`` writes for these options, as records named by the songs
    table's columns (``territories`` a list), without a database: for benchmarks and tests
    that need the catalog in memory."""
    for batch in build_catalog(synthetic_artists(artists, seed), songs_per_artist, seed):
        for row in batch.songs:
            record = dict(zip(SONG_COLUMNS, row, strict=True))
            record["territories"] = str(record["territories"]).strip("{}").split(",")
            yield record
