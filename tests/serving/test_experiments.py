"""A/B assignment: stable, proportional, salted, and a zero share gets nobody."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from encore.settings import Settings
from serving.experiments import assign_variant

USERS = [f"user-{i}" for i in range(20_000)]


def with_split(split: dict[str, float], salt: str = "test-salt") -> Settings:
    settings = Settings()
    return settings.model_copy(
        update={"serving": settings.serving.model_copy(update={"ab_split": split, "ab_salt": salt})}
    )


def shares(settings: Settings) -> dict[str, float]:
    counts = Counter(assign_variant(settings, user) for user in USERS)
    return {alias: count / len(USERS) for alias, count in counts.items()}


def test_the_same_listener_gets_the_same_variant_on_every_call() -> None:
    settings = with_split({"champion": 0.5, "challenger": 0.5})
    first = [assign_variant(settings, user) for user in USERS[:500]]
    again = [assign_variant(settings, user) for user in USERS[:500]]
    assert first == again
    assert set(first) == {"champion", "challenger"}


def test_another_process_assigns_the_same_variants() -> None:
    settings = with_split({"champion": 0.5, "challenger": 0.5})
    here = [assign_variant(settings, user) for user in USERS[:200]]
    # a fresh interpreter has another hash seed: the assignment must not depend on it
    code = (
        "from encore.settings import Settings\n"
        "from serving.experiments import assign_variant\n"
        "s = Settings()\n"
        "s = s.model_copy(update={'serving': s.serving.model_copy(update={"
        "'ab_split': {'champion': 0.5, 'challenger': 0.5}, 'ab_salt': 'test-salt'})})\n"
        "print(','.join(assign_variant(s, f'user-{i}') for i in range(200)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip().split(",") == here


@pytest.mark.parametrize(
    "split",
    [
        {"champion": 0.5, "challenger": 0.5},
        {"champion": 0.9, "challenger": 0.1},
        {"champion": 2, "challenger": 1, "explorer": 1},  # weights, normalised
    ],
)
def test_shares_follow_the_split(split: dict[str, float]) -> None:
    observed = shares(with_split(split))
    total = sum(split.values())
    for alias, weight in split.items():
        expected = weight / total
        # binomial standard deviation over 20k listeners is at most 0.0035: 4 sigma
        assert abs(observed.get(alias, 0.0) - expected) < 0.015, (alias, observed)


def test_a_new_salt_reshuffles_listeners() -> None:
    split = {"champion": 0.5, "challenger": 0.5}
    first, second = with_split(split, "experiment-1"), with_split(split, "experiment-2")
    old = [assign_variant(first, user) for user in USERS]
    new = [assign_variant(second, user) for user in USERS]
    moved = sum(a != b for a, b in zip(old, new, strict=True)) / len(USERS)
    # independent halves: about half the listeners change side
    assert 0.45 < moved < 0.55


def test_a_zero_share_gets_nobody() -> None:
    observed = shares(with_split({"champion": 1.0, "challenger": 0.0}))
    assert observed == {"champion": 1.0}


def test_the_default_split_serves_everyone_the_champion() -> None:
    settings = Settings()
    assert {assign_variant(settings, user) for user in USERS[:1000]} == {"champion"}


def test_an_alias_that_cannot_be_recorded_in_play_events_is_refused() -> None:
    from encore.events import VARIANT_MAX_CHARS

    for alias in ("my alias", "x" * (VARIANT_MAX_CHARS + 1), "champion;1"):
        with pytest.raises(ValueError, match="recorded as a play event's variant"):
            Settings(serving={"ab_split": {"champion": 1.0, alias: 1.0}})
    assert Settings(serving={"ab_split": {"champion": 1, "challenger-2": 1}}).serving.ab_split
