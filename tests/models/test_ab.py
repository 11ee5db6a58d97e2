"""The A/B report over silver.plays rows written here, against hand-computed statistics
(no services: a local Delta table through delta-rs)."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import typer
from deltalake import write_deltalake
from scipy import stats
from typer.testing import CliRunner

from encore.errors import NotFoundError
from encore.settings import Settings, get_settings
from encore.tables import SILVER_PLAYS
from models.ab import _rate_difference, ab_report, listener_table
from serving.ab import register_ab_commands
from tests.pipelines.lake.conftest import write_rows

DAY = date(2026, 11, 25)
Z = stats.norm.ppf(0.975)


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, lake={"root": str(tmp_path / "lake")})


_ids = iter(range(10**9))


def play(
    user: str,
    variant: str | None,
    *,
    skipped: bool = False,
    completed: bool = False,
    event_type: str | None = None,
    day: date = DAY,
) -> dict[str, Any]:
    start = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    kind = event_type or ("skip" if skipped else "complete" if completed else "play")
    return {
        "event_id": f"e-{next(_ids)}",
        "user_id": user,
        "song_id": "s-1",
        "start_time": start,
        "end_time": start + timedelta(minutes=3),
        "ms_played": 0 if kind == "like" else 180_000,
        "event_type": kind,
        "device_type": "mobile",
        "country_code": "SE",
        "event_date": day,
        "ingested_at": start,
        "song_known": True,
        "user_known": True,
        "completed": completed,
        "skipped": skipped,
        "local_hour": 13,
        "variant": variant,
    }


def listener(user: str, variant: str, plays: int, skips: int, completes: int) -> list[dict]:
    """``plays`` plays: the first ``skips`` skipped, the next ``completes`` completed."""
    assert skips + completes <= plays
    return [
        play(user, variant, skipped=i < skips, completed=skips <= i < skips + completes)
        for i in range(plays)
    ]


# per listener: (plays, skips, completes)
CHAMPION = {"u1": (3, 1, 2), "u2": (1, 0, 1), "u3": (2, 2, 0), "u4": (6, 1, 4)}
CHALLENGER = {"u5": (4, 1, 3), "u6": (2, 0, 2), "u7": (5, 3, 1)}


def small_experiment() -> list[dict]:
    rows = [r for u, c in CHAMPION.items() for r in listener(u, "champion", *c)]
    rows += [r for u, c in CHALLENGER.items() for r in listener(u, "challenger", *c)]
    # none of these counts: a like, a play without variant, plays outside --from/--to
    rows.append(play("u1", "champion", event_type="like"))
    rows.append(play("u8", None))
    rows.append(play("u9", "challenger", day=DAY - timedelta(days=3)))
    rows.append(play("u9", "challenger", day=DAY + timedelta(days=3)))
    return rows


def mean_interval(values: list[int]) -> tuple[float, float, float]:
    m, mean = len(values), sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (m - 1))
    half = stats.t.ppf(0.975, m - 1) * sd / math.sqrt(m)
    return mean, mean - half, mean + half


def rate_and_variance(listeners: dict, column: int) -> tuple[float, float]:
    """Pooled rate and its listener-clustered (delta-method) variance, written out."""
    plays = [c[0] for c in listeners.values()]
    hits = [c[column] for c in listeners.values()]
    m, rate, nbar = len(plays), sum(hits) / sum(plays), sum(plays) / len(plays)
    residuals = sum((y - rate * n) ** 2 for y, n in zip(hits, plays, strict=True))
    return rate, residuals / (m * (m - 1) * nbar**2)


def test_each_variant_against_hand_computed_statistics(settings: Settings) -> None:
    write_rows(settings, SILVER_PLAYS, small_experiment())
    report = ab_report(settings, DAY - timedelta(days=1), DAY + timedelta(days=1))
    assert report.baseline == "champion"
    assert report.shared_listeners == 0
    by_name = {v.variant: v for v in report.variants}
    assert set(by_name) == {"champion", "challenger"}
    for name, listeners in (("champion", CHAMPION), ("challenger", CHALLENGER)):
        got = by_name[name]
        assert got.listeners == len(listeners)
        assert got.plays == sum(c[0] for c in listeners.values())
        mean, low, high = mean_interval([c[0] for c in listeners.values()])
        assert (got.plays_per_listener.value, got.plays_per_listener.low) == pytest.approx(
            (mean, low)
        )
        assert got.plays_per_listener.high == pytest.approx(high)
        for estimate, column in ((got.skip_rate, 1), (got.completion_rate, 2)):
            rate, variance = rate_and_variance(listeners, column)
            half = Z * math.sqrt(variance)
            assert (estimate.value, estimate.low, estimate.high) == pytest.approx(
                (rate, rate - half, rate + half)
            )

    [difference] = report.differences
    assert (difference.variant, difference.baseline) == ("challenger", "champion")
    a = [c[0] for c in CHALLENGER.values()]
    b = [c[0] for c in CHAMPION.values()]
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    diff = np.mean(a) - np.mean(b)
    ppl = difference.plays_per_listener
    assert (ppl.value, ppl.low, ppl.high) == pytest.approx((diff, diff - half, diff + half))
    for estimate, column in ((difference.skip_rate, 1), (difference.completion_rate, 2)):
        rate_a, var_a = rate_and_variance(CHALLENGER, column)
        rate_b, var_b = rate_and_variance(CHAMPION, column)
        half = Z * math.sqrt(var_a + var_b)
        assert (estimate.value, estimate.low, estimate.high) == pytest.approx(
            (rate_a - rate_b, rate_a - rate_b - half, rate_a - rate_b + half)
        )


def test_the_date_range_selects_event_days(settings: Settings) -> None:
    write_rows(settings, SILVER_PLAYS, small_experiment())
    whole = {v.variant: v.plays for v in ab_report(settings, None, None).variants}
    assert whole["challenger"] == sum(c[0] for c in CHALLENGER.values()) + 2
    later = ab_report(settings, DAY + timedelta(days=1), None)
    assert [(v.variant, v.plays, v.listeners) for v in later.variants] == [("challenger", 1, 1)]
    assert later.differences == []


def test_the_listener_table_holds_the_rows_the_report_counts(settings: Settings) -> None:
    write_rows(settings, SILVER_PLAYS, small_experiment())
    table = listener_table(settings, DAY - timedelta(days=1), DAY + timedelta(days=1))
    expected = sorted(
        [("challenger", user, *counts) for user, counts in CHALLENGER.items()]
        + [("champion", user, *counts) for user, counts in CHAMPION.items()]
    )
    columns = ["variant", "user_id", "plays", "skips", "completes"]
    assert table.select(columns).rows() == expected
    with pytest.raises(NotFoundError):
        listener_table(settings, DAY + timedelta(days=10), None)


TRUE = {  # variant -> (mean plays per listener, skip probability, completion probability)
    "champion": (6.0, 0.30, 0.55),
    "challenger": (8.0, 0.22, 0.65),
}


def simulated(listeners: int, seed: int) -> list[dict]:
    """Listeners with their own taste around the variant's rates (plays are clustered)."""
    rng = random.Random(seed)
    rows = []
    for i in range(listeners):
        variant = "champion" if i % 2 else "challenger"
        mean_plays, skip, complete = TRUE[variant]
        plays = 1 + int(rng.expovariate(1 / (mean_plays - 1)))
        # a listener's own skip tendency, mean `skip`: heterogeneous listeners
        own_skip = min(max(rng.gauss(skip, 0.1), 0.0), 1.0)
        for _ in range(plays):
            skipped = rng.random() < own_skip
            # completion given not skipped, so that P(complete) is `complete` on average
            completed = not skipped and rng.random() < complete / (1 - skip)
            rows.append(play(f"u{i}", variant, skipped=skipped, completed=completed))
    return rows


