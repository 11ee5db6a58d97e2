"""End-to-end ingestion benchmark: API -> Kafka -> Flink -> Delta bronze (and Redis).

One command, on its own throw-away platform (Kafka and Redis in a temporary ENCORE_HOME on
free ports; the API runs without PostgreSQL, posting with the service token)::

    .venv/bin/python benchmarks/bench_ingest.py

Measures, in one run:

1. **ceiling**: the raw kafka-python producer (the API's producer configuration, values
   pre-encoded) sending the same simulated events to the same broker;
2. **throughput**: ``--events`` simulated events posted to ``POST /api/v1/playback-events``
   as fast as ``--clients`` concurrent clients can (batches of ``--batch-size``), with the
   ingestion job running; end-to-end events/s = events / (last row committed in Delta -
   first request sent). CPU seconds per process (API, Flink JVM, Flink Python workers,
   Kafka, Redis, this client) over the phase show what bounds it;
3. **freshness**: ``--fresh-rate`` events/s paced for ``--fresh-seconds``; for every event,
   accepted (its 202 arrived) -> visible in Delta (the commit that holds its Kafka offset
   returned) and -> visible in Redis (that batch's Redis transaction returned), p50/p95.
   Commit times come from the job's commit log (``logs/ingest-commits.jsonl``).

Prints a table and saves JSON to ``benchmarks/results/ingest.json``. Everything shares the
machine's cores (clients included), so the figures are a lower bound for each part.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import httpx
from simulated_events import simulated_events

ROOT = Path(__file__).resolve().parent.parent
ENCORE = str(Path(sys.executable).parent / "encore")
RESULTS = ROOT / "benchmarks" / "results" / "ingest.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def isolated_settings(home: Path, checkpoint_ms: int, commit_ms: int):
    """Settings of a private platform under ``home``; exported so subprocesses agree."""
    os.environ.update(
        {
            "ENCORE_HOME": str(home),
            "ENCORE_KAFKA__PORT": str(free_port()),
            "ENCORE_KAFKA__CONTROLLER_PORT": str(free_port()),
            "ENCORE_REDIS__PORT": str(free_port()),
            "ENCORE_POSTGRES__PORT": str(free_port()),
            "ENCORE_MLFLOW__PORT": str(free_port()),
            "ENCORE_API__PORT": str(free_port()),
            "ENCORE_FLINK__CHECKPOINT_INTERVAL_MS": str(checkpoint_ms),
            "ENCORE_FLINK__COMMIT_INTERVAL_MS": str(commit_ms),
        }
    )
    from encore.settings import get_settings

    get_settings.cache_clear()
    return get_settings()


# --------------------------------------------------------------------------- processes


def _proc_stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return ""


def cpu_by_component(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user+system, all threads) of each process group, the Flink job's split
    into its JVM and its Python workers."""
    tick = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = defaultdict(float)
    by_pgid = {pgid: name for name, pgid in groups.items()}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _proc_stat(int(entry.name))
        if fields is None or int(fields[2]) not in by_pgid:
            continue
        name = by_pgid[int(fields[2])]
        if name == "flink job":
            command = _comm(int(entry.name))
            if "beam_boot" in command or "fn_execution" in command:
                name = "flink python workers"
            elif "java" in command:
                name = "flink jvm"
            else:
                # a local PyFlink job runs its Python functions in the driver (loopback)
                name = "flink python (UDF + sink)"
        totals[name] += (int(fields[11]) + int(fields[12])) / tick
    totals["benchmark client"] = time.process_time()
    return dict(totals)


def start_api(settings) -> tuple[int, str]:
    """The registered ``api`` service through the supervisor (``services.down`` stops it)."""
    from encore import services, supervisor

    api = services.registry()["api"]
    pid = supervisor.start(
        settings.home,
        api.name,
        api.command(settings),
        env={**os.environ, **api.env(settings), "ENCORE_DEVELOPMENT": "true"},
    )
    supervisor.wait_healthy(settings.home, api.name, lambda: api.healthy(settings), pid, 90)
    return pid, api.address(settings)


# --------------------------------------------------------------------------- load


def post_batches(
    base: str,
    token: str,
    batches: list[list[dict]],
    clients: int,
    rate: float | None = None,
) -> tuple[dict[str, float], float, float]:
    """Post each batch once; returns event_id -> accept time (epoch s), first send, last ack.

    With ``rate`` (events/s) batches are released on schedule (an open loop, as real
    traffic), otherwise as fast as the clients get answers (a closed loop).
    """
    url = f"{base}/api/v1/playback-events"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    bodies = [json.dumps({"events": b}, separators=(",", ":")).encode() for b in batches]
    accepted: dict[str, float] = {}
    failures: list[str] = []
    lock = threading.Lock()
    cursor = iter(range(len(bodies)))
    started = time.time()
    batch_events = len(batches[0])

    def client() -> None:
        with httpx.Client(timeout=60) as http:
            while True:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                if rate:
                    delay = started + index * batch_events / rate - time.time()
                    if delay > 0:
                        time.sleep(delay)
                for attempt in range(5):
                    answer = http.post(url, content=bodies[index], headers=headers)
                    if answer.status_code != 503:
                        break
                    time.sleep(0.2 * 2**attempt)
                done = time.time()
                with lock:
                    if answer.status_code == 202:
                        for event in batches[index]:
                            accepted[event["event_id"]] = done
                    else:
                        failures.append(f"{answer.status_code}: {answer.text[:200]}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, first: {failures[0]}")
    return accepted, started, max(accepted.values())


