"""Catalog search: songs, artists and albums by full text, forgiving typos, in one statement.

Matching, in PostgreSQL (indexes from migration 0002):

* **Full text**: the query is folded with ``encore_fold`` (lower case, accents removed, so
  "beyonce" finds "Beyoncé"), split by the 'simple' parser the documents were built with,
  and every word must match; the last one as a prefix, so "come toget" finds "Come
  Together" while it is typed. Songs' documents weigh title A, artist B, album C, so a title
  match ranks above an album-only one. Uses the GIN indexes on ``search_document``.
* **Typos**: when a type's words match fewer than ``TYPO_FALLBACK_BELOW`` rows, ``pg_trgm``
  word similarity of the folded query to the folded title or name, at least
  ``TYPO_SIMILARITY`` ("beatels" to "the beatles" is 0.5), adds matches. Uses the trigram
  GIN indexes (not read at all when the words found enough).

Score: ``ts_rank``, +0.5 when every word matches whole, +1 when the title or name is the
query; a typo match scores its word similarity. Ties go to the more popular, then to the
smaller id, so the same query always pages the same way.

One request is one SQL statement (CTEs per requested type, ``UNION ALL``ed with a type
column, one total row per type) on an autocommit connection: no BEGIN or ROLLBACK around
it (the engine's ``pool_pre_ping`` adds its own ``;`` on checkout).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import TextClause, text
from sqlalchemy.engine import Engine

from encore.errors import ContractError
from streaming_api.database import reading

SEARCH_TYPES = ("song", "artist", "album")
MAX_QUERY_LENGTH = 200
MAX_LIMIT = 50
MAX_OFFSET = 1000
TYPO_SIMILARITY = 0.45
"""``pg_trgm.word_similarity_threshold`` for the typo arm (PostgreSQL's default 0.6 misses
"beatels" -> "The Beatles" at 0.5; much lower matches noise)."""

TYPO_FALLBACK_BELOW = 10
"""Typo matches join a type's results only when its words match fewer than this many: typos
are the fallback, and matching trigrams of common words is the costliest part of a search."""
MIN_PREFIX = 2
"""A query of one word matches it as a prefix from this many letters ("s" alone would match
most songs); after other words, any last word is a prefix ("calling f")."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# The same rules as JSON Schema patterns, so the API's OpenAPI schema says what is accepted
# (a schema-valid request is never refused): no control characters, something besides space;
# types as a comma list without spaces.
QUERY_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
TYPES_PATTERN = r"^(song|artist|album)s?(,(song|artist|album)s?)*$"

# The threshold is a GUC read by the trigram operators; ``set_config(..., true)`` in the
# first CTE sets it for this statement's transaction. The operators' right-hand side is
# ``(SELECT folded FROM input)``, an InitPlan evaluated before the index scan starts, so
# the setting is in place before any trigram comparison (and no second statement is sent).
_PREAMBLE = r"""
input AS MATERIALIZED (
    SELECT encore_fold(CAST(:q AS text)) AS folded,
           set_config('pg_trgm.word_similarity_threshold', :typo_similarity, true) AS typo
),
words AS MATERIALIZED (
    -- the query's words as the documents were parsed, quoted as tsquery lexemes
    SELECT '''' || replace(replace(lexeme, '\', '\\'), '''', '''''') || '''' AS quoted,
           length(lexeme) AS letters,
           positions[cardinality(positions)] AS last_position,
           max(positions[cardinality(positions)]) OVER () AS final_position,
           count(*) OVER () AS word_count
    FROM input, unnest(to_tsvector('simple', input.folded))
),
query AS MATERIALIZED (
    -- terms: every word must match, the last one as a prefix (typed so far), when it has
    -- MIN_PREFIX letters or follows other words; whole: all of them whole (ranks higher)
    SELECT input.folded,
        coalesce((
            SELECT string_agg(quoted || CASE WHEN last_position = final_position
                AND (letters >= :min_prefix OR word_count > 1) THEN ':*' ELSE '' END,
                ' & ' ORDER BY last_position)
            FROM words), '')::tsquery AS terms,
        coalesce((SELECT string_agg(quoted, ' & ') FROM words), '')::tsquery AS whole
    FROM input
)"""

