"""``GET /api/v1/search`` against real PostgreSQL: ranking, accents, typos, prefixes, paging,
type filters, authentication, parameter checks, one statement per request, index use.

The rows are hand-made here with ``encore.db.ids`` in a database of this module's own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text

from encore.db import create_engine
from encore.errors import ContractError
from encore.settings import Settings
from streaming_api.app import create_app
from streaming_api.catalog import search as catalog_search
from streaming_api.catalog.search import SEARCH_TYPES, search_parameters, search_statement
from tests.conftest import fresh_database
from tests.streaming_api.test_catalog_reads import add_album, add_artist, add_song

pytestmark = pytest.mark.integration

LOVE_SONGS = 23  # equal score and popularity: only the id orders them


@pytest.fixture(scope="module")
def catalog(platform: Settings) -> Iterator[tuple[Settings, dict[str, str]]]:
    settings = fresh_database(platform, "catalog_search")
    engine = create_engine(settings)
    with engine.begin() as connection:
        beatles = add_artist(connection, "The Beatles", popularity=0.9)
        abbey = add_album(connection, beatles, "Abbey Road")
        come = add_song(connection, beatles, abbey, "Come Together", popularity=0.5)
        add_song(connection, beatles, abbey, "Something", popularity=0.4)
        beyonce = add_artist(connection, "Beyoncé")
        lemonade = add_album(connection, beyonce, "Lemonade")
        formation = add_song(connection, beyonce, lemonade, "Formation")
        abba = add_artist(connection, "ABBA")
        # "together" only in the album's title: must rank below the title match, even
        # though this song is more popular
        forever = add_album(connection, abba, "Together Forever")
        waterloo = add_song(connection, abba, forever, "Waterloo", popularity=0.99)
        lovers = add_artist(connection, "Lovers Club")
        hits = add_album(connection, lovers, "Greatest Hits")
        for number in range(LOVE_SONGS):
            add_song(connection, lovers, hits, f"Love {number:02d}", popularity=0.1)
        weather = add_artist(connection, "Weather Club")
        skies = add_album(connection, weather, "Skies")
        # a typo match of "love" (word similarity 0.6): left out while words match plenty
        add_song(connection, weather, skies, "Glove Box", popularity=0.1)
        for title, popularity in [("Sunday Morning", 0.9), ("Sun", 0.1), ("Sunshine", 0.8)]:
            add_song(connection, weather, skies, title, popularity=popularity)
    engine.dispose()
    yield (
        settings,
        {
            "beatles": beatles,
            "come": come,
            "beyonce": beyonce,
            "formation": formation,
            "waterloo": waterloo,
            "abbey": abbey,
        },
    )


@pytest.fixture(scope="module")
def client(catalog: tuple[Settings, dict[str, str]]) -> Iterator[TestClient]:
    settings, _ = catalog
    auth = {"Authorization": f"Bearer {settings.api.service_token.get_secret_value()}"}
    with TestClient(create_app(settings), headers=auth) as test_client:
        yield test_client


def search(client: TestClient, q: str, **params: object) -> dict:
    answer = client.get("/api/v1/search", params={"q": q, **params})
    assert answer.status_code == 200, answer.text
    return answer.json()


def song_ids(results: dict) -> list[str]:
    return [hit["id"] for hit in results["songs"]["hits"]]


def test_a_title_match_ranks_above_an_album_only_match(client, catalog) -> None:
    _, known = catalog
    results = search(client, "together", type="song")
    assert song_ids(results) == [known["come"], known["waterloo"]]
    first, second = results["songs"]["hits"]
    assert first["score"] > second["score"]
    assert first["artist"] == {"id": known["beatles"], "name": "The Beatles"}
    assert first["album"] == {"id": known["abbey"], "title": "Abbey Road"}
    assert second["album"]["title"] == "Together Forever"


def test_an_exact_title_ranks_first_then_whole_words_then_prefixes(client) -> None:
    def titles(q: str) -> list[str]:
        return [hit["title"] for hit in search(client, q, type="song")["songs"]["hits"]]

    # "Sunday Morning" and "Sunshine" are more popular, but "sun" is the whole title
    assert titles("sun") == ["Sun", "Sunday Morning", "Sunshine"]
    assert titles("sund")[0] == "Sunday Morning"  # then typo matches: few matched "sund"


def test_accents_and_case_are_ignored(client, catalog) -> None:
    _, known = catalog
    results = search(client, "BEYONCE")
    assert [hit["id"] for hit in results["artists"]["hits"]] == [known["beyonce"]]
    assert results["artists"]["hits"][0]["name"] == "Beyoncé"
    assert song_ids(results) == [known["formation"]]  # by its artist's name (weight B)
    assert song_ids(search(client, "beyoncé formation")) == [known["formation"]]


def test_a_typo_still_finds_the_artist(client, catalog) -> None:
    _, known = catalog
    results = search(client, "beatels")
    assert [hit["id"] for hit in results["artists"]["hits"]] == [known["beatles"]]
    assert results["artists"]["hits"][0]["name"] == "The Beatles"
    assert search(client, "qwxzvj")["artists"]["hits"] == []
    typo = search(client, "formaton", type="song")["songs"]
    assert [hit["id"] for hit in typo["hits"]] == [known["formation"]]


def test_the_last_word_matches_as_a_prefix_while_typing(client, catalog) -> None:
    _, known = catalog
    assert song_ids(search(client, "come toget", type="song"))[0] == known["come"]
    # every word must match, the last as a prefix: "some" is in "Something" only
    typed = search(client, "beatles some", type="song")["songs"]
    assert [hit["title"] for hit in typed["hits"]] == ["Something"]


def test_pages_are_stable_and_do_not_overlap(client) -> None:
    everything = search(client, "love", type="song", limit=50)
    assert everything["songs"]["total"] == LOVE_SONGS  # "Glove Box" is only a typo match
    ordered = song_ids(everything)
    assert ordered == sorted(ordered)  # equal score and popularity: tie broken by id
    assert search(client, "love", type="song", limit=50) == everything

    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = search(client, "love", type="song", limit=5, offset=offset)["songs"]
        assert page["total"] == LOVE_SONGS and page["offset"] == offset
        seen += [hit["id"] for hit in page["hits"]]
        offset = page["next_offset"]
    assert seen == ordered
    beyond = search(client, "love", type="song", offset=100)["songs"]
    assert beyond["hits"] == [] and beyond["total"] == LOVE_SONGS
    assert beyond["next_offset"] is None


def test_the_type_filter_returns_only_the_requested_types(client, catalog) -> None:
    _, known = catalog
    only_artists = search(client, "beatles", type="artist")
    assert only_artists["songs"] is None and only_artists["albums"] is None
    assert only_artists["artists"]["hits"][0]["id"] == known["beatles"]
    both = search(client, "abbey road", type="albums,song")
    assert both["artists"] is None
    assert both["albums"]["hits"][0]["title"] == "Abbey Road"
    assert both["albums"]["hits"][0]["artist"]["name"] == "The Beatles"
    assert set(song_ids(both)) >= {known["come"]}  # by album title (weight C)
    every = search(client, "beatles")
    assert all(every[key] is not None for key in ("songs", "artists", "albums"))


def test_search_needs_a_token(catalog) -> None:
    settings, _ = catalog
    with TestClient(create_app(settings)) as anonymous:
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            answer = anonymous.get("/api/v1/search", params={"q": "beatles"}, headers=headers)
            assert answer.status_code == 401
            assert answer.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"q": ""}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"q": "come\x00together"}, "q"),
        ({"q": "come\ntogether"}, "q"),
        ({"q": "come", "type": "song,playlist"}, "type"),
        ({"q": "come", "type": ""}, "type"),
        ({"q": "come", "limit": 0}, "limit"),
        ({"q": "come", "limit": 51}, "limit"),
        ({"q": "come", "offset": -1}, "offset"),
        ({"q": "come", "offset": 1001}, "offset"),
        ({"q": "come", "limit": "ten"}, "limit"),
        ({}, "q"),
    ],
)
def test_bad_parameters_are_422s_naming_the_parameter(client, params: dict, field: str) -> None:
    answer = client.get("/api/v1/search", params=params)
    assert answer.status_code == 422
    [error] = answer.json()["errors"]
    assert error["field"] == field and error["reason"]


def test_the_library_refuses_what_the_route_schema_refuses(catalog) -> None:
    settings, _ = catalog
    engine = create_engine(settings)
    try:
        for q in ("   ", "come\x00together", "x" * 201):
            with pytest.raises(ContractError):
                catalog_search.search(engine, q)
        for types in ("song,playlist", "songs,tracks"):
            with pytest.raises(ContractError, match="song, artist, album"):
                catalog_search.parse_types(types)
    finally:
        engine.dispose()


def test_one_sql_statement_per_search(client) -> None:
    statements: list[str] = []
    engine = client.app.state.db

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    search(client, "warm the pool up")
    event.listen(engine, "before_cursor_execute", record)
    try:
        search(client, "come toget", limit=3)
        assert len(statements) == 1
        search(client, "beatels", type="artist")
        assert len(statements) == 2
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_the_statement_can_use_the_full_text_and_trigram_indexes(catalog) -> None:
    """At 1M songs the planner picks the GIN indexes on its own; on this small table it
    would scan, so scanning is priced out to show the statement is indexable at all."""
    settings, _ = catalog
    engine = create_engine(settings)
    with engine.connect() as connection:
        connection.execute(text("SET enable_seqscan = off"))
        plan = "\n".join(
            row[0]
            for row in connection.execute(
                text("EXPLAIN " + search_statement(SEARCH_TYPES)),
                search_parameters("come toget", 20, 0),
            )
        )
    engine.dispose()
    for index in (
        "songs_search",
        "songs_title_trgm",
        "artists_search",
        "artists_name_trgm",
        "albums_search",
        "albums_title_trgm",
    ):
        assert f"Bitmap Index Scan on {index}" in plan, plan
    assert "Seq Scan" not in plan