def bench_raw_producer(settings, events: list[dict]) -> dict:
    """kafka-python alone, configured as the API's producer, values pre-encoded."""
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    from streaming_api.producer import producer_config

    topic = "bench-raw"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.servers)
    try:
        admin.create_topics(
            [NewTopic(topic, settings.kafka.play_events_partitions, replication_factor=1)]
        )
    finally:
        admin.close()
    values = [json.dumps(e, separators=(",", ":")).encode() for e in events]
    keys = [e["user_id"].encode() for e in events]
    producer = KafkaProducer(**producer_config(settings))
    try:
        started = time.perf_counter()
        futures = [producer.send(topic, value=v, key=k) for v, k in zip(values, keys, strict=True)]
        for future in futures:
            future.get(timeout=120)
        elapsed = time.perf_counter() - started
    finally:
        producer.close()
    return {"events": len(events), "seconds": elapsed, "events_per_s": len(events) / elapsed}


# --------------------------------------------------------------------------- visibility


def commit_times(settings) -> dict[int, tuple[list[int], list[float], list[float]]]:
    """Per partition: the highest offset of each bronze commit, when the commit returned,
    and when that batch's Redis transaction returned (epoch s), in commit order."""
    from pipelines.ingest.control import commits_log

    by_partition: dict[int, tuple[list[int], list[float], list[float]]] = defaultdict(
        lambda: ([], [], [])
    )
    for line in commits_log(settings).read_text().splitlines():
        entry = json.loads(line)
        if entry["sink"] != "bronze" or not entry.get("offsets"):
            continue
        delta_at = datetime.fromisoformat(entry["at"]).timestamp()
        redis_at = datetime.fromisoformat(entry["redis_at"]).timestamp()
        for partition, offset in entry["offsets"].items():
            offsets, deltas, redises = by_partition[int(partition)]
            offsets.append(offset)
            deltas.append(delta_at)
            redises.append(redis_at)
    return by_partition


def visible_times(settings, event_ids: set[str]) -> dict[str, tuple[float, float]]:
    """event_id -> (visible in Delta, visible in Redis), epoch seconds."""
    from deltalake import DeltaTable

    from encore.tables import PLAY_EVENTS

    commits = commit_times(settings)
    bronze = DeltaTable(PLAY_EVENTS.path(settings)).to_pyarrow_table(
        columns=["event_id", "kafka_partition", "kafka_offset"]
    )
    result = {}
    for event_id, partition, offset in zip(
        *(bronze.column(c).to_pylist() for c in bronze.column_names), strict=True
    ):
        if event_id not in event_ids:
            continue
        offsets, deltas, redises = commits[partition]
        i = bisect.bisect_left(offsets, offset)
        result[event_id] = (deltas[i], redises[i])
    return result


