"""ALS against popularity on a time split of simulated plays: are the simulator's tastes learnable?

The catalog is the one ``encore catalog load`` writes (built in memory from the same
generator and seed, no database), the plays come from the traffic simulator
(``generate_events``, in-process, no Kafka), and the interactions are what
``models.datasets.load_lake`` builds from bronze play events (every event of a (user, song)
counts, skips included). The protocol is ``encore evaluate``'s on the lake: a time split
(the last ``--test-fraction`` of plays; test = songs a listener first played after the
cut), each model tuned on a validation split of the training part (Optuna on NDCG@10),
refitted and scored once with full ranking. Recall@50 is scored on the same split with
the same tuned parameters.

    .venv/bin/python benchmarks/eval_simulated.py [--users 3000] [--days 14] [--artists 2000]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import scipy.sparse as sp
from bench_models_common import save
from rich.console import Console
from rich.table import Table

from models import create_recommender
from models.evaluation import evaluate
from models.interactions import Events, InteractionDataset
from models.protocol import ProtocolConfig, run_protocol
from models.splits import time_split
from pipelines.simulation import Catalog, SimulationConfig, generate_events
from streaming_api.catalog.synthetic import synthetic_songs

MODELS = ("pop", "als")


def catalog_in_memory(artists: int, songs_per_artist: int, seed: int) -> Catalog:
    """The songs ``load_catalog`` would write for these options, as the simulator reads them."""
    return Catalog.from_records(synthetic_songs(artists, songs_per_artist, seed))


def simulated_dataset(events: list[dict]) -> InteractionDataset:
    """Events as ``load_lake`` turns bronze play events into a dataset."""
    user_ids, users = np.unique([e["user_id"] for e in events], return_inverse=True)
    item_ids, items = np.unique([e["song_id"] for e in events], return_inverse=True)
    times = np.array([datetime.fromisoformat(e["start_time"]).timestamp() for e in events])
    user_items = sp.csr_matrix(
        (np.ones(len(users), np.float32), (users, items)), shape=(len(user_ids), len(item_ids))
    )
    user_items.sum_duplicates()
    return InteractionDataset(
        name="simulated",
        user_items=user_items,
        user_ids=user_ids,
        item_ids=item_ids,
        events=Events(users.astype(np.int64), items.astype(np.int64), times),
        lineage={"source": "pipelines.simulation.generate_events", "events": len(events)},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--artists", type=int, default=2000)
    parser.add_argument("--songs-per-artist", type=int, default=12)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--trials", type=float, default=0.4, help="Optuna trials multiplier")
    args = parser.parse_args()
    console = Console(stderr=True)

    started = time.perf_counter()
    catalog = catalog_in_memory(args.artists, args.songs_per_artist, args.seed)
    config = SimulationConfig(
        seed=args.seed,
        users=args.users,
        start=datetime(2026, 11, 1, tzinfo=UTC),
        duration=timedelta(days=args.days),
    )
    events = list(generate_events(config, catalog))
    dataset = simulated_dataset(events)
    console.print(
        f"simulated {len(events):,} events over {args.days} days, {len(catalog):,} catalog "
        f"songs: {dataset.describe()} ({time.perf_counter() - started:.0f} s)"
    )
    protocol = ProtocolConfig(
        models=list(MODELS),
        seeds=[0],
        split="time",
        test_fraction=args.test_fraction,
        trials=args.trials,
    )
    results = run_protocol(dataset, protocol, report=console.print)
    train, test, _ = time_split(dataset.events, dataset.shape, args.test_fraction)
    for name in MODELS:
        model = create_recommender(name, **results["params"][name][0]).fit(train)
        results["models"][name]["recall@50"] = evaluate(model, train, test, 50)["recall@50"]

    table = Table("model", "ndcg@10", "recall@10", "recall@50", "hit_rate@10", "coverage@10")
    for name in MODELS:
        m = results["models"][name]
        table.add_row(
            name,
            f"{m['ndcg@10']:.4f}",
            f"{m['recall@10']:.4f}",
            f"{m['recall@50']:.4f}",
            f"{m['hit_rate@10']:.4f}",
            f"{m['coverage@10']:.4f}",
        )
    Console().print(table)
    path = save(
        "eval_simulated",
        {
            "command": "benchmarks/eval_simulated.py "
            + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
            "events": len(events),
            "catalog_songs": len(catalog),
            "results": results,
        },
    )
    console.print(f"saved {path} ({time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
