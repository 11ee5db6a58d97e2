"""A/B report: how the variants' listeners listened, from ``silver.plays``.

Input: the plays of ``silver.plays`` that carry a ``variant`` (the model alias the
recommendation service served, recorded by the app in the play event), optionally between
two ``event_date`` days. Likes are actions, not listening, and are left out, as in the gold
tables. Output: an :class:`AbReport`, printed by ``encore ab report`` (serving/ab.py), shown by the
analysts' dashboard and the A/B notebook.

Per variant: listeners (with at least one play), plays, plays per listener, skip rate and
completion rate, each with a 95% confidence interval; for every other variant, its
difference from the baseline with a 95% interval. The baseline is ``champion`` when it has
plays, else the variant with the largest share in ``serving.ab_split``.

Statistics: the listener is the unit. Variants are assigned per listener, so one listener's
plays are not independent draws (a listener who skips a lot skips in every play); treating
plays as independent would make intervals too narrow.

* **Plays per listener**: the mean of the listeners' play counts, a t interval; the
  difference is Welch's (unequal variances, Welch-Satterthwaite degrees of freedom).
* **Skip and completion rates**: the pooled rate, skips / plays over the variant's plays,
  with a cluster-robust standard error by the delta method for a ratio of per-listener
  sums: ``se^2 = sum_i (y_i - r * n_i)^2 / (m (m - 1) nbar^2)`` for ``m`` listeners with
  ``n_i`` plays and ``y_i`` skips, ``nbar`` the mean plays. A normal interval; the
  difference of two variants adds their variances (the groups are independent).

A listener counts as exposed once they played a recommended song, so "plays per listener" is
among listeners who played at all, not every listener assigned. A listener seen under two
variants (the split or salt changed within the range) counts in each; ``shared_listeners``
says how many, and a non-zero count means the range spans two experiments.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from encore.delta import open_delta, read_delta
from encore.errors import NotFoundError
from encore.settings import Settings
from encore.tables import SILVER_PLAYS

if TYPE_CHECKING:
    import polars as pl

CONFIDENCE = 0.95
_COLUMNS = ["user_id", "variant", "event_type", "completed", "skipped", "event_date"]


@dataclass(frozen=True)
class Estimate:
    """A value with its 95% interval; ``low``/``high`` are None when there is too little data
    (fewer than two listeners on a side)."""

    value: float
    low: float | None
    high: float | None

    def contains(self, value: float) -> bool:
        return self.low is not None and self.high is not None and self.low <= value <= self.high


@dataclass(frozen=True)
class VariantStats:
    variant: str
    listeners: int
    plays: int
    plays_per_listener: Estimate
    skip_rate: Estimate
    completion_rate: Estimate


@dataclass(frozen=True)
class Difference:
    """``variant`` minus ``baseline``: an interval that excludes 0 is a difference at 95%."""

    variant: str
    baseline: str
    plays_per_listener: Estimate
    skip_rate: Estimate
    completion_rate: Estimate


@dataclass(frozen=True)
class AbReport:
    start: date | None
    end: date | None
    baseline: str
    variants: list[VariantStats]
    differences: list[Difference]
    shared_listeners: int
    """Listeners seen under more than one variant in the range."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (dates as ISO strings)."""
        out = asdict(self)
        out["start"] = self.start.isoformat() if self.start else None
        out["end"] = self.end.isoformat() if self.end else None
        out["confidence"] = CONFIDENCE
        return out


@dataclass(frozen=True)
class _Listeners:
    """One variant's listeners: plays, skips and completions of each (aligned arrays)."""

    plays: Any
    skips: Any
    completes: Any


def ab_report(settings: Settings, start: date | None = None, end: date | None = None) -> AbReport:
    """Compare the variants' listening in ``silver.plays`` from ``start`` to ``end``
    (inclusive ``event_date`` days; None: unbounded). See the module docstring for the
    statistics.

    Raises:
        NotFoundError: silver.plays does not exist, or no play in the range carries a variant.
    """
    import polars as pl

    per_listener = _per_listener(_variant_plays(settings, start, end))
    groups: dict[str, _Listeners] = {}
    for (variant,), rows in per_listener.sort("variant").group_by("variant", maintain_order=True):
        groups[variant] = _Listeners(
            rows["plays"].to_numpy(), rows["skips"].to_numpy(), rows["completes"].to_numpy()
        )
    baseline = _baseline(settings, groups)
    order = [baseline, *(name for name in groups if name != baseline)]
    stats = [_variant_stats(name, groups[name]) for name in order]
    differences = [
        _difference(name, group, baseline, groups[baseline])
        for name, group in groups.items()
        if name != baseline
    ]
    shared = (
        per_listener.group_by("user_id")
        .agg(pl.col("variant").n_unique().alias("variants"))
        .filter(pl.col("variants") > 1)
        .height
    )
    return AbReport(start, end, baseline, stats, differences, shared)


