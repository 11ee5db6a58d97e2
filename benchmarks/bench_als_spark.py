"""implicit ALS vs Spark MLlib ALS: same data, factors, iterations, implicitPrefs=True.

Data: HetRec lastfm-2k when configured (``settings.datasets``), else the synthetic
dataset; one per-user 10% holdout (seed 0). Both models see the same confidence: Spark
computes ``c = 1 + alpha * r`` from ``r = log1p(plays)``; implicit is given that same
``1 + alpha * r`` directly (it uses its input as the confidence). Regularisation follows
each library's convention (Spark scales ``regParam`` by the ratings of each user/item, so
``regParam = reg / mean ratings per user`` puts it on the same footing). Both use every core.
Training time excludes Spark session start-up and data conversion; medians of ``--repeats``.

    .venv/bin/python benchmarks/bench_als_spark.py [--repeats 3] [--factors 64]
"""

from __future__ import annotations

import argparse

import numpy as np
import scipy.sparse as sp
from bench_models_common import FixedFactors, median, save, timed
from rich.console import Console
from rich.table import Table

from encore.engines import create_spark_session
from encore.settings import get_settings
from models import create_recommender
from models.datasets import load_dataset
from models.evaluation import evaluate
from models.splits import holdout_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--alpha", type=float, default=2.0)
    parser.add_argument("--reg", type=float, default=1.0)
    args = parser.parse_args()
    settings = get_settings()
    name = "hetrec-lastfm-2k" if settings.datasets.resolve() else "synthetic"
    data = load_dataset(name, settings)
    train, test = holdout_split(data.user_items, 0.1, seed=0)
    r = train.copy()
    r.data = np.log1p(r.data)
    confidence = r.copy()
    confidence.data = 1.0 + args.alpha * confidence.data

    implicit_model = create_recommender(
        "als",
        factors=args.factors,
        iterations=args.iterations,
        regularization=args.reg,
        alpha=1.0,
        weighting="none",
        num_threads=0,
    )
    implicit_times, _ = timed(lambda: implicit_model.fit(confidence), args.repeats)
    implicit_ndcg = evaluate(implicit_model, train, test)["ndcg@10"]

    settings.spark.master = "local[*]"
    spark = create_spark_session(settings, "bench-als")
    from pyspark.ml.recommendation import ALS

    coo = sp.coo_matrix(r)
    frame = (
        spark.createDataFrame(
            list(
                zip(
                    coo.row.tolist(), coo.col.tolist(), coo.data.astype(float).tolist(), strict=True
                )
            ),
            ["user", "item", "rating"],
        )
        .repartition(2)
        .cache()
    )
    frame.count()
    per_user = r.nnz / max(int((np.diff(r.indptr) > 0).sum()), 1)
    als = ALS(
        rank=args.factors,
        maxIter=args.iterations,
        regParam=args.reg / per_user,
        implicitPrefs=True,
        alpha=args.alpha,
        userCol="user",
        itemCol="item",
        ratingCol="rating",
        seed=0,
        coldStartStrategy="drop",
        numUserBlocks=2,
        numItemBlocks=2,
    )
    spark_times, spark_model = timed(lambda: als.fit(frame), args.repeats)
    users = np.zeros((train.shape[0], args.factors), np.float32)
    items = np.zeros((train.shape[1], args.factors), np.float32)
    for row in spark_model.userFactors.collect():
        users[row["id"]] = row["features"]
    for row in spark_model.itemFactors.collect():
        items[row["id"]] = row["features"]
    spark_ndcg = evaluate(FixedFactors(users, items), train, test)["ndcg@10"]
    spark.stop()

    speedup = median(spark_times) / median(implicit_times)
    table = Table(
        title=f"ALS on {name}: {train.nnz:,} interactions, "
        f"{args.factors} factors, {args.iterations} iterations"
    )
    for column in ("library", "train s (median)", "runs", "ndcg@10"):
        table.add_column(column)
    table.add_row(
        "implicit",
        f"{median(implicit_times):.2f}",
        ", ".join(f"{t:.2f}" for t in implicit_times),
        f"{implicit_ndcg:.4f}",
    )
    table.add_row(
        "Spark MLlib",
        f"{median(spark_times):.2f}",
        ", ".join(f"{t:.2f}" for t in spark_times),
        f"{spark_ndcg:.4f}",
    )
    Console().print(table)
    Console().print(f"implicit is {speedup:.1f}x faster")
    path = save(
        "als_spark",
        {
            "dataset": name,
            "interactions": int(train.nnz),
            "factors": args.factors,
            "iterations": args.iterations,
            "alpha": args.alpha,
            "reg": args.reg,
            "spark_reg_param": args.reg / per_user,
            "implicit_seconds": implicit_times,
            "spark_seconds": spark_times,
            "implicit_ndcg@10": implicit_ndcg,
            "spark_ndcg@10": spark_ndcg,
            "speedup": speedup,
        },
    )
    Console().print(f"saved {path}")


if __name__ == "__main__":
    main()