# Per type: the word matches; typo matches only when the words find fewer than
# TYPO_FALLBACK_BELOW (a one-time filter: the trigram index is not even read otherwise);
# then the requested page of them. Scores: ts_rank (title A > artist B > album C), +0.5
# when all words match whole, +1 when the whole title or name is the query; typo matches
# score their word similarity. word_similarity costs ~12 us a row: only typo rows pay it.
_MATCHES = """
{kind}_words AS (
    SELECT t.{id} AS id, {popularity} AS popularity, round(CAST(
        ts_rank(t.search_document, q.terms)
        + CASE WHEN t.search_document @@ q.whole THEN 0.5 ELSE 0 END
        -- the length test first spares most rows the unaccent call (~2.5 us a row)
        + CASE WHEN char_length(t.{name}) <> char_length(q.folded) THEN 0
               WHEN encore_fold(t.{name}) = q.folded THEN 1 ELSE 0 END AS numeric), 4) AS score
    FROM {table} AS t CROSS JOIN query AS q
    WHERE t.search_document @@ (SELECT terms FROM query)
),
{kind}_matches AS (
    SELECT id, popularity, score FROM {kind}_words
    UNION ALL
    SELECT t.{id}, {popularity}, round(CAST(
        word_similarity(q.folded, encore_fold(t.{name})) AS numeric), 4)
    FROM {table} AS t CROSS JOIN query AS q
    WHERE encore_fold(t.{name}) %> (SELECT folded FROM input)
      AND (SELECT count(*) FROM (SELECT FROM {kind}_words LIMIT :typo_fallback_below) AS w)
          < :typo_fallback_below
      AND NOT EXISTS (SELECT FROM {kind}_words AS w WHERE w.id = t.{id})
)"""

_TABLES = {
    "song": {"table": "songs", "id": "song_id", "name": "title", "popularity": "t.popularity"},
    "artist": {
        "table": "artists",
        "id": "artist_id",
        "name": "name",
        "popularity": "t.popularity",
    },
    "album": {"table": "albums", "id": "album_id", "name": "title", "popularity": "0.0::float8"},
}

_PAGE = """
{kind}_page AS (
    SELECT id, score, row_number() OVER (ORDER BY score DESC, popularity DESC, id) AS ordinal
    FROM {kind}_matches
    ORDER BY score DESC, popularity DESC, id
    LIMIT :limit OFFSET :offset
)"""

# Columns: kind, ordinal, id, name, artist_id, artist_name, album_id, album_title, score,
# total (NULL on hit rows; the one total row per type has ordinal 0 and no id). Every
# branch names them: the first one requested gives the result its column names.
_ROWS = {
    "song": """
SELECT 'song' AS kind, p.ordinal, p.id, s.title AS name, ar.artist_id, ar.name AS artist_name,
       al.album_id, al.title AS album_title, p.score, NULL::bigint AS total
FROM song_page AS p
JOIN songs AS s ON s.song_id = p.id
JOIN artists AS ar ON ar.artist_id = s.artist_id
JOIN albums AS al ON al.album_id = s.album_id""",
    "artist": """
SELECT 'artist' AS kind, p.ordinal, p.id, a.name AS name, NULL AS artist_id,
       NULL AS artist_name, NULL AS album_id, NULL AS album_title, p.score, NULL AS total
FROM artist_page AS p JOIN artists AS a ON a.artist_id = p.id""",
    "album": """
SELECT 'album' AS kind, p.ordinal, p.id, b.title AS name, ar.artist_id,
       ar.name AS artist_name, NULL AS album_id, NULL AS album_title, p.score, NULL AS total
FROM album_page AS p
JOIN albums AS b ON b.album_id = p.id
JOIN artists AS ar ON ar.artist_id = b.artist_id""",
}

_TOTAL = """
SELECT '{kind}', 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, count(*) FROM {kind}_matches"""


@dataclass(frozen=True)
class Hit:
    """One search result; ``artist_*`` for songs and albums, ``album_*`` for songs."""

    id: str
    name: str
    score: float
    artist_id: str | None = None
    artist_name: str | None = None
    album_id: str | None = None
    album_title: str | None = None


