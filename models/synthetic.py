"""A realistic synthetic listening dataset, the embedded default (no files needed).

Artists belong to latent genres; artist popularity follows a Zipf law; each listener
prefers a few genres (Dirichlet); listeners pick artists with probability proportional to
popularity times genre affinity; play counts are heavy-tailed; artists carry tags drawn
mostly from their genre's vocabulary. Listening events with timestamps are generated too,
so the time-based split works on it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.interactions import Events, InteractionDataset


def generate(
    users: int = 1000,
    items: int = 2000,
    genres: int = 20,
    tags: int = 200,
    mean_items_per_user: float = 30.0,
    zipf: float = 1.0,
    affinity_concentration: float = 0.15,
    seed: int = 0,
) -> InteractionDataset:
    """Generate a users x items play-count matrix with tags and timestamped events.

    Args:
        users: number of listeners.
        items: number of artists.
        genres: number of latent genres (the structure models should discover).
        tags: size of the tag vocabulary.
        mean_items_per_user: mean distinct artists per listener (log-normal spread).
        zipf: popularity exponent (1.0 is the classic long tail).
        affinity_concentration: Dirichlet concentration of a listener's genre taste; small
            means listeners stick to few genres.
        seed: random seed; the same arguments give the same dataset.
    """
    rng = np.random.default_rng(seed)
    item_genre = rng.integers(0, genres, items)
    popularity = 1.0 / np.arange(1, items + 1) ** zipf
    popularity = popularity[rng.permutation(items)]
    taste = rng.dirichlet(np.full(genres, affinity_concentration), users)
    counts = np.clip(
        rng.lognormal(np.log(mean_items_per_user), 0.6, users).astype(int), 3, items // 2
    )
    rows, cols, plays = [], [], []
    for user in range(users):
        weight = popularity * (taste[user, item_genre] + 1e-3)
        chosen = rng.choice(items, size=counts[user], replace=False, p=weight / weight.sum())
        rows.append(np.full(len(chosen), user))
        cols.append(chosen)
        # heavy-tailed play counts, larger for artists of the listener's favourite genres
        base = 1 + rng.pareto(1.2, len(chosen)) * 10
        plays.append(np.ceil(base * (0.5 + 3 * taste[user, item_genre[chosen]])))
    user_index = np.concatenate(rows)
    item_index = np.concatenate(cols)
    play_counts = np.concatenate(plays).astype(np.float32)
    user_items = sp.csr_matrix((play_counts, (user_index, item_index)), shape=(users, items))

    # tags: mostly from the artist's genre vocabulary, some noise
    genre_tags = rng.integers(0, tags, (genres, 8))
    tag_rows, tag_cols = [], []
    for item in range(items):
        own = rng.choice(genre_tags[item_genre[item]], size=3, replace=False)
        noise = rng.integers(0, tags, 1)
        chosen = np.concatenate([own, noise])
        tag_rows.append(np.full(len(chosen), item))
        tag_cols.append(chosen)
    item_features = sp.csr_matrix(
        (
            np.ones(sum(map(len, tag_rows)), np.float32),
            (np.concatenate(tag_rows), np.concatenate(tag_cols)),
        ),
        shape=(items, tags),
    )
    item_features.sum_duplicates()

    # events: each (user, item) pair's plays spread over 90 days, listeners start at
    # different times so a global time cut leaves history for most of them
    pair_repeat = np.minimum(play_counts.astype(np.int64), 20)
    event_users = np.repeat(user_index, pair_repeat)
    event_items = np.repeat(item_index, pair_repeat)
    start = 1_700_000_000 + rng.uniform(0, 30 * 86400, users)
    times = start[event_users] + rng.uniform(0, 60 * 86400, len(event_users))
    return InteractionDataset(
        name="synthetic",
        user_items=user_items,
        user_ids=np.arange(users),
        item_ids=np.arange(items),
        item_names=np.asarray([f"artist-{i}-g{item_genre[i]}" for i in range(items)], object),
        item_features=item_features,
        feature_names=np.asarray([f"tag-{t}" for t in range(tags)], dtype=object),
        events=Events(event_users, event_items, times),
        lineage={
            "source": "synthetic",
            "params": {
                "users": users,
                "items": items,
                "genres": genres,
                "tags": tags,
                "mean_items_per_user": mean_items_per_user,
                "zipf": zipf,
                "affinity_concentration": affinity_concentration,
                "seed": seed,
            },
        },
    )
