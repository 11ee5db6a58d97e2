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
import uuid
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


# --------------------------------------------------------------------------- visibility


def commit_times(settings, sink: str) -> dict[int, tuple[list[int], list[float]]]:
    """Per partition: the highest offset each write covered and when it returned (epoch s),
    in order: ``sink="bronze"`` for the Delta commits, ``"batch"`` for the Redis
    transactions (one per micro-batch)."""
    from pipelines.ingest.state import commits_log

    offsets_field, at_field = (
        ("offsets", "at") if sink == "bronze" else ("redis_offsets", "redis_at")
    )
    by_partition: dict[int, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
    for line in commits_log(settings).read_text().splitlines():
        entry = json.loads(line)
        if entry["sink"] != sink or not entry.get(offsets_field):
            continue
        at = datetime.fromisoformat(entry[at_field]).timestamp()
        for partition, offset in entry[offsets_field].items():
            offsets, times = by_partition[int(partition)]
            if offsets and offset <= offsets[-1]:
                continue  # a replayed range: the first write made it visible
            offsets.append(offset)
            times.append(at)
    return by_partition


def visible_times(settings, event_ids: set[str]) -> dict[str, tuple[float, float]]:
    """event_id -> (visible in Delta, visible in Redis), epoch seconds."""
    from encore.delta import read_lake_table
    from encore.tables import PLAY_EVENTS

    delta_commits = commit_times(settings, "bronze")
    redis_writes = commit_times(settings, "batch")
    bronze = read_lake_table(settings, PLAY_EVENTS, ["event_id", "kafka_partition", "kafka_offset"])
    result = {}
    for event_id, partition, offset in zip(
        *(bronze.column(c).to_pylist() for c in bronze.column_names), strict=True
    ):
        if event_id not in event_ids:
            continue
        offsets, deltas = delta_commits[partition]
        redis_offsets, redises = redis_writes[partition]
        result[event_id] = (
            deltas[bisect.bisect_left(offsets, offset)],
            redises[bisect.bisect_left(redis_offsets, offset)],
        )
    return result


def wait_committed(settings, minimum: int, timeout_s: float) -> None:
    from encore.delta import delta_dataset, open_delta
    from encore.tables import PLAY_EVENTS

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        delta = open_delta(settings, PLAY_EVENTS)
        if delta is not None and delta_dataset(delta).count_rows() >= minimum:
            return
        time.sleep(0.25)
    raise SystemExit(f"bronze did not reach {minimum} rows in {timeout_s:.0f} s")


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * (len(values) - 1)))]


# --------------------------------------------------------------------------- main


def fresh_ids(events: list[dict]) -> list[dict]:
    """The same events under new ids (a second, distinct load from one simulation)."""
    return [event | {"event_id": str(uuid.uuid4())} for event in events]


def bench_raw_producer(settings, events: list[dict]) -> dict:
    """kafka-python alone, configured as the API's producer, values pre-encoded, sending to
    the play-events topic (the job then drains them: the job-alone phase)."""
    from kafka import KafkaProducer

    from streaming_api.producer import producer_config

    topic = settings.kafka.play_events_topic
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