def listener_table(
    settings: Settings, start: date | None = None, end: date | None = None
) -> pl.DataFrame:
    """The rows :func:`ab_report` computes from: one per (variant, listener) with their
    ``plays``, ``skips`` and ``completes`` in the range, sorted by variant and listener.

    Raises:
        NotFoundError: as :func:`ab_report`.
    """
    return _per_listener(_variant_plays(settings, start, end)).sort("variant", "user_id")


def _variant_plays(settings: Settings, start: date | None, end: date | None) -> pl.DataFrame:
    """The listening plays (no likes) of the range that carry a variant."""
    import polars as pl

    delta = open_delta(settings, SILVER_PLAYS)
    if delta is None:
        raise NotFoundError(
            f"{SILVER_PLAYS.qualified_name} does not exist at {SILVER_PLAYS.path(settings)}; "
            "build it with `encore lake build`"
        )
    range_text = f"between {start or 'the first day'} and {end or 'the last day'}"
    no_variant = NotFoundError(
        f"no play in {SILVER_PLAYS.qualified_name} {range_text} carries a variant yet: "
        "plays are recorded with the variant the recommendation service returned "
        "(serving.ab_split), then `encore lake build` brings them to silver"
    )
    if "variant" not in delta.schema().to_arrow().names:
        raise no_variant  # a table built before plays carried variants
    filters = []
    if start is not None:
        filters.append(("event_date", ">=", start))
    if end is not None:
        filters.append(("event_date", "<=", end))
    plays = pl.from_arrow(read_delta(delta, _COLUMNS, filters)).filter(
        pl.col("variant").is_not_null() & (pl.col("event_type") != "like")
    )
    if plays.is_empty():
        raise no_variant
    return plays


def _per_listener(plays: pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    return plays.group_by("variant", "user_id").agg(
        pl.len().alias("plays"),
        pl.col("skipped").cast(pl.Int64).sum().alias("skips"),
        pl.col("completed").cast(pl.Int64).sum().alias("completes"),
    )


def _baseline(settings: Settings, groups: dict[str, _Listeners]) -> str:
    """``champion`` if present, else the largest configured share (then most listeners)."""
    if "champion" in groups:
        return "champion"
    split = settings.serving.ab_split
    return max(groups, key=lambda name: (split.get(name, 0.0), len(groups[name].plays), name))


def _mean(values: Any) -> Estimate:
    from scipy import stats

    m = len(values)
    mean = float(values.mean())
    if m < 2:
        return Estimate(mean, None, None)
    se = float(values.std(ddof=1)) / math.sqrt(m)
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, m - 1)) * se
    return Estimate(mean, mean - half, mean + half)


def _ratio(hits: Any, plays: Any) -> tuple[float, float | None]:
    """The pooled rate ``sum(hits) / sum(plays)`` and its cluster-robust variance (delta
    method over listeners); the variance is None for fewer than two listeners."""
    m = len(plays)
    rate = float(hits.sum() / plays.sum())
    if m < 2:
        return rate, None
    residuals = hits - rate * plays
    variance = float((residuals**2).sum()) / (m * (m - 1) * float(plays.mean()) ** 2)
    return rate, variance


def _normal(value: float, variance: float | None) -> Estimate:
    if variance is None:
        return Estimate(value, None, None)
    from scipy import stats

    half = float(stats.norm.ppf(0.5 + CONFIDENCE / 2)) * math.sqrt(variance)
    return Estimate(value, value - half, value + half)


def _variant_stats(name: str, group: _Listeners) -> VariantStats:
    return VariantStats(
        variant=name,
        listeners=len(group.plays),
        plays=int(group.plays.sum()),
        plays_per_listener=_mean(group.plays),
        skip_rate=_normal(*_ratio(group.skips, group.plays)),
        completion_rate=_normal(*_ratio(group.completes, group.plays)),
    )


def _welch(a: Any, b: Any) -> Estimate:
    """Mean of ``a`` minus mean of ``b`` with Welch's t interval."""
    from scipy import stats

    value = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return Estimate(value, None, None)
    va, vb = float(a.var(ddof=1)) / len(a), float(b.var(ddof=1)) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return Estimate(value, value, value)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df)) * se
    return Estimate(value, value - half, value + half)


def _rate_difference(hits_a: Any, plays_a: Any, hits_b: Any, plays_b: Any) -> Estimate:
    rate_a, var_a = _ratio(hits_a, plays_a)
    rate_b, var_b = _ratio(hits_b, plays_b)
    variance = None if var_a is None or var_b is None else var_a + var_b
    return _normal(rate_a - rate_b, variance)


def _difference(name: str, group: _Listeners, baseline: str, base: _Listeners) -> Difference:
    return Difference(
        variant=name,
        baseline=baseline,
        plays_per_listener=_welch(group.plays, base.plays),
        skip_rate=_rate_difference(group.skips, group.plays, base.skips, base.plays),
        completion_rate=_rate_difference(group.completes, group.plays, base.completes, base.plays),
    )


# -- CLI ------------------------------------------------------------------------------------
