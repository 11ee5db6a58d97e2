"""The fixed genre taxonomy and licensing territories the catalog is built from.

Every song's ``genre`` is one of ``GENRES`` (a leaf or a parent), so that search facets,
the simulator's tastes and the models all speak the same small vocabulary. HetRec's free
Last.fm tags are mapped onto it by ``genre_of_tags`` (a tag becomes a genre when one of the
genre's keywords appears in it; the artist's most used mappable tag wins).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Genre:
    name: str
    parent: str | None
    median_duration_s: float
    """Median song length; lengths are log-normal around it (``duration_sigma``)."""
    duration_sigma: float
    explicit_share: float
    """Share of the genre's songs flagged explicit."""
    keywords: tuple[str, ...]
    """Substrings of Last.fm tags that name this genre (lower-case)."""


# (name, parent, median s, sigma, explicit share, tag keywords); parents come first.
_GENRES = [
    ("rock", None, 235, 0.25, 0.05, ("rock", "grunge", "britpop")),
    ("pop", None, 205, 0.20, 0.08, ("pop",)),
    ("electronic", None, 260, 0.35, 0.03, ("electro", "edm", "synth")),
    ("hip-hop", None, 215, 0.25, 0.55, ("hip-hop", "hip hop", "hiphop", "rap")),
    ("jazz", None, 330, 0.40, 0.01, ("jazz", "swing", "bebop")),
    ("classical", None, 420, 0.60, 0.0, ("classical", "baroque", "opera", "orchestral")),
    ("metal", None, 290, 0.35, 0.15, ("metal", "metalcore", "grindcore")),
    ("folk", None, 220, 0.25, 0.02, ("folk", "singer-songwriter", "acoustic")),
    ("r&b", None, 225, 0.22, 0.20, ("r&b", "rnb", "soul", "funk", "motown")),
    ("country", None, 200, 0.18, 0.02, ("country", "bluegrass", "americana")),
    ("latin", None, 210, 0.22, 0.10, ("latin", "reggaeton", "salsa", "bossa", "tango")),
    ("world", None, 250, 0.35, 0.01, ("world", "celtic", "african", "j-pop", "k-pop")),
    ("indie rock", "rock", 225, 0.25, 0.06, ("indie", "shoegaze", "lo-fi")),
    ("alternative rock", "rock", 230, 0.25, 0.07, ("alternative", "post-rock", "emo")),
    ("punk", "rock", 165, 0.30, 0.20, ("punk", "hardcore", "ska")),
    ("classic rock", "rock", 250, 0.30, 0.02, ("classic rock", "hard rock", "70s", "blues")),
    ("synth-pop", "pop", 225, 0.22, 0.03, ("synthpop", "synth-pop", "new wave", "80s")),
    ("dance", "pop", 215, 0.22, 0.06, ("dance", "disco", "eurodance")),
    ("house", "electronic", 340, 0.30, 0.02, ("house",)),
    ("techno", "electronic", 380, 0.30, 0.01, ("techno", "trance", "minimal")),
    ("ambient", "electronic", 330, 0.50, 0.0, ("ambient", "chillout", "downtempo", "new age")),
    ("drum and bass", "electronic", 300, 0.30, 0.04, ("drum and bass", "dnb", "dubstep")),
    ("industrial", "electronic", 280, 0.30, 0.10, ("industrial", "ebm", "darkwave", "gothic")),
    ("trap", "hip-hop", 185, 0.25, 0.70, ("trap", "grime", "drill")),
    ("heavy metal", "metal", 300, 0.30, 0.12, ("heavy metal", "thrash", "power metal")),
    ("death metal", "metal", 270, 0.35, 0.25, ("death metal", "black metal", "doom")),
    ("reggae", "world", 235, 0.22, 0.05, ("reggae", "dub", "dancehall")),
    ("soundtrack", "classical", 180, 0.55, 0.0, ("soundtrack", "score", "video game")),
]  # fmt: skip

GENRES: dict[str, Genre] = {name: Genre(name, *rest) for name, *rest in _GENRES}
"""Every genre by name: 12 parents and 16 sub-genres."""

# Worldwide licence: the service's markets (the simulator's listener countries and more). A
# restricted song is licensed in a few of these only, so a listener elsewhere gets 451; a
# listener with no country on file streams only songs licensed in all of them.
WORLDWIDE = (
    "US", "GB", "DE", "BR", "MX", "FR", "IN", "SE", "JP", "CA", "AU", "ES", "IT", "NL",
    "PL", "AR", "TR", "NO", "FI", "KR", "ZA", "NG", "IE", "AT", "CH", "BE", "DK", "PT",
    "NZ", "CL", "CO", "PE", "SG", "PH", "ID", "TW",
)  # fmt: skip


def genre_of_tags(tag_counts: Iterable[tuple[str, int]]) -> str | None:
    """The genre named by an artist's tags: the most used tag that maps to one.

    A tag maps to the genre whose keyword it contains, the longest keyword winning ("death
    metal" is death metal, not metal). ``None`` when no tag names a genre.
    """
    for tag, _ in sorted(tag_counts, key=lambda pair: (-pair[1], pair[0])):
        genre = _genre_of_tag(tag.lower())
        if genre is not None:
            return genre
    return None


_KEYWORDS = sorted(
    ((keyword, genre.name) for genre in GENRES.values() for keyword in genre.keywords),
    key=lambda pair: -len(pair[0]),
)


def _genre_of_tag(tag: str) -> str | None:
    for keyword, genre in _KEYWORDS:
        if keyword in tag:
            return genre
    return None
