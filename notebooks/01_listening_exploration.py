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
# # Listening on Encore: an exploration of silver and gold
#
# How people listen, read straight from the lake (Delta tables through delta-rs and polars,
# no Spark): plays per day, how plays spread over listeners and songs (the long tail), when
# and where people listen, their sessions, and what they skip.
#
# Two layers are used: **silver** (`silver.plays`: one row per play event, cleaned and
# enriched with the song's artist and genre; `silver.sessions`: plays grouped into sessions)
# and **gold** (daily aggregates the dashboards read). Gold answers "how much"; silver
# answers "how is it distributed", which an aggregate cannot.
#
# The notebook reads whatever platform the `ENCORE_*` variables point at (see
# `notebooks/README.md`); `encore lake build` fills the lake.

# %% tags=["parameters"]
small = False  # True: the test suite's run (fewer days of play-level silver)
days = 28  # the lake's last days to look at in gold
silver_days = 14  # the last days of silver (play-level rows: the costly read)
min_song_plays = 20  # a song needs this many plays to rank among the most skipped

# %%
from datetime import timedelta

import matplotlib.pyplot as plt
import polars as pl

from encore.settings import get_settings
from encore.tables import (
    COUNTRY_DEVICE_BREAKDOWN,
    DAILY_ACTIVE_USERS,
    DAILY_SONG_PLAYS,
    DIM_SONGS,
    SILVER_PLAYS,
    SILVER_SESSIONS,
    SKIP_RATES,
)
from pipelines.lake.exploration import concentration, day_range, gini, lake_frame, top_share

if small:
    silver_days = min(silver_days, 7)
settings = get_settings()
print("lake:", settings.lake_root)

# %% [markdown]
# ## The period
#
# The last day gold holds is the end of the period; `days` back from it for gold,
# `silver_days` back for silver.

# %%
active = lake_frame(settings, DAILY_ACTIVE_USERS).filter(pl.col("country_code") == "ALL")
last_day = active["day"].max()
active = active.filter(pl.col("day") >= last_day - timedelta(days=days - 1)).sort("day")
print(f"gold: {active['day'].min()} .. {last_day} ({active.height} days)")
plays = lake_frame(
    settings,
    SILVER_PLAYS,
    [
        "user_id",
        "song_id",
        "start_time",
        "ms_played",
        "event_type",
        "device_type",
        "country_code",
        "event_date",
        "genre",
        "completed",
        "skipped",
        "local_hour",
    ],
    day_range(last_day, silver_days, "event_date"),
)
# likes are actions, not listening: every gold table leaves them out too
listening = plays.filter(pl.col("event_type") != "like")
print(f"silver: {listening.height} listening events of {listening['user_id'].n_unique()} listeners")

# %% [markdown]
# ## Plays and listeners per day
#
# `gold.daily_active_users` per day, for all countries together (`country_code = 'ALL'`:
# a listener active in two countries counts once). DAU is the listeners of the day; WAU and
# MAU the listeners of the 7 and 28 days ending that day, so they climb while the lake is
# younger than their window.

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.5))
left.plot(active["day"], active["plays"], marker="o")
left.set(title="Plays per day", ylabel="plays")
for column in ("dau", "wau", "mau"):
    right.plot(active["day"], active[column], marker=".", label=column.upper())
right.set(title="Active listeners", ylabel="listeners")
right.legend()
fig.autofmt_xdate()
active.select("day", "plays", "listening_hours", "dau", "wau", "mau", "new_listeners")

# %% [markdown]
# The layers agree: gold's plays of a day are silver's listening events of that day (the
# lake's quality checks reconcile them on every build; here for the silver days read).

# %%
silver_per_day = listening.group_by("event_date").agg(pl.len().alias("silver_events"))
gold_per_day = (
    lake_frame(settings, SKIP_RATES, filters=day_range(last_day, silver_days))
    .filter(pl.col("scope") == "song")
    .group_by("day")
    .agg(pl.col("plays").sum().alias("gold_plays"))
)
layers = silver_per_day.join(gold_per_day, left_on="event_date", right_on="day").sort(
    "event_date"
)
assert (layers["silver_events"] == layers["gold_plays"]).all(), layers
layers