def test_intervals_hold_the_true_difference_and_narrow_with_more_listeners(
    tmp_path: Path,
) -> None:
    widths = []
    for listeners in (400, 3200):
        settings = Settings(home=tmp_path, lake={"root": str(tmp_path / f"lake-{listeners}")})
        write_rows(settings, SILVER_PLAYS, simulated(listeners, seed=listeners))
        [difference] = ab_report(settings).differences
        truth = {
            "plays_per_listener": TRUE["challenger"][0] - TRUE["champion"][0],
            "skip_rate": TRUE["challenger"][1] - TRUE["champion"][1],
            "completion_rate": TRUE["challenger"][2] - TRUE["champion"][2],
        }
        for metric, value in truth.items():
            estimate = getattr(difference, metric)
            assert estimate.contains(value), (listeners, metric, estimate, value)
        widths.append(
            {
                metric: getattr(difference, metric).high - getattr(difference, metric).low
                for metric in truth
            }
        )
    for metric in widths[0]:
        # 8x the listeners: about 1/sqrt(8) of the width
        assert widths[1][metric] < 0.5 * widths[0][metric], (metric, widths)


def test_rate_intervals_are_clustered_by_listener() -> None:
    """Over many simulated experiments with heterogeneous listeners, the listener-level
    interval covers the true difference about 95% of the time; treating plays as
    independent would cover far less (checked here too, so the test can fail)."""
    rng = np.random.default_rng(5)
    covered = naive_covered = 0
    runs = 400
    for _ in range(runs):
        sides = []
        for skip in (0.3, 0.3):  # no true difference
            plays = rng.integers(1, 40, size=60)
            own = np.clip(rng.normal(skip, 0.2, size=60), 0, 1)
            sides.append((rng.binomial(plays, own), plays))
        estimate = _rate_difference(*sides[0], *sides[1])
        covered += estimate.contains(0.0)
        p = [hits.sum() / plays.sum() for hits, plays in sides]
        se = math.sqrt(
            sum(q * (1 - q) / plays.sum() for q, (_, plays) in zip(p, sides, strict=True))
        )
        naive_covered += abs(p[0] - p[1]) <= Z * se
    assert 0.92 <= covered / runs <= 0.98
    assert naive_covered / runs < 0.85