@dataclass(frozen=True)
class ResultPage:
    """One type's page of hits, best first, and how many matched in all."""

    total: int
    hits: list[Hit]


def parse_types(value: str | None) -> tuple[str, ...]:
    """``"song,artist"`` as ``("song", "artist")`` in ``SEARCH_TYPES`` order; ``None`` or
    empty: all of them. Plural forms ("songs") are accepted.

    Raises:
        ContractError: an unknown type (the message lists the known ones).
    """
    if value is None or not value.strip():
        return SEARCH_TYPES
    wanted = set()
    for part in value.split(","):
        name = part.strip().lower()
        name = name[:-1] if name.endswith("s") and name[:-1] in SEARCH_TYPES else name
        if name not in SEARCH_TYPES:
            raise ContractError(
                f"type must be a comma list of {', '.join(SEARCH_TYPES)}; got {part.strip()!r}"
            )
        wanted.add(name)
    return tuple(kind for kind in SEARCH_TYPES if kind in wanted)


def check_query(q: str) -> str:
    """The query with surrounding space removed.

    Raises:
        ContractError: empty, longer than ``MAX_QUERY_LENGTH`` or holding control characters.
    """
    stripped = q.strip()
    if not stripped:
        raise ContractError("q must not be empty")
    if len(stripped) > MAX_QUERY_LENGTH:
        raise ContractError(f"q is {len(stripped)} characters; at most {MAX_QUERY_LENGTH}")
    if _CONTROL.search(stripped):
        raise ContractError("q must not contain control characters")
    return stripped


def search_statement(types: Iterable[str]) -> str:
    """The one SQL statement answering a search for ``types`` (parameters ``q``, ``limit``,
    ``offset``, ``typo_similarity``)."""
    types = list(types)
    ctes = [_PREAMBLE]
    for kind in types:
        ctes += [_MATCHES.format(kind=kind, **_TABLES[kind]), _PAGE.format(kind=kind)]
    selects = [_ROWS[kind] for kind in types] + [_TOTAL.format(kind=kind) for kind in types]
    return "WITH" + ",".join(ctes) + "\n" + "\nUNION ALL".join(selects)


def search_parameters(q: str, limit: int, offset: int) -> dict[str, object]:
    return {
        "q": q,
        "limit": limit,
        "offset": offset,
        "typo_similarity": str(TYPO_SIMILARITY),
        "typo_fallback_below": TYPO_FALLBACK_BELOW,
        "min_prefix": MIN_PREFIX,
    }


@functools.cache
def _compiled(types: tuple[str, ...]) -> TextClause:
    """The statement for these types, built and parsed once (at most seven exist)."""
    return text(search_statement(types))


def search(
    engine: Engine, q: str, types: Iterable[str] = SEARCH_TYPES, limit: int = 20, offset: int = 0
) -> dict[str, ResultPage]:
    """Songs, artists and albums matching ``q``, one page of each requested type.

    Raises:
        ContractError: a bad query, type, limit or offset.
        UnavailableError: PostgreSQL did not answer.
    """
    q = check_query(q)
    types = tuple(types)
    if not 1 <= limit <= MAX_LIMIT:
        raise ContractError(f"limit must be between 1 and {MAX_LIMIT}; got {limit}")
    if not 0 <= offset <= MAX_OFFSET:
        raise ContractError(f"offset must be between 0 and {MAX_OFFSET}; got {offset}")
    statement = _compiled(types)
    with reading(engine) as connection:
        rows = connection.execute(statement, search_parameters(q, limit, offset)).all()
    totals = {row.kind: row.total for row in rows if row.ordinal == 0}
    pages = {kind: ResultPage(total=totals.get(kind, 0), hits=[]) for kind in types}
    for row in sorted((row for row in rows if row.ordinal), key=lambda row: row.ordinal):
        pages[row.kind].hits.append(
            Hit(
                id=row.id,
                name=row.name,
                score=float(row.score),
                artist_id=row.artist_id,
                artist_name=row.artist_name,
                album_id=row.album_id,
                album_title=row.album_title,
            )
        )
    return pages