# %% [markdown]
# ## The long tail: plays per listener and per song
#
# A few listeners play a lot and a few songs get most plays. The **Lorenz curve** sorts the
# subjects from the most played down and plots the share of plays against the share of
# subjects: the diagonal would be everyone equal. The **Gini coefficient** is twice the area
# between the two (0: equal, towards 1: one subject has everything). Songs never played in
# the period count as zero (from `dims.songs`): they are the tail's end.

# %%
per_listener = listening.group_by("user_id").agg(pl.len().alias("plays"))
song_plays = (
    lake_frame(settings, DAILY_SONG_PLAYS, ["day", "song_id", "plays"], day_range(last_day, days))
    .group_by("song_id")  # summed over countries and devices
    .agg(pl.col("plays").sum())
)
catalog = lake_frame(settings, DIM_SONGS, ["song_id", "title"])
per_song = catalog.join(song_plays, on="song_id", how="full", coalesce=True).with_columns(
    pl.col("plays").fill_null(0)
)
tails = pl.DataFrame(
    {
        "subject": ["listeners (silver days)", "songs (gold days)"],
        "count": [per_listener.height, per_song.height],
        "median plays": [per_listener["plays"].median(), per_song["plays"].median()],
        "max plays": [per_listener["plays"].max(), per_song["plays"].max()],
        "top 20% share": [
            top_share(per_listener["plays"], 0.2),
            top_share(per_song["plays"], 0.2),
        ],
        "gini": [gini(per_listener["plays"]), gini(per_song["plays"])],
    }
)
tails

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.5))
axes[0].hist(per_listener["plays"], bins=20)
axes[0].set(title="Plays per listener", xlabel="plays", ylabel="listeners")
ranked = per_song.sort("plays", descending=True)
axes[1].plot(range(1, ranked.height + 1), ranked["plays"], marker=".")
axes[1].set(title="Plays per song, by rank", xlabel="song rank", ylabel="plays", yscale="log")
for name, counts in (("listeners", per_listener["plays"]), ("songs", per_song["plays"])):
    curve = concentration(counts)
    axes[2].plot(curve["subjects_share"], curve["plays_share"], label=name)
axes[2].plot([0, 1], [0, 1], linestyle="--", color="grey", label="equal")
axes[2].set(title="Lorenz curves", xlabel="share of subjects (most played first)")
axes[2].set(ylabel="share of plays")
axes[2].legend()
fig.tight_layout()

# %% [markdown]
# ## When and where people listen
#
# Listening hours by the **local** hour of the play (`silver.plays.local_hour`: the hour in
# the country's main time zone, so evenings line up across countries), and by device and
# country from `gold.country_device_breakdown`.

# %%
by_hour = (
    listening.group_by("local_hour")
    .agg((pl.col("ms_played").sum() / 3_600_000).alias("hours"))
    .sort("local_hour")
)
breakdown = lake_frame(settings, COUNTRY_DEVICE_BREAKDOWN, filters=day_range(last_day, days))
by_device = (
    breakdown.group_by("device_type")
    .agg((pl.col("ms_played").sum() / 3_600_000).alias("hours"), pl.col("plays").sum())
    .sort("hours", descending=True)
)
by_country = (
    breakdown.group_by("country_code")
    .agg((pl.col("ms_played").sum() / 3_600_000).alias("hours"), pl.col("plays").sum())
    .sort("hours", descending=True)
)
fig, axes = plt.subplots(1, 3, figsize=(15, 3.5))
axes[0].bar(by_hour["local_hour"], by_hour["hours"])
axes[0].set(title="Listening hours by local hour", xlabel="hour of day", ylabel="hours")
axes[1].bar(by_device["device_type"], by_device["hours"])
axes[1].set(title="Listening hours by device", ylabel="hours")
axes[2].bar(by_country["country_code"], by_country["hours"])
axes[2].set(title="Listening hours by country", ylabel="hours")
by_device

# %% [markdown]
# ## Sessions
#
# `silver.sessions` groups a listener's plays into sessions: a new session starts after
# `lake.session_gap_minutes` of silence. Its length runs from the first play's start to the
# last play's end.

