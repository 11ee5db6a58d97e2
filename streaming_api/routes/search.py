"""``GET /api/v1/search``: songs, artists and albums by full text, forgiving typos."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from streaming_api.catalog import search as catalog_search
from streaming_api.deps import DbDep, PrincipalDep

router = APIRouter(prefix="/api/v1/search", tags=["search"])


class ArtistRef(BaseModel):
    id: str
    name: str


class AlbumRef(BaseModel):
    id: str
    title: str


class SongHit(BaseModel):
    id: str
    title: str
    artist: ArtistRef
    album: AlbumRef
    score: float = Field(description="Relevance; higher is better. Comparable within a list.")


class ArtistHit(BaseModel):
    id: str
    name: str
    score: float


class AlbumHit(BaseModel):
    id: str
    title: str
    artist: ArtistRef
    score: float


class Paging(BaseModel):
    total: int = Field(description="How many matched in all.")
    limit: int
    offset: int
    next_offset: int | None = Field(description="The `offset` of the next page; null: none.")


class SongResults(Paging):
    hits: list[SongHit]


class ArtistResults(Paging):
    hits: list[ArtistHit]


class AlbumResults(Paging):
    hits: list[AlbumHit]


class SearchResults(BaseModel):
    """One page of each requested type, best first; a type not requested is null."""

    query: str
    songs: SongResults | None = None
    artists: ArtistResults | None = None
    albums: AlbumResults | None = None


def _paging(page: catalog_search.ResultPage, limit: int, offset: int) -> dict:
    following = offset + len(page.hits)
    more = following < page.total and following <= catalog_search.MAX_OFFSET
    return {
        "total": page.total,
        "limit": limit,
        "offset": offset,
        "next_offset": following if more and page.hits else None,
    }


@router.get("", response_model=SearchResults)
async def search(
    principal: PrincipalDep,
    db: DbDep,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=catalog_search.MAX_QUERY_LENGTH,
            pattern=catalog_search.QUERY_PATTERN,
            description="What to look for: words of a title or name; the last word may be "
            'partly typed ("come toget"), small typos are forgiven ("beatels"). Not only '
            "spaces; no control characters.",
        ),
    ],
    type: Annotated[
        str | None,
        Query(
            pattern=catalog_search.TYPES_PATTERN,
            description="Comma list of `song`, `artist`, `album` (or plurals), no spaces; "
            "default all three.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=catalog_search.MAX_LIMIT)] = 20,
    offset: Annotated[int, Query(ge=0, le=catalog_search.MAX_OFFSET)] = 0,
) -> SearchResults:
    """Search the catalog. Ranked by full-text relevance (a match in a song's title counts
    more than in its artist's name, which counts more than in its album's title; accents and
    case are ignored), then by popularity, then by id, so paging is stable. Any token: a
    listener's or the service token."""
    types = catalog_search.parse_types(type)
    pages = await anyio.to_thread.run_sync(catalog_search.search, db, q, types, limit, offset)
    results = SearchResults(query=q)
    if "song" in pages:
        results.songs = SongResults(
            **_paging(pages["song"], limit, offset),
            hits=[
                SongHit(
                    id=hit.id,
                    title=hit.name,
                    artist=ArtistRef(id=hit.artist_id, name=hit.artist_name),
                    album=AlbumRef(id=hit.album_id, title=hit.album_title),
                    score=hit.score,
                )
                for hit in pages["song"].hits
            ],
        )
    if "artist" in pages:
        results.artists = ArtistResults(
            **_paging(pages["artist"], limit, offset),
            hits=[
                ArtistHit(id=hit.id, name=hit.name, score=hit.score) for hit in pages["artist"].hits
            ],
        )
    if "album" in pages:
        results.albums = AlbumResults(
            **_paging(pages["album"], limit, offset),
            hits=[
                AlbumHit(
                    id=hit.id,
                    title=hit.name,
                    artist=ArtistRef(id=hit.artist_id, name=hit.artist_name),
                    score=hit.score,
                )
                for hit in pages["album"].hits
            ],
        )
    return results
