"""FAISS item index at catalogue scale: HNSW recall@10 and queries/s against exact search.

1M item vectors (64-d, clustered like ALS item factors, norms varying), 2,000 queries
(mixtures of item vectors, like user vectors). The exact baseline is FAISS's flat inner
product, batched, measured in the same run. The approximate index is Encore's ``ItemIndex``:
HNSW on inner product at several ``efSearch`` values, or IVF at several ``nprobe`` values.

    .venv/bin/python benchmarks/bench_faiss.py --kind ivf [--items 1000000] [--probes 8,16,32,64]
    .venv/bin/python benchmarks/bench_faiss.py --kind hnsw [--items 1000000] [--ef 32,64,128]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from bench_models_common import median, save
from rich.console import Console
from rich.table import Table

from models.index import IndexConfig, ItemIndex, exact_search, recall_at_k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=100)
    parser.add_argument("--ef", default="32,64,128,256")
    parser.add_argument("--kind", choices=["hnsw", "ivf"], default="ivf")
    parser.add_argument("--probes", default="16,32,64,128")
    parser.add_argument("--nlist", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((1000, args.dim)).astype(np.float32)
    vectors = centres[rng.integers(0, 1000, args.items)]
    vectors += 0.5 * rng.standard_normal(vectors.shape).astype(np.float32)
    vectors *= rng.lognormal(0, 0.3, (args.items, 1)).astype(np.float32)
    queries = vectors[rng.integers(0, args.items, (args.queries, 5))].mean(axis=1)

    exact_runs = [exact_search(vectors, queries, 10) for _ in range(args.repeats)]
    exact_ids = exact_runs[0][1]
    exact_qps = args.queries / median([run[2] for run in exact_runs])

    started = time.perf_counter()
    config = IndexConfig(
        exact_max_items=0,
        hnsw_m=args.m,
        ef_construction=args.ef_construction,
        approximate=args.kind,
        ivf_nlist=args.nlist,
    )
    index = ItemIndex.build(vectors, config)
    build_seconds = time.perf_counter() - started
    knob = "ef_search" if args.kind == "hnsw" else "nprobe"
    rows = []
    for value in (int(v) for v in (args.ef if args.kind == "hnsw" else args.probes).split(",")):
        if args.kind == "hnsw":
            index.index.hnsw.efSearch = value
        else:
            index.index.nprobe = value
        index.search(queries[:10], 10)
        seconds = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            _, ids = index.search(queries, 10)
            seconds.append(time.perf_counter() - started)
        qps = args.queries / median(seconds)
        rows.append(
            {
                knob: value,
                "recall@10": recall_at_k(ids, exact_ids),
                "qps": qps,
                "speedup": qps / exact_qps,
            }
        )
    shape = (
        f"HNSW M={args.m}, efConstruction={args.ef_construction}"
        if args.kind == "hnsw"
        else f"IVF nlist={index.index.nlist}"
    )
    table = Table(
        title=f"{args.items:,} items x {args.dim}-d, {args.queries} queries; "
        f"{shape} (build {build_seconds:.0f} s)"
    )
    for column in ("index", "recall@10", "queries/s", "x exact"):
        table.add_column(column)
    table.add_row("exact (flat IP)", "1.000", f"{exact_qps:,.0f}", "1.0")
    for row in rows:
        table.add_row(
            f"{args.kind} {knob}={row[knob]}",
            f"{row['recall@10']:.3f}",
            f"{row['qps']:,.0f}",
            f"{row['speedup']:.1f}",
        )
    Console().print(table)
    path = save(
        f"faiss_{args.kind}",
        {
            "kind": args.kind,
            "items": args.items,
            "dim": args.dim,
            "queries": args.queries,
            "m": args.m,
            "ef_construction": args.ef_construction,
            "nlist": config.ivf_nlist,
            "build_seconds": build_seconds,
            "exact_qps": exact_qps,
            "rows": rows,
        },
    )
    Console().print(f"saved {path}")


if __name__ == "__main__":
    main()