def one_run(args, events: list[dict], run: int) -> dict:
    """Every phase on a fresh throw-away platform; returns the run's figures."""
    home = Path(tempfile.mkdtemp(prefix="encore-bench-ingest-"))
    settings = isolated_settings(home, args.checkpoint_ms, args.commit_ms)
    from encore import services
    from pipelines.ingest import control

    warmup_n = 2000
    warmup, load, fresh = (
        events[:warmup_n],
        events[warmup_n : warmup_n + args.events],
        events[warmup_n + args.events :],
    )
    preloaded = fresh_ids(load)
    token = settings.api.service_token.get_secret_value()
    result: dict = {"run": run, "load_1m_before": os.getloadavg()[0]}
    server = None
    try:
        print(f"run {run}: platform: kafka, redis ...", flush=True)
        services.up(settings, ["kafka", "redis"])
        services.ensure_topics(settings)

        print(f"run {run}: ceiling: raw kafka-python producer ...", flush=True)
        result["raw_producer"] = bench_raw_producer(settings, preloaded)

        print(f"run {run}: job alone: draining {len(preloaded)} events ...", flush=True)
        started = time.monotonic()
        control.start(settings)
        job = {"flink job": control.running_pid(settings)}
        wait_committed(settings, 1, timeout_s=300)
        result["job_start_s"] = time.monotonic() - started
        first_commit, cpu_before = time.time(), cpu_by_component(job)
        wait_committed(settings, len(preloaded), timeout_s=600)
        drained, cpu_after = time.time(), cpu_by_component(job)
        job_cpu = sum(cpu_after[k] - cpu_before.get(k, 0) for k in cpu_after if k in JOB_PARTS)
        result["job_alone"] = {
            "events": len(preloaded),
            "seconds": drained - first_commit,
            "events_per_s": len(preloaded) / (drained - first_commit),
            "cpu_us_per_event": job_cpu / len(preloaded) * 1e6,
        }
        done = len(preloaded)

        print(f"run {run}: the API, warm-up ...", flush=True)
        server, base = start_api(settings)
        post_batches(base, token, [warmup[i : i + 500] for i in range(0, warmup_n, 500)], 1)
        done += warmup_n
        wait_committed(settings, done, timeout_s=300)

        print(f"run {run}: throughput: {args.events} events, {args.clients} clients ...")
        groups = job | {
            "api": server,
            "kafka": services.running_pid(settings, "kafka"),
            "redis": services.running_pid(settings, "redis"),
        }
        cpu_before = cpu_by_component(groups)
        batches = [load[i : i + args.batch_size] for i in range(0, len(load), args.batch_size)]
        accepted, first_sent, last_accepted = post_batches(base, token, batches, args.clients)
        api_s = last_accepted - first_sent
        done += len(load)
        wait_committed(settings, done, timeout_s=600)
        visible = visible_times(settings, set(accepted))
        last_visible = max(delta for delta, _ in visible.values())
        cpu_after = cpu_by_component(groups)
        e2e_s = last_visible - first_sent
        cpu = {
            name: round(cpu_after.get(name, 0) - cpu_before.get(name, 0), 2)
            for name in sorted(cpu_after)
        }
        result["throughput"] = {
            "events": len(load),
            "clients": args.clients,
            "batch_size": args.batch_size,
            "api_accept_s": api_s,
            "api_events_per_s": len(load) / api_s,
            "end_to_end_s": e2e_s,
            "end_to_end_events_per_s": len(load) / e2e_s,
            "cpu_s": cpu,
            "cpu_us_per_event": {
                name: round(seconds / len(load) * 1e6, 1) for name, seconds in cpu.items()
            },
        }

        print(f"run {run}: freshness: {args.fresh_rate:.0f} events/s, {args.fresh_seconds:.0f} s")
        size = args.fresh_batch_size
        accepted, _, _ = post_batches(
            base,
            token,
            [fresh[i : i + size] for i in range(0, len(fresh), size)],
            clients=max(2, args.clients),
            rate=args.fresh_rate,
        )
        done += len(fresh)
        wait_committed(settings, done, timeout_s=300)
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
        print(
            f"run {run}: small files: {args.quiet_rate:.0f} events/s for {args.quiet_seconds:.0f} s"
        )
        quiet = fresh_ids(load[: int(args.quiet_rate * args.quiet_seconds)])
        files_before, commits_before = bronze_files(settings), bronze_commits(settings)
        quiet_started = time.time()
        post_batches(
            base,
            token,
            [quiet[i : i + 50] for i in range(0, len(quiet), 50)],
            clients=2,
            rate=args.quiet_rate,
        )
        done += len(quiet)
        wait_committed(settings, done, timeout_s=300)
        hours = (time.time() - quiet_started) / 3600
        result["small_files"] = {
            "rate": args.quiet_rate,
            "events": len(quiet),
            "bronze_commits_per_hour": (bronze_commits(settings) - commits_before) / hours,
            "bronze_files_per_hour": (bronze_files(settings) - files_before) / hours,
            # the job before issue 14 committed every micro-batch (commit_interval_ms) that
            # held rows, one file per event date each
            "one_commit_per_micro_batch_per_hour": 3_600_000 / args.commit_ms,
        }
        result["bronze_files"] = bronze_files(settings)
        result["load_1m_after"] = os.getloadavg()[0]
    finally:
        if server is not None:
            services.down(settings, ["api"])
        control.stop(settings, timeout_s=20)
        services.down(settings, ["kafka", "redis"])
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    return result


JOB_PARTS = ("flink jvm", "flink python workers", "flink python (UDF + sink)")


def bronze_commits(settings) -> int:
    from pipelines.ingest.state import commits_log

    lines = commits_log(settings).read_text().splitlines()
    return sum(1 for line in lines if json.loads(line)["sink"] == "bronze")