def wait_committed(settings, minimum: int, timeout_s: float) -> None:
    from deltalake import DeltaTable

    from encore.tables import PLAY_EVENTS

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if DeltaTable(PLAY_EVENTS.path(settings)).to_pyarrow_dataset().count_rows() >= minimum:
                return
        except Exception:  # the job has not created the table yet
            pass
        time.sleep(0.25)
    raise SystemExit(f"bronze did not reach {minimum} rows in {timeout_s:.0f} s")


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * (len(values) - 1)))]


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=150_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--fresh-rate", type=float, default=2000)
    parser.add_argument("--fresh-seconds", type=float, default=30)
    parser.add_argument("--fresh-batch-size", type=int, default=100)
    parser.add_argument("--checkpoint-ms", type=int, default=2000)
    parser.add_argument("--commit-ms", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true", help="Keep the temporary ENCORE_HOME.")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="encore-bench-ingest-"))
    settings = isolated_settings(home, args.checkpoint_ms, args.commit_ms)
    from encore import services
    from pipelines.ingest import control

    warmup_n = 2000
    fresh_n = int(args.fresh_rate * args.fresh_seconds)
    print(f"simulating {args.events + fresh_n + warmup_n} events ...", flush=True)
    events = simulated_events(args.events + fresh_n + warmup_n, seed=3, days=3)
    warmup, load, fresh = (
        events[:warmup_n],
        events[warmup_n : warmup_n + args.events],
        events[warmup_n + args.events :],
    )
    token = settings.api.service_token.get_secret_value()
    load_before = os.getloadavg()[0]
    result: dict = {
        "benchmark": "ingest",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_ingest.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_1m_before": load_before,
        "settings": {
            "checkpoint_interval_ms": settings.flink.checkpoint_interval_ms,
            "commit_interval_ms": settings.flink.commit_interval_ms,
            "state_backend": settings.flink.state_backend,
            "partitions": settings.kafka.play_events_partitions,
            "flink_parallelism": 1,
        },
    }
    server = None
    try:
        print("platform: kafka, redis ...", flush=True)
        services.up(settings, ["kafka", "redis"])
        services.ensure_topics(settings)

        print("ceiling: raw kafka-python producer ...", flush=True)
        result["raw_producer"] = bench_raw_producer(settings, load)

        print("starting the ingestion job and the API ...", flush=True)
        started = time.monotonic()
        control.start(settings)
        server, base = start_api(settings)
        post_batches(base, token, [warmup[i : i + 500] for i in range(0, warmup_n, 500)], 1)
        wait_committed(settings, warmup_n, timeout_s=300)
        result["job_start_s"] = time.monotonic() - started

        print(f"throughput: {args.events} events, {args.clients} clients ...", flush=True)
        groups = {
            "api": server,
            "flink job": control.running_pid(settings),
            "kafka": services.running_pid(settings, "kafka"),
            "redis": services.running_pid(settings, "redis"),
        }
        cpu_before = cpu_by_component(groups)
        batches = [load[i : i + args.batch_size] for i in range(0, len(load), args.batch_size)]
        accepted, first_sent, last_accepted = post_batches(base, token, batches, args.clients)
        api_s = last_accepted - first_sent
        wait_committed(settings, warmup_n + len(load), timeout_s=600)
        visible = visible_times(settings, set(accepted))
        last_visible = max(delta for delta, _ in visible.values())
        cpu_after = cpu_by_component(groups)
        e2e_s = last_visible - first_sent
        result["throughput"] = {
            "events": len(load),
            "clients": args.clients,
            "batch_size": args.batch_size,
            "api_accept_s": api_s,
            "api_events_per_s": len(load) / api_s,
            "end_to_end_s": e2e_s,
            "end_to_end_events_per_s": len(load) / e2e_s,
            "cpu_s": {
                name: round(cpu_after.get(name, 0) - cpu_before.get(name, 0), 2)
                for name in sorted(cpu_after)
            },
        }

        print(
            f"freshness: {args.fresh_rate:.0f} events/s for {args.fresh_seconds:.0f} s ...",
            flush=True,
        )
        size = args.fresh_batch_size
        accepted, _, _ = post_batches(
            base,
            token,
            [fresh[i : i + size] for i in range(0, len(fresh), size)],
            clients=max(2, args.clients),
            rate=args.fresh_rate,
        )
        wait_committed(settings, warmup_n + len(load) + len(fresh), timeout_s=300)
        visible = visible_times(settings, set(accepted))
        to_delta = [visible[e][0] - accepted[e] for e in accepted]
        to_redis = [visible[e][1] - accepted[e] for e in accepted]
        result["freshness"] = {
            "rate": args.fresh_rate,
            "events": len(accepted),
            "batch_size": size,
            "delta_p50_s": statistics.median(to_delta),
            "delta_p95_s": percentile(to_delta, 0.95),
            "redis_p50_s": statistics.median(to_redis),
            "redis_p95_s": percentile(to_redis, 0.95),
        }
        result["load_1m_after"] = os.getloadavg()[0]
    finally:
        if server is not None:
            services.down(settings, ["api"])
        control.stop(settings, timeout_s=20)
        services.down(settings, ["kafka", "redis"])
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    report(result, args.out)


def report(result: dict, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("measure", "value", title="ingestion benchmark")
    raw, put, fresh = result["raw_producer"], result["throughput"], result["freshness"]
    table.add_row("raw kafka-python producer (ceiling)", f"{raw['events_per_s']:,.0f} events/s")
    table.add_row(
        f"API accept ({put['clients']} clients, batches of {put['batch_size']})",
        f"{put['api_events_per_s']:,.0f} events/s",
    )
    table.add_row(
        "end to end: API -> rows committed in Delta",
        f"{put['end_to_end_events_per_s']:,.0f} events/s ({put['events']:,} events)",
    )
    table.add_row(
        f"freshness to Delta at {fresh['rate']:.0f} events/s (p50 / p95)",
        f"{fresh['delta_p50_s']:.2f} s / {fresh['delta_p95_s']:.2f} s",
    )
    table.add_row(
        "freshness to Redis (p50 / p95)",
        f"{fresh['redis_p50_s']:.2f} s / {fresh['redis_p95_s']:.2f} s",
    )
    settings = result["settings"]
    table.add_row(
        "checkpoint / commit interval",
        f"{settings['checkpoint_interval_ms']} ms / {settings['commit_interval_ms']} ms",
    )
    table.add_row("job start-up (to first rows visible)", f"{result['job_start_s']:.1f} s")
    for name, seconds in put["cpu_s"].items():
        table.add_row(f"CPU during throughput phase: {name}", f"{seconds:.1f} s")
    table.add_row(
        "load average (1 min) before / after",
        f"{result['load_1m_before']:.1f} / {result.get('load_1m_after', float('nan')):.1f}",
    )
    Console().print(table)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
