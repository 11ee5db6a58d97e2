"""API accept vs the raw kafka-python producer: the event path's share of its ceiling.

One command, on a throw-away Kafka (a temporary ENCORE_HOME on free ports)::

    .venv/bin/python benchmarks/bench_api_accept.py            # settings.api.workers
    .venv/bin/python benchmarks/bench_api_accept.py --workers 1

Each of ``--rounds`` rounds (default 3) sends the same simulated events twice on the same
broker: with the raw kafka-python producer (the API's producer configuration, values
pre-encoded, one process: the ceiling ``bench_ingest.py`` reports) and through
``POST /api/v1/playback-events`` of the registered ``api`` service (``--clients`` clients,
batches of ``--batch-size``, the service token). It prints each round and the medians of
events/s, the API's share of the raw producer (per round, then the median) and the CPU the
API processes spent per event, and saves JSON to ``benchmarks/results/api_accept.json``.

Clients, API workers and the broker share the machine's cores: compare the ratio within a
run, not absolute events/s across machines or loads. To measure another checkout (the code
before a change), run this file with ``PYTHONPATH=<that checkout>``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench_api import (
    api_settings,
    bench_api,
    bench_raw_producer,
    free_port,
    make_topic,
    wait_ready,
)
from simulated_events import simulated_events

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "api_accept.json"


def private_settings(home: Path):
    """Settings of a Kafka of our own under ``home`` on free ports (exported to the
    environment, so that the API process agrees)."""
    os.environ.update(
        {
            "ENCORE_HOME": str(home),
            "ENCORE_KAFKA__PORT": str(free_port()),
            "ENCORE_KAFKA__CONTROLLER_PORT": str(free_port()),
            "ENCORE_API__PORT": str(free_port()),
        }
    )
    from encore.settings import get_settings

    get_settings.cache_clear()
    return get_settings()


def run_rounds(settings, args: argparse.Namespace) -> list[dict]:
    """Raw producer then API, ``args.rounds`` times, on the broker of ``settings``."""
    from encore import services

    partitions = settings.kafka.play_events_partitions
    events = simulated_events(args.events, seed=11, days=2)
    size = args.batch_size
    bodies = [
        json.dumps({"events": events[i : i + size]}, separators=(",", ":")).encode()
        for i in range(0, len(events) - size + 1, size)
    ]
    topic = make_topic(settings, partitions)
    served = api_settings(
        settings.model_copy(
            update={"kafka": settings.kafka.model_copy(update={"play_events_topic": topic})}
        ),
        args.workers or settings.api.workers,
    )
    token = served.api.service_token.get_secret_value()
    rounds = []
    with services.running(served, "api", instance="bench-api-accept"):
        pid = services.running_pid(served, "bench-api-accept")
        base = f"http://{served.api.host}:{served.api.port}"
        wait_ready(base)
        for n in range(1, args.rounds + 1):
            print(f"round {n}: raw producer ...", file=sys.stderr, flush=True)
            raw = bench_raw_producer(settings, make_topic(settings, partitions), events)
            print(f"round {n}: API ...", file=sys.stderr, flush=True)
            api = bench_api(pid, base, token, bodies, size, args.clients)
            rounds.append(
                {
                    "raw": raw,
                    "api": api,
                    "ratio": api["events_per_s"] / raw["events_per_s"],
                }
            )
    return rounds


def summary(rounds: list[dict]) -> dict:
    return {
        "raw_events_per_s": statistics.median(r["raw"]["events_per_s"] for r in rounds),
        "api_events_per_s": statistics.median(r["api"]["events_per_s"] for r in rounds),
        "ratio": statistics.median(r["ratio"] for r in rounds),
        "raw_cpu_us_per_event": statistics.median(r["raw"]["cpu_us_per_event"] for r in rounds),
        "api_cpu_us_per_event": statistics.median(r["api"]["cpu_us_per_event"] for r in rounds),
    }


def report(result: dict) -> None:
    head = f"{'round':<8} {'raw ev/s':>10} {'API ev/s':>10} {'API/raw':>8} {'API cpu us/ev':>14}"
    print(f"\n{head}  (workers {result['workers']}, {result['clients']} clients)")
    for n, r in enumerate(result["rounds"], 1):
        print(
            f"{n:<8} {r['raw']['events_per_s']:>10,.0f} {r['api']['events_per_s']:>10,.0f} "
            f"{r['ratio']:>8.0%} {r['api']['cpu_us_per_event']:>14.1f}"
        )
    m = result["median"]
    print(
        f"{'median':<8} {m['raw_events_per_s']:>10,.0f} {m['api_events_per_s']:>10,.0f} "
        f"{m['ratio']:>8.0%} {m['api_cpu_us_per_event']:>14.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=100_000, help="events per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=0, help="0: settings.api.workers")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from encore import services

    home = Path(tempfile.mkdtemp(prefix="encore-bench-api-accept-"))
    settings = private_settings(home)
    load_before = os.getloadavg()[0]
    try:
        services.up(settings, ["kafka"])
        rounds = run_rounds(settings, args)
    except Exception:
        for log in sorted((home / "logs").glob("bench-api-accept*.log")):
            print(f"--- {log.name}\n{log.read_text()[-3000:]}", file=sys.stderr)
        raise
    finally:
        services.down(settings, ["kafka"])
        shutil.rmtree(home, ignore_errors=True)
    result = {
        "benchmark": "api_accept",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "code": str(Path(services.__file__).resolve().parent.parent.parent),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_1m_before": load_before,
        "load_1m_after": os.getloadavg()[0],
        "workers": args.workers or settings.api.workers,
        "clients": args.clients,
        "batch_size": args.batch_size,
        "rounds": rounds,
        "median": summary(rounds),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    report(result)
    print(f"\nsaved {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
