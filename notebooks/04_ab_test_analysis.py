# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The A/B test, with the statistics spelled out
#
# The recommendation service splits listeners between model aliases (`serving.ab_split`,
# e.g. `champion` and `challenger`): each listener is assigned one variant by a hash of their
# id, and every play of a recommended song records the variant that recommended it. After
# `encore lake build`, those plays are in `silver.plays` with their `variant`.
#
# `models.ab.ab_report` (what `encore ab report` prints and the dashboard shows) compares the
# variants. This notebook shows its figures, then the rows they come from, and recomputes
# two intervals by hand so that every number can be traced.

# %% tags=["parameters"]
small = False  # True: the test suite's run (fewer bootstrap samples)
start = None  # first event day of the experiment, "YYYY-MM-DD" (None: the first day)
end = None  # last event day, inclusive (None: the last day)
bootstrap_samples = 2000  # listener resamples for the bootstrap check
seed = 0

# %%
import math
from datetime import date

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import polars as pl
from scipy import stats

from encore.settings import get_settings
from models.ab import CONFIDENCE, ab_report, listener_table

if small:
    bootstrap_samples = min(bootstrap_samples, 200)
settings = get_settings()
first = date.fromisoformat(start) if start else None
last = date.fromisoformat(end) if end else None

# %% [markdown]
# ## The report
#
# Per variant: listeners, plays, plays per listener, skip rate and completion rate, each
# with its 95% interval; then each variant minus the baseline (`champion` when it has
# plays). An interval of a difference that excludes 0 is a difference at the 95% level.

# %%
report = ab_report(settings, first, last)
variants = pd.DataFrame(
    [
        {
            "variant": v.variant,
            "listeners": v.listeners,
            "plays": v.plays,
            **{
                f"{metric} {part}": getattr(getattr(v, metric), part)
                for metric in ("plays_per_listener", "skip_rate", "completion_rate")
                for part in ("value", "low", "high")
            },
        }
        for v in report.variants
    ]
)
differences = pd.DataFrame(
    [
        {
            "difference": f"{d.variant} - {d.baseline}",
            "metric": metric,
            "value": getattr(d, metric).value,
            "low": getattr(d, metric).low,
            "high": getattr(d, metric).high,
            "excludes 0": not getattr(d, metric).contains(0.0),
        }
        for d in report.differences
        for metric in ("plays_per_listener", "skip_rate", "completion_rate")
    ]
)
print(f"baseline: {report.baseline}; listeners seen under two variants: {report.shared_listeners}")
variants.set_index("variant").T.round(4)

# %%
differences.round(4)

# %% [markdown]
# ## The unit is the listener
#
# Variants are assigned per **listener**, so the listener is the unit of analysis: one
# listener's plays are not independent draws (someone who skips a lot skips in every play).
# The report works from this table, one row per listener and variant, with their plays,
# skips and completed plays in the period.

# %%
listeners = listener_table(settings, first, last)
baseline = report.baseline
other = next(v.variant for v in report.variants if v.variant != baseline)
listeners.group_by("variant", maintain_order=True).head(5)

# %%
summary = listeners.group_by("variant").agg(
    pl.len().alias("listeners"),
    pl.col("plays").sum(),
    pl.col("plays").mean().alias("mean plays"),
    pl.col("plays").std().alias("sd plays"),
    (pl.col("skips").sum() / pl.col("plays").sum()).alias("skip rate"),
)
assert dict(summary.select("variant", "plays").iter_rows()) == {
    v.variant: v.plays for v in report.variants
}
fig, ax = plt.subplots(figsize=(7, 3.5))
for name in (baseline, other):
    ax.hist(
        listeners.filter(pl.col("variant") == name)["plays"], bins=15, alpha=0.6, label=name
    )
ax.set(title="Plays per listener", xlabel="plays in the period", ylabel="listeners")
ax.legend()
summary

# %% [markdown]
# ## Plays per listener: Welch's t interval, by hand
#
# The difference of the two means, with Welch's standard error (each variant's variance of
# the mean, not a pooled variance: the variants need not spread alike)
#
# $$se = \sqrt{s_a^2 / m_a + s_b^2 / m_b}$$
#
# and the Welch–Satterthwaite degrees of freedom
#
# $$df = \frac{(s_a^2/m_a + s_b^2/m_b)^2}{(s_a^2/m_a)^2/(m_a-1) + (s_b^2/m_b)^2/(m_b-1)}$$
#
# The interval is the difference ± $t_{0.975,\,df} \cdot se$.

# %%
a = listeners.filter(pl.col("variant") == other)["plays"].to_numpy().astype(float)
b = listeners.filter(pl.col("variant") == baseline)["plays"].to_numpy().astype(float)
va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
se = math.sqrt(va + vb)
df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
t = stats.t.ppf(0.5 + CONFIDENCE / 2, df)
by_hand = (a.mean() - b.mean(), a.mean() - b.mean() - t * se, a.mean() - b.mean() + t * se)
reported = report.differences[0].plays_per_listener
print(f"{other} - {baseline}: se {se:.3f}, df {df:.1f}, t {t:.3f}")
print("by hand:  {:.4f} [{:.4f}, {:.4f}]".format(*by_hand))
print(f"reported: {reported.value:.4f} [{reported.low:.4f}, {reported.high:.4f}]")
assert np.allclose(by_hand, (reported.value, reported.low, reported.high))
# scipy's own Welch test says the same: the interval excludes 0 exactly when p < 0.05
welch = stats.ttest_ind(a, b, equal_var=False)
print(f"scipy Welch t-test: t {welch.statistic:.3f}, p {welch.pvalue:.3f}")
assert (welch.pvalue < 1 - CONFIDENCE) == (not reported.contains(0.0))

