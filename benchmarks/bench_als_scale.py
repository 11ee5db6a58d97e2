"""How implicit ALS training time grows with data: three synthetic sizes up to 10M plays.

Interactions are drawn with Zipf item popularity and genre affinity (vectorised, with
repeats summed). 64 factors, 15 iterations, every core; median of ``--repeats`` fits.

    .venv/bin/python benchmarks/bench_als_scale.py [--sizes 1e6,3e6,1e7] [--repeats 3]
"""

from __future__ import annotations

import argparse

import numpy as np
import scipy.sparse as sp
from bench_models_common import median, save, timed
from rich.console import Console
from rich.table import Table

from models import create_recommender


def interactions(n: int, users: int, items: int, genres: int = 50, seed: int = 0):
    """``n`` (user, item) draws: Zipf popularity within a user's favourite genre."""
    rng = np.random.default_rng(seed)
    item_genre = rng.integers(0, genres, items)
    popularity = 1.0 / np.arange(1, items + 1)
    popularity = popularity[rng.permutation(items)]
    by_genre = [np.flatnonzero(item_genre == g) for g in range(genres)]
    cdf = [np.cumsum(popularity[g]) / popularity[g].sum() for g in by_genre]
    favourite = rng.integers(0, genres, users)
    user = rng.integers(0, users, n)
    # 70% of plays in the user's favourite genre, the rest anywhere
    genre = np.where(rng.random(n) < 0.7, favourite[user], rng.integers(0, genres, n))
    item = np.empty(n, np.int64)
    for g in range(genres):
        mask = genre == g
        picks = np.searchsorted(cdf[g], rng.random(int(mask.sum())))
        item[mask] = by_genre[g][np.minimum(picks, len(by_genre[g]) - 1)]
    matrix = sp.csr_matrix((np.ones(n, np.float32), (user, item)), shape=(users, items))
    matrix.sum_duplicates()
    return matrix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e6,3e6,1e7")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    args = parser.parse_args()
    rows = []
    for size in (int(float(s)) for s in args.sizes.split(",")):
        users, items = size // 50, max(size // 100, 1000)
        matrix = interactions(size, users, items)
        model = create_recommender(
            "als",
            factors=args.factors,
            iterations=args.iterations,
            weighting="log",
            alpha=2.0,
            regularization=1.0,
        )
        seconds, _ = timed(lambda m=model, x=matrix: m.fit(x), args.repeats)
        rows.append(
            {
                "plays": size,
                "users": users,
                "items": items,
                "nnz": int(matrix.nnz),
                "seconds": seconds,
                "median_seconds": median(seconds),
            }
        )
        Console().print(f"{size:,} plays: {median(seconds):.2f} s")
    table = Table(title=f"implicit ALS, {args.factors} factors, {args.iterations} iterations")
    for column in ("plays", "users", "items", "non-zeros", "train s (median)", "s per 1M nnz"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            f"{row['plays']:,}",
            f"{row['users']:,}",
            f"{row['items']:,}",
            f"{row['nnz']:,}",
            f"{row['median_seconds']:.2f}",
            f"{row['median_seconds'] / row['nnz'] * 1e6:.2f}",
        )
    Console().print(table)
    payload = {"factors": args.factors, "iterations": args.iterations, "sizes": rows}
    Console().print(f"saved {save('als_scale', payload)}")


if __name__ == "__main__":
    main()
