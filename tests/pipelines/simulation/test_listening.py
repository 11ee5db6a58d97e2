"""The listening model: determinism, realism, the HetRec population (no services)."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import typer

from encore.db import ids
from encore.errors import ConfigurationError, DatasetError
from encore.events import PlayEventV1
from pipelines.simulation import (
    Catalog,
    CatalogEmptyError,
    CatalogSong,
    SimulationConfig,
    generate_events,
)
from pipelines.simulation.cli import parse_duration
from pipelines.simulation.population import COUNTRIES
from tests.pipelines.simulation.catalogs import synthetic_catalog

HOUR = SimulationConfig(seed=7, users=3000, duration=timedelta(hours=1))
DAY = SimulationConfig(seed=3, users=400, duration=timedelta(days=1))
CATALOG = synthetic_catalog(artists=500)


@pytest.fixture(scope="module")
def hour() -> list[dict]:
    return list(generate_events(HOUR, CATALOG))


@pytest.fixture(scope="module")
def day() -> list[dict]:
    return list(generate_events(DAY, synthetic_catalog(artists=300)))


def test_same_seed_same_events_other_seed_other_events(hour: list[dict]) -> None:
    assert list(generate_events(HOUR, CATALOG)) == hour
    other = list(generate_events(SimulationConfig(**{**HOUR.__dict__, "seed": 8}), CATALOG))
    assert {e["event_id"] for e in other}.isdisjoint({e["event_id"] for e in hour})


def test_another_hour_with_the_same_seed_has_other_event_ids(hour: list[dict]) -> None:
    """The demo simulates the last hour with one seed on every run: its events must not
    collide with an earlier run's, or the lake would de-duplicate them away."""
    later = SimulationConfig(**{**HOUR.__dict__, "start": HOUR.start + HOUR.duration})
    events = list(generate_events(later, CATALOG))
    assert events and {e["event_id"] for e in events}.isdisjoint({e["event_id"] for e in hour})


def test_events_follow_the_contract_exactly_and_in_time_order(hour: list[dict]) -> None:
    assert len(hour) > 1000
    for record in hour:
        assert PlayEventV1.model_validate(record).to_record() == record
    ends = [datetime.fromisoformat(e["end_time"]) for e in hour]
    assert ends == sorted(ends)
    start, end = HOUR.start, HOUR.start + HOUR.duration
    assert all(start <= datetime.fromisoformat(e["start_time"]) for e in hour)
    assert ends[-1] <= end
    assert len({e["event_id"] for e in hour}) == len(hour)


def test_ties_in_time_keep_a_deterministic_order() -> None:
    # with 20,000 listeners, plays of different listeners end in the same millisecond
    config = SimulationConfig(seed=11, users=20_000, duration=timedelta(hours=6), max_events=30_000)
    first = list(generate_events(config, CATALOG))
    assert len(first) == 30_000 and first == list(generate_events(config, CATALOG))