# %% [markdown]
# ## Skip rate: a ratio of sums, with a cluster-robust standard error
#
# The skip rate of a variant is pooled over its plays: $r = \sum_i y_i / \sum_i n_i$ for
# listeners $i$ with $n_i$ plays and $y_i$ skips. Its variance, by the delta method for a
# ratio of per-listener sums (clustered by listener), is
#
# $$se^2 = \frac{\sum_i (y_i - r\,n_i)^2}{m\,(m-1)\,\bar n^2}$$
#
# with $m$ listeners and $\bar n$ their mean plays. A normal interval $r \pm z_{0.975}\,se$;
# the difference of two variants adds their variances (independent groups).

# %%
z = stats.norm.ppf(0.5 + CONFIDENCE / 2)
by_variant = {}
for name in (baseline, other):
    rows = listeners.filter(pl.col("variant") == name)
    n, y = rows["plays"].to_numpy().astype(float), rows["skips"].to_numpy().astype(float)
    m = len(n)
    rate = y.sum() / n.sum()
    variance = ((y - rate * n) ** 2).sum() / (m * (m - 1) * n.mean() ** 2)
    naive = rate * (1 - rate) / n.sum()  # as if every play were an independent draw
    by_variant[name] = (rate, variance, naive)
    reported_rate = next(v.skip_rate for v in report.variants if v.variant == name)
    half = z * math.sqrt(variance)
    print(
        f"{name}: rate {rate:.4f} [{rate - half:.4f}, {rate + half:.4f}] by hand; "
        f"[{reported_rate.low:.4f}, {reported_rate.high:.4f}] reported"
    )
    assert np.allclose((rate, rate - half, rate + half), (reported_rate.value, reported_rate.low, reported_rate.high))

difference = by_variant[other][0] - by_variant[baseline][0]
half = z * math.sqrt(by_variant[other][1] + by_variant[baseline][1])
reported = report.differences[0].skip_rate
print(f"difference {difference:.4f} [{difference - half:.4f}, {difference + half:.4f}]")
assert np.allclose((difference, difference - half), (reported.value, reported.low))

# %% [markdown]
# **Why not treat plays as independent?** The binomial standard error $\sqrt{r(1-r)/N}$ over
# all $N$ plays ignores that plays come in clusters (listeners). The ratio of the two
# variances is the *design effect*: above 1, the naive interval would be too narrow and
# would call differences that are noise.

# %%
pd.DataFrame(
    {
        "variant": list(by_variant),
        "cluster-robust se": [math.sqrt(v[1]) for v in by_variant.values()],
        "naive binomial se": [math.sqrt(v[2]) for v in by_variant.values()],
        "design effect": [v[1] / v[2] for v in by_variant.values()],
    }
).round(4)

# %% [markdown]
# ## A check by resampling listeners
#
# The bootstrap needs no formula: draw each variant's listeners with replacement (the
# listener stays the unit), recompute the skip-rate difference, repeat. The middle 95% of
# those differences should be close to the delta-method interval.

# %%
rng = np.random.default_rng(seed)
groups = {
    name: listeners.filter(pl.col("variant") == name).select("plays", "skips").to_numpy()
    for name in (baseline, other)
}
draws = np.empty(bootstrap_samples)
for sample in range(bootstrap_samples):
    rates = {}
    for name, rows in groups.items():
        picked = rows[rng.integers(0, len(rows), len(rows))]
        rates[name] = picked[:, 1].sum() / picked[:, 0].sum()
    draws[sample] = rates[other] - rates[baseline]
low, high = np.quantile(draws, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
print(f"bootstrap ({bootstrap_samples} samples): [{low:.4f}, {high:.4f}]")
print(f"delta method:                [{reported.low:.4f}, {reported.high:.4f}]")
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.hist(draws, bins=40)
for x in (reported.low, reported.high):
    ax.axvline(x, color="red", linestyle="--")
ax.set(title=f"Skip-rate difference, {other} - {baseline}", xlabel="difference")
fig.tight_layout()

# %% [markdown]
# ## The variants side by side

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.5))
for ax, metric in zip(
    axes, ("plays_per_listener", "skip_rate", "completion_rate"), strict=True
):
    names = [v.variant for v in report.variants]
    estimates = [getattr(v, metric) for v in report.variants]
    values = [e.value for e in estimates]
    errors = [
        [e.value - (e.low if e.low is not None else e.value) for e in estimates],
        [(e.high if e.high is not None else e.value) - e.value for e in estimates],
    ]
    ax.errorbar(names, values, yerr=errors, fmt="o", capsize=6)
    ax.set(title=metric.replace("_", " "))
fig.tight_layout()

# %% [markdown]
# ## Reading it
#
# - A difference whose interval excludes 0 is significant at 95%; one that includes 0 is
#   not evidence of no difference: with few listeners every interval is wide.
# - The listeners here are those who played a recommended song in the period, not every
#   listener assigned: a variant that makes people come back more also changes who is in.
# - `shared_listeners` above 0 means the period spans two experiments (the split or its
#   salt changed): restrict `start`/`end` to one.
# - Looking at the report every day and stopping when it turns significant inflates false
#   positives: fix the period (or the number of listeners) before looking.