def test_without_champion_the_largest_share_is_the_baseline(settings: Settings) -> None:
    rows = [r for i in range(3) for r in listener(f"a{i}", "blue", 2 + i, 1, 1)]
    rows += [r for i in range(3) for r in listener(f"b{i}", "green", 3, i, 0)]
    write_rows(settings, SILVER_PLAYS, rows)
    split = settings.model_copy(
        update={
            "serving": settings.serving.model_copy(update={"ab_split": {"blue": 1, "green": 3}})
        }
    )
    report = ab_report(split)
    assert report.baseline == "green"
    assert [d.variant for d in report.differences] == ["blue"]


def test_a_listener_under_two_variants_is_reported(settings: Settings) -> None:
    rows = listener("u1", "champion", 2, 0, 2) + listener("u1", "challenger", 1, 1, 0)
    rows += listener("u2", "champion", 1, 0, 1)
    write_rows(settings, SILVER_PLAYS, rows)
    report = ab_report(settings)
    assert report.shared_listeners == 1
    # one listener on a side: an estimate, no interval
    challenger = next(v for v in report.variants if v.variant == "challenger")
    assert (challenger.skip_rate.value, challenger.skip_rate.low) == (1.0, None)


def test_no_table_no_variant_and_a_table_from_before_variant_are_not_found(
    settings: Settings,
) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        ab_report(settings)
    write_rows(settings, SILVER_PLAYS, [play("u1", None), play("u2", "champion", day=DAY)])
    with pytest.raises(NotFoundError, match=r"no play in silver\.plays between 2026-11-26"):
        ab_report(settings, DAY + timedelta(days=1), None)

    old = Settings(home=settings.home, lake={"root": str(settings.home / "old-lake")})
    schema = pa.schema([f for f in SILVER_PLAYS.arrow_schema() if f.name != "variant"])
    row = {n: v for n, v in play("u1", None).items() if n != "variant"}
    write_deltalake(SILVER_PLAYS.path(old), pa.Table.from_pylist([row], schema=schema))
    with pytest.raises(NotFoundError, match="carries a variant yet"):
        ab_report(old)


@pytest.fixture()
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The CLI reads its settings from the environment, as in production."""
    monkeypatch.setenv("ENCORE_HOME", str(settings.home))
    monkeypatch.setenv("ENCORE_LAKE__ROOT", settings.lake.root)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def cli() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)  # a group, so that `ab` is a subcommand
    register_ab_commands(app)
    return app


def test_the_command_prints_json_and_a_table(cli_env: Settings) -> None:
    write_rows(cli_env, SILVER_PLAYS, small_experiment())
    runner = CliRunner()
    result = runner.invoke(cli(), ["ab", "report", "--from", "2026-11-24", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["baseline"] == "champion" and data["start"] == "2026-11-24"
    plays = {v["variant"]: v["plays"] for v in data["variants"]}
    assert plays == {
        "champion": sum(c[0] for c in CHAMPION.values()),
        "challenger": sum(c[0] for c in CHALLENGER.values()) + 1,
    }
    table = runner.invoke(cli(), ["ab", "report", "--to", "2026-11-25"])
    assert table.exit_code == 0, table.output
    assert "baseline: champion" in table.stdout and "challenger" in table.stdout
    assert "±" in table.stdout


def test_the_command_without_data_says_so_in_one_line(cli_env: Settings) -> None:
    result = CliRunner().invoke(cli(), ["ab", "report"])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: silver.plays does not exist")
    assert len(result.stderr.strip().splitlines()) == 1
    bad = CliRunner().invoke(cli(), ["ab", "report", "--from", "yesterday"])
    assert bad.exit_code == 2 and "2026-11-23" in bad.output