def bronze_files(settings) -> int:
    from encore.delta import open_delta
    from encore.tables import PLAY_EVENTS

    delta = open_delta(settings, PLAY_EVENTS)
    return len(delta.file_uris()) if delta else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=150_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--fresh-rate", type=float, default=5000)
    parser.add_argument("--fresh-seconds", type=float, default=30)
    parser.add_argument("--fresh-batch-size", type=int, default=100)
    parser.add_argument("--quiet-rate", type=float, default=200, help="Small-files phase rate.")
    parser.add_argument("--quiet-seconds", type=float, default=60)
    parser.add_argument("--checkpoint-ms", type=int, default=2000)
    parser.add_argument("--commit-ms", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3, help="Runs; the table shows medians.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true", help="Keep the temporary ENCORE_HOME.")
    args = parser.parse_args()

    fresh_n = int(args.fresh_rate * args.fresh_seconds)
    total = args.events + fresh_n + 2000
    print(f"simulating {total} events ...", flush=True)
    events = simulated_events(total, seed=3, days=3)
    from encore.settings import Settings

    # the settings every run uses (each run's isolated_settings adds only its home and ports)
    probe = Settings(
        flink={"checkpoint_interval_ms": args.checkpoint_ms, "commit_interval_ms": args.commit_ms}
    )
    result: dict = {
        "benchmark": "ingest",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_ingest.py " + " ".join(sys.argv[1:]),
        "machine": {
            "cpus": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)),
            "python": platform.python_version(),
        },
        "settings": {
            "checkpoint_interval_ms": probe.flink.checkpoint_interval_ms,
            "commit_interval_ms": probe.flink.commit_interval_ms,
            "state_backend": probe.flink.state_backend,
            "python_execution_mode": probe.flink.python_execution_mode,
            "partitions": probe.kafka.play_events_partitions,
            "flink_parallelism": probe.flink.ingest_parallelism,
            "api_workers": probe.api.workers,
        },
        "runs": [one_run(args, events, run) for run in range(1, args.runs + 1)],
    }
    result["median"] = medians(result["runs"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    report(result, args.out)


def medians(runs: list[dict]) -> dict:
    """The median of every numeric figure across runs (same nesting)."""

    def walk(values: list) -> object:
        first = values[0]
        if isinstance(first, dict):
            return {key: walk([v[key] for v in values if key in v]) for key in first}
        if isinstance(first, int | float) and not isinstance(first, bool):
            return statistics.median(values)
        return first

    return walk(runs)


def report(result: dict, out: Path) -> None:
    """Each figure per run and its median; ratios are computed within each run."""
    from rich.console import Console
    from rich.table import Table

    runs = result["runs"]
    table = Table(
        "measure",
        *(f"run {r['run']}" for r in runs),
        "median",
        title=f"ingestion benchmark ({result['machine']['cpus_usable']} usable cores)",
    )

    def row(label: str, figure, fmt: str = "{:,.0f}") -> None:
        values = [figure(r) for r in runs]
        median = statistics.median(values)
        table.add_row(label, *(fmt.format(v) for v in values), fmt.format(median))

    raw = lambda r: r["raw_producer"]["events_per_s"]  # noqa: E731
    row("raw kafka-python producer (ceiling), events/s", raw)
    row("job alone, draining a backlog, events/s", lambda r: r["job_alone"]["events_per_s"])
    row("job alone, CPU µs per event", lambda r: r["job_alone"]["cpu_us_per_event"], "{:.0f}")
    put = lambda r: r["throughput"]  # noqa: E731
    row("API accept, events/s", lambda r: put(r)["api_events_per_s"])
    row("  API / raw producer", lambda r: put(r)["api_events_per_s"] / raw(r), "{:.0%}")
    row("end to end: API -> Delta, events/s", lambda r: put(r)["end_to_end_events_per_s"])
    e2e = lambda r: put(r)["end_to_end_events_per_s"]  # noqa: E731
    row("  end to end / API", lambda r: e2e(r) / put(r)["api_events_per_s"], "{:.0%}")
    fresh = lambda r: r["freshness"]  # noqa: E731
    rate = runs[0]["freshness"]["rate"]
    row(f"freshness to Delta at {rate:,.0f}/s, p50 s", lambda r: fresh(r)["delta_p50_s"], "{:.2f}")
    row("  p95 s", lambda r: fresh(r)["delta_p95_s"], "{:.2f}")
    row(f"freshness to Redis at {rate:,.0f}/s, p50 s", lambda r: fresh(r)["redis_p50_s"], "{:.2f}")
    row("  p95 s", lambda r: fresh(r)["redis_p95_s"], "{:.2f}")
    row("job start-up to first commit, s", lambda r: r["job_start_s"], "{:.1f}")
    quiet = runs[0]["small_files"]["rate"]
    files = lambda r: r["small_files"]  # noqa: E731
    row(f"bronze commits per hour at {quiet:.0f}/s", lambda r: files(r)["bronze_commits_per_hour"])
    row(f"bronze files per hour at {quiet:.0f}/s", lambda r: files(r)["bronze_files_per_hour"])
    row(
        "  (one commit per micro-batch would make)",
        lambda r: files(r)["one_commit_per_micro_batch_per_hour"],
    )
    row("bronze files at the end", lambda r: r["bronze_files"])
    for name in sorted(runs[0]["throughput"]["cpu_us_per_event"]):
        row(
            f"CPU µs/event end to end: {name}",
            lambda r, name=name: r["throughput"]["cpu_us_per_event"].get(name, 0),
            "{:.0f}",
        )
    row(
        "CPU µs/event end to end: all",
        lambda r: sum(r["throughput"]["cpu_us_per_event"].values()),
        "{:.0f}",
    )
    row("load average (1 min) before", lambda r: r["load_1m_before"], "{:.1f}")
    row("load average (1 min) after", lambda r: r.get("load_1m_after", float("nan")), "{:.1f}")
    Console().print(table)
    print(f"settings: {result['settings']}")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
