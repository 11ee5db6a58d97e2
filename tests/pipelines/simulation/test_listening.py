"""The listening model: determinism, realism, the HetRec population (no services)."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import typer

from encore.errors import ConfigurationError, DatasetError
from encore.events import PlayEventV1
from pipelines.simulation import SimulationConfig, generate_events
from pipelines.simulation.cli import parse_duration
from pipelines.simulation.population import COUNTRIES

HOUR = SimulationConfig(seed=7, users=3000, artists=500, duration=timedelta(hours=1))
DAY = SimulationConfig(seed=3, users=400, artists=300, duration=timedelta(days=1))


@pytest.fixture(scope="module")
def hour() -> list[dict]:
    return list(generate_events(HOUR))


@pytest.fixture(scope="module")
def day() -> list[dict]:
    return list(generate_events(DAY))


def test_same_seed_same_events_other_seed_other_events(hour: list[dict]) -> None:
    assert list(generate_events(HOUR)) == hour
    other = list(generate_events(SimulationConfig(**{**HOUR.__dict__, "seed": 8})))
    assert {e["event_id"] for e in other}.isdisjoint({e["event_id"] for e in hour})


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
    first = list(generate_events(config))
    assert len(first) == 30_000 and first == list(generate_events(config))


def test_song_popularity_has_a_zipf_head(hour: list[dict]) -> None:
    plays = sorted(Counter(e["song_id"] for e in hour).values(), reverse=True)
    top = sum(plays[: max(1, len(plays) // 20)]) / sum(plays)
    assert top > 0.25, f"top 5% of songs have only {top:.0%} of plays"
    assert plays[0] > 5 * plays[len(plays) // 2]
    assert all(e["song_id"].startswith("a") and "-s" in e["song_id"] for e in hour)


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


def write_hetrec(root: Path, rows: list[tuple[int, int, int]]) -> Path:
    folder = root / "hetrec2011-lastfm-2k"
    folder.mkdir(parents=True)
    lines = ["userID\tartistID\tweight"] + [f"{u}\t{a}\t{w}" for u, a, w in rows]
    (folder / "user_artists.dat").write_text("\r\n".join(lines) + "\r\n")
    return root


def test_hetrec_counts_become_a_proportional_stream(tmp_path: Path) -> None:
    rows = [(2, 51, 9000), (2, 52, 1000), (3, 51, 1500), (3, 89, 1500), (4, 7, 1000)]
    config = SimulationConfig(
        seed=1,
        dataset="hetrec-lastfm-2k",
        dataset_root=write_hetrec(tmp_path, rows),
        duration=timedelta(days=100),
    )
    events = list(generate_events(config))
    for record in events[:500]:
        assert PlayEventV1.model_validate(record).to_record() == record
    assert {e["user_id"] for e in events} == {"u2", "u3", "u4"}
    pairs = Counter((e["user_id"], e["song_id"].split("-s")[0]) for e in events)
    assert set(pairs) == {("u2", "a51"), ("u2", "a52"), ("u3", "a51"), ("u3", "a89"), ("u4", "a7")}
    # within a user, artists in proportion to play counts
    assert 7 < pairs[("u2", "a51")] / pairs[("u2", "a52")] < 11.5
    assert 0.75 < pairs[("u3", "a51")] / pairs[("u3", "a89")] < 1.33
    # across users, listening in proportion to total counts (10000 : 3000 : 1000)
    per_user = Counter(e["user_id"] for e in events)
    assert 2.3 < per_user["u2"] / per_user["u3"] < 4.5
    assert 2 < per_user["u3"] / per_user["u4"] < 4.5


def test_hetrec_missing_or_malformed_file_names_it(tmp_path: Path) -> None:
    config = SimulationConfig(dataset="hetrec-lastfm-2k", dataset_root=tmp_path)
    with pytest.raises(DatasetError, match=r"user_artists\.dat"):
        list(generate_events(config))
    (tmp_path / "hetrec2011-lastfm-2k").mkdir()
    (tmp_path / "hetrec2011-lastfm-2k" / "user_artists.dat").write_text(
        "userID\tartistID\tweight\n2\tx\n"
    )
    with pytest.raises(DatasetError, match=":2"):
        list(generate_events(config))


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
    assert len(list(generate_events(SimulationConfig(users=500, max_events=50)))) == 50