# %%
sessions = lake_frame(
    settings, SILVER_SESSIONS, filters=day_range(last_day, silver_days, "session_date")
).with_columns((pl.col("length_s") / 60).alias("minutes"))
per_listener_day = sessions.group_by("user_id", "session_date").len()
print(
    f"{sessions.height} sessions; median {sessions['minutes'].median():.1f} minutes and "
    f"{sessions['plays'].median():.0f} plays; "
    f"{per_listener_day['len'].mean():.2f} sessions per listener on a day they listen"
)
fig, axes = plt.subplots(1, 3, figsize=(15, 3.5))
axes[0].hist(sessions["minutes"], bins=30)
axes[0].set(title="Session length", xlabel="minutes", ylabel="sessions")
axes[1].hist(sessions["plays"], bins=range(1, int(sessions["plays"].max()) + 2))
axes[1].set(title="Plays per session", xlabel="plays", ylabel="sessions")
axes[2].scatter(sessions["plays"], sessions["skips"] / sessions["plays"], alpha=0.4)
axes[2].set(title="Skip share by session size", xlabel="plays", ylabel="skips / plays")
sessions.select("minutes", "plays", "skips", "completed", "distinct_songs").describe()

# %% [markdown]
# ## Skips
#
# A play is **skipped** when the listener skipped it or stopped before it counted as
# completed (`silver.plays.skipped`). The skip rate of a genre or song is skips / plays over
# the period (summed from the daily `gold.skip_rates` rows, not an average of daily rates,
# which would weigh a quiet day like a busy one). How soon people skip tells whether a song
# loses them in its intro.

# %%
rates = lake_frame(settings, SKIP_RATES, filters=day_range(last_day, days))
by_genre = (
    rates.filter(pl.col("scope") == "genre")
    .group_by("subject_id")
    .agg(pl.col("plays").sum(), pl.col("skips").sum())
    .with_columns((pl.col("skips") / pl.col("plays")).alias("skip_rate"))
    .rename({"subject_id": "genre"})
    .sort("skip_rate", descending=True)
)
worst_songs = (
    rates.filter(pl.col("scope") == "song")
    .group_by("subject_id", "genre")
    .agg(pl.col("plays").sum(), pl.col("skips").sum())
    .filter(pl.col("plays") >= min_song_plays)
    .with_columns((pl.col("skips") / pl.col("plays")).alias("skip_rate"))
    .rename({"subject_id": "song_id"})
    .join(catalog, on="song_id", how="left")
    .sort("skip_rate", descending=True)
    .head(10)
    .select("title", "genre", "plays", "skips", "skip_rate", "song_id")
)
skips = listening.filter(pl.col("skipped"))
by_hour_skips = (
    listening.group_by("local_hour")
    .agg(pl.col("skipped").mean().alias("skip_rate"))
    .sort("local_hour")
)
fig, axes = plt.subplots(1, 3, figsize=(15, 3.5))
axes[0].barh(by_genre["genre"], by_genre["skip_rate"])
axes[0].set(title="Skip rate by genre", xlabel="skips / plays")
axes[1].hist(skips["ms_played"] / 1000, bins=30)
axes[1].set(title="Time played before a skip", xlabel="seconds", ylabel="skipped plays")
axes[2].plot(by_hour_skips["local_hour"], by_hour_skips["skip_rate"], marker="o")
axes[2].set(title="Skip rate by local hour", xlabel="hour of day", ylabel="skips / plays")
worst_songs

# %% [markdown]
# ## What to take away
#
# - Plays are concentrated: the top fifth of songs and of listeners hold the share shown in
#   the long-tail table; a recommender that only follows popularity would keep the tail
#   unheard (see `02_compare_recommenders`: coverage and novelty measure exactly that).
# - Listening follows the local clock and the device mix; features such as a listener's
#   peak hour (`features.listener_activity.peak_local_hour_28d`) come from here.
# - Skips are the clearest negative signal: the training data weighs a skipped play far
#   below a completed one (`training.interactions.weight`), and the ranker learns from them
#   (`03_training_set_from_feast`).
