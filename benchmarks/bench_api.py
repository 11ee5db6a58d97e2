"""Throughput of the playback-event API against a real Kafka, beside the raw producer ceiling.

Starts ``encore api`` as a subprocess (one or more uvicorn workers) writing to a fresh
benchmark topic on the Kafka of the current settings (``encore up kafka`` first), posts
pre-built batches of simulated events from N concurrent clients, and reports events/s and
request latency. In the same run it measures the raw kafka-python producer (same acks,
idempotence, linger and batch size; values pre-encoded) sending the same events: the ceiling
the API cannot beat on this broker. Prints a table, saves JSON (default
``benchmarks/results/api.json``). Clients run on the same machine and take CPU from the API,
as they would not in production; the figures are a lower bound.

    ENCORE_HOME=/tmp/bench ENCORE_KAFKA__PORT=39092 ... .venv/bin/encore up kafka
    ENCORE_HOME=/tmp/bench ENCORE_KAFKA__PORT=39092 ... .venv/bin/python benchmarks/bench_api.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from simulated_events import simulated_events

from encore import services
from encore.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parent.parent
ENCORE = str(Path(sys.executable).parent / "encore")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` and its children (uvicorn workers), all threads."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        this, parent = int(stat.parent.name), int(fields[1])
        if this == pid or parent == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def make_topic(settings: Settings, partitions: int) -> str:
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = f"bench-api-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.servers)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()
    return topic


def drop_topic(settings: Settings, topic: str) -> None:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.servers)
    try:
        admin.delete_topics([topic])
    finally:
        admin.close()


def bench_raw_producer(settings: Settings, topic: str, events: list[dict]) -> dict:
    """kafka-python alone, configured as the API's producer, values pre-encoded."""
    from kafka import KafkaProducer

    from streaming_api.producer import producer_config

    values = [json.dumps(e, separators=(",", ":")).encode() for e in events]
    keys = [e["user_id"].encode() for e in events]
    producer = KafkaProducer(**producer_config(settings))
    try:
        cpu = time.process_time()
        started = time.perf_counter()
        futures = [producer.send(topic, value=v, key=k) for v, k in zip(values, keys, strict=True)]
        for future in futures:
            future.get(timeout=60)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
    finally:
        producer.close()
    return {
        "events": len(events),
        "seconds": elapsed,
        "events_per_s": len(events) / elapsed,
        "cpu_us_per_event": 1e6 * cpu / len(events),
        "load_1m_after": os.getloadavg()[0],
    }


def api_settings(settings: Settings, workers: int) -> Settings:
    """The benchmark's API: a free port, ``workers`` uvicorn workers, development secrets."""
    api = settings.api.model_copy(update={"port": free_port(), "workers": workers})
    return settings.model_copy(update={"api": api, "development": True})


def wait_ready(base: str, timeout_s: float = 60) -> None:
    """Until the API's Kafka producer is connected, so no run pays for it (the benchmark
    runs no PostgreSQL: readiness as a whole stays 503, its Kafka check is what counts)."""
    deadline = time.monotonic() + timeout_s
    url = f"{base}/api/v1/health/ready"
    while httpx.get(url, timeout=10).json()["checks"].get("kafka") != "ok":
        if time.monotonic() > deadline:
            raise SystemExit(f"the API at {base} was not ready within {timeout_s:.0f} s")
        time.sleep(0.3)


def bench_api(
    server_pid: int, base: str, token: str, bodies: list[bytes], batch_size: int, clients: int
) -> dict:
    """Post every body once from ``clients`` threads; 202s only count."""
    url = f"{base}/api/v1/playback-events"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    cursor = iter(range(len(bodies)))

    def client() -> None:
        with httpx.Client(timeout=60) as http:
            while True:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                sent = time.perf_counter()
                answer = http.post(url, content=bodies[index], headers=headers)
                took = time.perf_counter() - sent
                with lock:
                    if answer.status_code == 202:
                        latencies.append(took)
                    else:
                        failures.append(f"{answer.status_code}: {answer.text[:200]}")

    # warm up: connections, the producer's metadata, the first batches
    with httpx.Client(timeout=60) as http:
        for body in bodies[: 2 * clients]:
            http.post(url, content=body, headers=headers).raise_for_status()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    cpu = cpu_seconds(server_pid)
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(server_pid) - cpu
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, first: {failures[0]}")
    latencies.sort()
    events = len(latencies) * batch_size
    return {
        "events": events,
        "requests": len(latencies),
        "seconds": elapsed,
        "events_per_s": events / elapsed,
        # CPU the API processes spent per event: unlike events/s, not skewed by other load
        "cpu_us_per_event": 1e6 * cpu / events,
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
        # other work on the machine takes CPU from both the API and the broker
        "load_1m_after": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="events per API run")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--clients", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/api.json")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    settings = get_settings()
    partitions = settings.kafka.play_events_partitions
    topic = make_topic(settings, partitions)
    bench_settings = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"play_events_topic": topic})}
    )
    print(f"generating {args.events:,} simulated events ...", file=sys.stderr)
    events = simulated_events(args.events, seed=11, days=2)
    bodies = [
        json.dumps({"events": events[i : i + args.batch_size]}, separators=(",", ":")).encode()
        for i in range(0, len(events) - args.batch_size + 1, args.batch_size)
    ]
    rows = []
    try:
        print("raw kafka-python producer ...", file=sys.stderr)
        raw = bench_raw_producer(bench_settings, topic, events)
        rows.append({"what": "raw kafka-python producer", **raw})
        for workers in args.workers:
            served = api_settings(bench_settings, workers)
            instance = f"bench-api-{workers}"
            # the registered api service, through the supervisor (logs/bench-api-N.log)
            with services.running(served, "api", instance=instance):
                server_pid = services.running_pid(served, instance)
                base = f"http://{served.api.host}:{served.api.port}"
                wait_ready(base)
                for clients in args.clients:
                    print(f"API: {workers} worker(s), {clients} clients ...", file=sys.stderr)
                    result = bench_api(
                        server_pid,
                        base,
                        settings.api.service_token.get_secret_value(),
                        bodies,
                        args.batch_size,
                        clients,
                    )
                    rows.append(
                        {
                            "what": f"API, {workers} worker(s), {clients} clients",
                            "workers": workers,
                            "clients": clients,
                            **result,
                        }
                    )
    finally:
        drop_topic(settings, topic)

    print(
        f"\n{'what':<34} {'events':>9} {'s':>7} {'events/s':>10} {'p50 ms':>8} {'p95 ms':>8}"
        f" {'cpu us/ev':>9} {'load':>5}"
    )
    for row in rows:
        p50 = f"{row['p50_ms']:.0f}" if "p50_ms" in row else "-"
        p95 = f"{row['p95_ms']:.0f}" if "p95_ms" in row else "-"
        print(
            f"{row['what']:<34} {row['events']:>9,} {row['seconds']:>7.2f} "
            f"{row['events_per_s']:>10,.0f} {p50:>8} {p95:>8} "
            f"{row['cpu_us_per_event']:>9.1f} {row['load_1m_after']:>5.1f}"
        )
    result = {
        "benchmark": "api",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_1m_before": load_before,
        },
        "batch_size": args.batch_size,
        "partitions": partitions,
        "producer": {
            k: v for k, v in bench_settings.api.model_dump().items() if k.startswith("produce")
        },
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nsaved {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