def test_song_popularity_has_a_zipf_head(hour: list[dict]) -> None:
    plays = sorted(Counter(e["song_id"] for e in hour).values(), reverse=True)
    top = sum(plays[: max(1, len(plays) // 20)]) / sum(plays)
    assert top > 0.25, f"top 5% of songs have only {top:.0%} of plays"
    assert plays[0] > 5 * plays[len(plays) // 2]
    assert set(e["song_id"] for e in hour) <= set(CATALOG.song_ids)


def test_event_mix_and_skips_are_realistic(hour: list[dict]) -> None:
    kinds = Counter(e["event_type"] for e in hour)
    share = {k: v / len(hour) for k, v in kinds.items()}
    assert 0.15 <= share["skip"] <= 0.40
    assert share["complete"] > 0.4 and 0.02 < share["play"] < 0.2 and 0 < share["like"] < 0.08
    skips = [e["ms_played"] for e in hour if e["event_type"] == "skip"]
    completes = [e["ms_played"] for e in hour if e["event_type"] == "complete"]
    assert sorted(skips)[len(skips) // 2] < 15_000 < min(completes)
    assert max(skips) < 30_000


def test_devices_and_countries_are_skewed(hour: list[dict]) -> None:
    devices = Counter(e["device_type"] for e in hour).most_common()
    countries = Counter(e["country_code"] for e in hour).most_common()
    assert devices[0][0] == "mobile" and devices[0][1] > 0.4 * len(hour)
    assert countries[0][0] == "US" and len(countries) > 10


def test_sessions_are_songs_back_to_back_then_idle(day: list[dict]) -> None:
    by_user = defaultdict(list)
    for e in day:
        if e["event_type"] != "like":
            by_user[e["user_id"]].append(e)
    gaps = []
    for plays in by_user.values():
        for before, after in itertools.pairwise(plays):
            gap = datetime.fromisoformat(after["start_time"]) - datetime.fromisoformat(
                before["end_time"]
            )
            gaps.append(gap.total_seconds())
    assert min(gaps) >= 0, "a listener plays two songs at once"
    back_to_back = sum(g <= 5 for g in gaps) / len(gaps)
    idle = sum(g >= 600 for g in gaps) / len(gaps)
    assert back_to_back > 0.6 and idle > 0.03, (back_to_back, idle)


def test_listening_follows_local_time_of_day(day: list[dict]) -> None:
    by_local_hour = Counter(
        (datetime.fromisoformat(e["end_time"]).hour + COUNTRIES[e["country_code"]][1]) % 24
        for e in day
    )
    night = sum(by_local_hour[h] for h in (2, 3, 4, 5))
    evening = sum(by_local_hour[h] for h in (18, 19, 20, 21))
    assert evening > 4 * night


def write_hetrec(root: Path, rows: list[tuple[int, int, int]], names: dict[int, str]) -> Path:
    folder = root / "hetrec2011-lastfm-2k"
    folder.mkdir(parents=True)
    lines = ["userID\tartistID\tweight"] + [f"{u}\t{a}\t{w}" for u, a, w in rows]
    (folder / "user_artists.dat").write_text("\r\n".join(lines) + "\r\n")
    artists = ["id\tname\turl\tpictureURL"] + [f"{a}\t{n}\t\t" for a, n in names.items()]
    (folder / "artists.dat").write_text("\n".join(artists) + "\n")
    return root


def song_of(artist: str, k: int) -> str:
    return ids.song_id(ids.album_id(ids.artist_id(artist), "Hits"), f"Song {k}")


def catalog_of(artists: list[str], songs_each: int = 5) -> Catalog:
    """Every artist with a few worldwide songs (and one artist HetRec does not know)."""
    return Catalog(
        [
            CatalogSong(song_of(name, k), ids.artist_id(name), "rock", 200_000, COUNTRIES, 1 / k)
            for name in [*artists, "Nobody Knows"]
            for k in range(1, songs_each + 1)
        ]
    )


NAMES = {51: "Duran Duran", 52: "Morcheeba", 89: "Lady Gaga", 7: "Björk", 99: "Not In Catalog"}


def test_hetrec_counts_become_a_proportional_stream(tmp_path: Path) -> None:
    rows = [(2, 51, 9000), (2, 52, 1000), (3, 51, 1500), (3, 89, 1500), (4, 7, 1000), (5, 99, 50)]
    catalog = catalog_of([n for n in NAMES.values() if n != "Not In Catalog"])
    config = SimulationConfig(
        seed=1,
        dataset="hetrec-lastfm-2k",
        dataset_root=write_hetrec(tmp_path, rows, NAMES),
        duration=timedelta(days=100),
    )
    events = list(generate_events(config, catalog))
    for record in events[:500]:
        assert PlayEventV1.model_validate(record).to_record() == record
    # u5 listened only to an artist the catalog lacks: not simulated
    assert {e["user_id"] for e in events} == {"u2", "u3", "u4"}
    artist = {song_of(n, k): n for n in NAMES.values() for k in range(1, 6)}
    pairs = Counter((e["user_id"], artist[e["song_id"]]) for e in events)
    assert set(pairs) == {
        ("u2", "Duran Duran"), ("u2", "Morcheeba"), ("u3", "Duran Duran"), ("u3", "Lady Gaga"),
        ("u4", "Björk"),
    }  # fmt: skip
    # within a user, artists in proportion to play counts
    assert 7 < pairs[("u2", "Duran Duran")] / pairs[("u2", "Morcheeba")] < 11.5
    assert 0.75 < pairs[("u3", "Duran Duran")] / pairs[("u3", "Lady Gaga")] < 1.33
    # across users, listening in proportion to total counts (10000 : 3000 : 1000)
    per_user = Counter(e["user_id"] for e in events)
    assert 2.3 < per_user["u2"] / per_user["u3"] < 4.5
    assert 2 < per_user["u3"] / per_user["u4"] < 4.5


def test_hetrec_with_a_catalog_of_other_artists_says_what_to_load(tmp_path: Path) -> None:
    root = write_hetrec(tmp_path, [(2, 51, 10)], NAMES)
    config = SimulationConfig(dataset="hetrec-lastfm-2k", dataset_root=root)
    with pytest.raises(DatasetError, match="--source hetrec-lastfm-2k"):
        list(generate_events(config, catalog_of(["Someone Else"])))


def test_hetrec_missing_or_malformed_file_names_it(tmp_path: Path) -> None:
    config = SimulationConfig(dataset="hetrec-lastfm-2k", dataset_root=tmp_path)
    with pytest.raises(DatasetError, match=r"user_artists\.dat"):
        list(generate_events(config, CATALOG))
    (tmp_path / "hetrec2011-lastfm-2k").mkdir()
    (tmp_path / "hetrec2011-lastfm-2k" / "user_artists.dat").write_text(
        "userID\tartistID\tweight\n2\tx\n"
    )
    with pytest.raises(DatasetError, match=":2"):
        list(generate_events(config, CATALOG))


def test_an_empty_catalog_says_to_load_one() -> None:
    with pytest.raises(
        CatalogEmptyError, match="no songs in the catalog: run `encore catalog load`"
    ):
        Catalog([])


def test_config_and_duration_parsing() -> None:
    with pytest.raises(ConfigurationError):
        SimulationConfig(start=datetime(2026, 1, 1))
    with pytest.raises(ConfigurationError):
        SimulationConfig(dataset="spotify-million")
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("2d") == timedelta(days=2)
    assert parse_duration("45s") == timedelta(seconds=45)
    assert parse_duration("2.5m") == timedelta(seconds=150)
    with pytest.raises(typer.BadParameter):
        parse_duration("1h30")
    assert len(list(generate_events(SimulationConfig(users=500, max_events=50), CATALOG))) == 50


def test_plays_are_catalog_songs_licensed_where_the_listener_is(day: list[dict]) -> None:
    catalog = synthetic_catalog(artists=300)
    index = {song: i for i, song in enumerate(catalog.song_ids)}
    restricted = [i for i, t in enumerate(catalog.territories) if t is not None]
    assert len(restricted) > 0.03 * len(catalog)  # a test of licensing needs some
    for e in day:
        assert catalog.licensed(index[e["song_id"]], e["country_code"]), e
    # restricted songs are still played, by listeners where they are licensed
    assert any(catalog.territories[index[e["song_id"]]] is not None for e in day)


def test_durations_come_from_the_catalog(hour: list[dict]) -> None:
    length = dict(zip(CATALOG.song_ids, CATALOG.duration_ms, strict=True))
    completes = [e for e in hour if e["event_type"] == "complete"]
    assert completes and all(e["ms_played"] == length[e["song_id"]] for e in completes)
    assert all(e["ms_played"] < length[e["song_id"]] for e in hour if e["event_type"] == "play")


def test_skips_follow_dislikes() -> None:
    from pipelines.simulation.population import (
        DISLIKED,
        FAVOURITE_ARTIST,
        FAVOURITE_GENRE,
        build_population,
    )

    config = SimulationConfig(seed=5, users=600, duration=timedelta(days=2))
    listeners = {x.user_id: x for x in build_population(config, CATALOG)}
    index = {song: i for i, song in enumerate(CATALOG.song_ids)}
    plays: Counter[str] = Counter()
    skips: Counter[str] = Counter()
    for e in generate_events(config, CATALOG):
        if e["event_type"] == "like":
            continue
        # tastes as at the start (drift is slow over two days)
        affinity = listeners[e["user_id"]].affinity(CATALOG, index[e["song_id"]])
        plays[affinity] += 1
        skips[affinity] += e["event_type"] == "skip"
    rate = {k: skips[k] / plays[k] for k in plays}
    assert plays[DISLIKED] > 100 and plays[FAVOURITE_ARTIST] > 1000, plays
    assert rate[DISLIKED] > 4 * rate[FAVOURITE_ARTIST], rate
    assert rate[DISLIKED] > 2.5 * rate[FAVOURITE_GENRE], rate
    assert plays[FAVOURITE_ARTIST] > 0.4 * sum(plays.values())  # tastes dominate


def test_listeners_who_turned_explicit_off_hear_none() -> None:
    from pipelines.simulation.population import build_population

    config = SimulationConfig(seed=2, users=1500, duration=timedelta(hours=12))
    strict = {x.user_id for x in build_population(config, CATALOG) if not x.allow_explicit}
    explicit = {s for s, e in zip(CATALOG.song_ids, CATALOG.explicit, strict=True) if e}
    events = list(generate_events(config, CATALOG))
    assert 0.04 * 1500 < len(strict) < 0.13 * 1500
    assert not [e for e in events if e["user_id"] in strict and e["song_id"] in explicit]
    assert any(e["song_id"] in explicit for e in events)


def test_tastes_drift_slowly() -> None:
    import random

    from pipelines.simulation.population import build_population

    listener = build_population(SimulationConfig(seed=4, users=1), CATALOG)[0]
    first = dict(listener.artist_weights)
    rng = random.Random(0)
    listener.drift(CATALOG, rng)
    after_a_day = listener.artist_weights
    assert set(after_a_day) == set(first)  # one day rarely brings a new favourite (seeded)
    assert all(0.6 < after_a_day[a] / first[a] < 1.6 for a in first)
    for _ in range(120):
        listener.drift(CATALOG, rng)
    assert set(listener.artist_weights) != set(first)  # months bring new favourites
