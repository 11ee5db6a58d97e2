"""Ingestion at scale: N events (default 10 million) through the ingestion job, over time.

One command, on its own throw-away platform (Kafka and Redis in a temporary ENCORE_HOME on
free ports, as ``bench_ingest.py``)::

    .venv/bin/python benchmarks/bench_ingest_scale.py [--events 10000000] [--rate 0]

Load: N valid v1 events made fast from a template of ``--template`` simulated events
(``simulated_events``): each copy gets a counter-based event id (a per-run uuid4 prefix, the
counter as the last 12 digits, so the ids are provably N distinct ones) and a start time
that advances evenly over the last ``--span-hours`` (24) with the event's index, keeping the
template's end - start (so ``ms_played`` stays consistent). The values are the API's exact
bytes (pydantic's JSON), keyed by ``user_id``. They are sent with kafka-python using the
API's ``producer_config`` (acks=all, idempotence, its partitioner, its compression: "none",
since no lz4/zstd/snappy codec is installed in the core venv), with a bulk loader's batching
and timeouts (``bulk_producer_config``).

Two modes:

- **backlog** (``--rate 0``, the default): the topic is filled with all N events first, then
  the job starts and is measured draining the backlog (its ceiling, nothing else running);
- **rate** (``--rate R``): the job starts and a producer thread sends at R events/s meanwhile
  (an open loop: it falls behind only if it cannot send that fast); the job is measured
  keeping up (backlog and lag stay bounded) or not. The job starts reading from the earliest
  offset, so what was sent during its start-up (~30 s alone, more under load) is a small
  backlog first; choose N well above R x start-up.

Sampled every ``--sample-s`` (5) seconds: events committed to bronze (the job's commit log),
consumer-group lag (a checkpoint covers everything below it), Flink checkpoints (bytes and
duration from the Flink log's "Completed checkpoint" lines; each ``chk-N`` folder's size and
the checkpoint folder's total on disk), RSS and CPU seconds of each process (the Flink JVM,
which embeds the sink's Python in thread mode; the PyFlink client; Kafka; Redis; this
process, which is the producer), the sink's de-dup id count (``recent_ids``) and bronze's
Delta version. At the end: bronze's file count and Delta log, and the proof that bronze holds
exactly the N event ids (row count, distinct count, the counters 0..N-1), read through
``encore.delta``.

The job measured is the checkout's (``encore ingest start``'s command, default settings but
the checkpoint and micro-batch intervals); its commit log is read in both shapes it has had
(``read_commit_line``). Prints a per-minute table and the totals (rich) and saves everything,
the full series included, to ``benchmarks/results/ingest_scale.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from bench_ingest import cpu_by_component, isolated_settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "ingest_scale.json"

# cpu_by_component's names, as they read in thread mode (the sink runs inside the JVM)
COMPONENT_NAMES = {
    "flink jvm": "flink jvm (+ python sink)",
    "flink python (UDF + sink)": "pyflink client",
    "flink python workers": "flink python workers",
    "benchmark client": "benchmark (producer)",
}


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class TemplateEvent:
    """One simulated event as the API encodes it, cut around the values a copy replaces."""

    key: bytes
    parts: tuple[bytes, bytes, bytes, bytes]
    """Before the event id, between id and start_time, between start and end_time, after."""
    duration_us: int


def template_event(record: dict) -> TemplateEvent:
    from encore.events import PlayEventV1
    from streaming_api.playback import encode_event

    event = PlayEventV1.model_validate(record)
    encoded = encode_event(event)
    cuts = []
    for name in ("event_id", "start_time", "end_time"):
        start = encoded.index(f'"{name}":"'.encode()) + len(name) + 4
        cuts.append((start, encoded.index(b'"', start)))
    (id_from, id_to), (start_from, start_to), (end_from, end_to) = cuts
    parts = (
        encoded[:id_from],
        encoded[id_to:start_from],
        encoded[start_to:end_from],
        encoded[end_to:],
    )
    duration = (event.end_time - event.start_time) // timedelta(microseconds=1)
    return TemplateEvent(event.user_id.encode(), parts, duration)


@lru_cache(maxsize=8192)
def _second(epoch_s: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_s))


def iso_utc(epoch_us: int) -> str:
    """pydantic's JSON form of a UTC datetime (no fraction when it is zero)."""
    seconds, micros = divmod(epoch_us, 1_000_000)
    return f"{_second(seconds)}.{micros:06d}Z" if micros else f"{_second(seconds)}Z"


def event_id(prefix: str, index: int) -> str:
    """A UUID whose last 12 digits are ``index`` in decimal (decimal digits are hex)."""
    return f"{prefix}-{index:012d}"


def run_prefix() -> str:
    """The first four groups of a fresh uuid4: every run's ids differ from every other's."""
    h = uuid.uuid4().hex
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}"


def event_values(
    template: list[TemplateEvent],
    count: int,
    first_start: datetime,
    span: timedelta,
    prefix: str,
) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of ``count`` events: copy ``i`` of template ``i % len(template)`` with id
    ``event_id(prefix, i)`` and a start time ``i/count`` of the way through ``span``."""
    first_us = int(first_start.timestamp() * 1_000_000)
    span_us = span // timedelta(microseconds=1)
    size = len(template)
    for i in range(count):
        event = template[i % size]
        start_us = first_us + span_us * i // count
        before_id, before_start, before_end, rest = event.parts
        yield (
            event.key,
            b"".join(
                (
                    before_id,
                    event_id(prefix, i).encode(),
                    before_start,
                    iso_utc(start_us).encode(),
                    before_end,
                    iso_utc(start_us + event.duration_us).encode(),
                    rest,
                )
            ),
        )


def bulk_producer_config(settings) -> dict:
    """The API's producer (acks=all, idempotence, partitioner, compression) with a bulk
    loader's batching and patience: its own timeouts are a request's budget, far too short
    for a client that keeps its buffer full."""
    from streaming_api.producer import producer_config

    return producer_config(settings) | {
        "client_id": "encore-bench-ingest-scale",
        "linger_ms": 20,
        "batch_size": 512 * 1024,
        "delivery_timeout_ms": 300_000,
        "request_timeout_ms": 30_000,
        "max_block_ms": 300_000,
    }


class Producer(threading.Thread):
    """Sends the events, as fast as it can or at ``rate`` events/s; counts acknowledgements."""

    def __init__(self, settings, values: Iterator[tuple[bytes, bytes]], rate: float) -> None:
        super().__init__(name="producer", daemon=True)
        self.settings = settings
        self.values = values
        self.rate = rate
        self.sent = 0
        self.acked = 0
        self.errors: list[str] = []
        self.started_at: float | None = None
        self.finished_at: float | None = None

    def _acked(self, _metadata) -> None:
        self.acked += 1  # only the client's sender thread calls this

    def _failed(self, error) -> None:
        if len(self.errors) < 10:
            self.errors.append(repr(error))

    def run(self) -> None:
        from kafka import KafkaProducer

        topic = self.settings.kafka.play_events_topic
        producer = None
        try:
            producer = KafkaProducer(**bulk_producer_config(self.settings))
            self.started_at = time.time()
            for key, value in self.values:
                if self.rate and self.sent % 500 == 0:
                    ahead = self.started_at + self.sent / self.rate - time.time()
                    if ahead > 0:
                        time.sleep(ahead)
                future = producer.send(topic, key=key, value=value)
                future.add_callback(self._acked)
                future.add_errback(self._failed)
                self.sent += 1
            producer.flush()
        except Exception as error:
            self.errors.append(repr(error))
        finally:
            if producer is not None:
                producer.close(timeout=60)
            self.finished_at = time.time()


# --------------------------------------------------------------------------- observations


def component(group: str, pid: int) -> str:
    """The name a process of ``group`` is reported under (as ``cpu_by_component``)."""
    if group != "flink job":
        return group
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        command = ""
    if "beam_boot" in command or "fn_execution" in command:
        return COMPONENT_NAMES["flink python workers"]
    if "java" in command:
        return COMPONENT_NAMES["flink jvm"]
    return COMPONENT_NAMES["flink python (UDF + sink)"]


def rss_by_component(groups: dict[str, int]) -> dict[str, float]:
    """Resident memory (MB) of each process group, the Flink job's split by process."""
    page = os.sysconf("SC_PAGE_SIZE")
    by_pgid = {pgid: name for name, pgid in groups.items()}
    totals: dict[str, float] = defaultdict(float)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[2]) not in by_pgid:
                continue
            resident = int((entry / "statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        totals[component(by_pgid[int(stat[2])], int(entry.name))] += resident * page / 1e6
    resident = int(Path("/proc/self/statm").read_text().split()[1])
    totals[COMPONENT_NAMES["benchmark client"]] = resident * page / 1e6
    return {name: round(mb, 1) for name, mb in totals.items()}


def cpu_seconds(groups: dict[str, int]) -> dict[str, float]:
    return {COMPONENT_NAMES.get(k, k): round(v, 2) for k, v in cpu_by_component(groups).items()}


COMPLETED = re.compile(
    r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*Completed checkpoint (?P<id>\d+) "
    r"for job \w+ \((?P<bytes>\d+) bytes, checkpointDuration=(?P<ms>\d+) ms"
)
FAILED = re.compile(r"checkpoint \d+ (of job \w+ )?(expired|declined|failed)", re.IGNORECASE)


def parse_checkpoint_line(line: str) -> dict | None:
    """A Flink log line's completed checkpoint: id, epoch time, bytes, duration; else None."""
    match = COMPLETED.search(line)
    if not match:
        return None
    at = datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S,%f")  # the machine's local time
    return {
        "id": int(match["id"]),
        "at": at.timestamp(),
        "bytes": int(match["bytes"]),
        "duration_ms": int(match["ms"]),
    }


class Tail:
    """New whole lines appended to files since the last call."""

    def __init__(self) -> None:
        self.offsets: dict[Path, int] = {}

    def lines(self, paths: list[Path]) -> Iterator[str]:
        for path in paths:
            try:
                with open(path, "rb") as file:
                    file.seek(self.offsets.get(path, 0))
                    chunk = file.read()
            except OSError:
                continue
            whole = chunk[: chunk.rfind(b"\n") + 1]
            self.offsets[path] = self.offsets.get(path, 0) + len(whole)
            yield from whole.decode(errors="replace").splitlines()


def folder_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # a checkpoint Flink just subsumed
                total += os.stat(os.path.join(root, name)).st_size
    return total


def read_commit_line(entry: dict, started: float) -> tuple[dict | None, dict | None]:
    """A commit-log line as (micro-batch, bronze commit), either possibly None.

    Two shapes are read: one ``"sink": "bronze"`` line per micro-batch that is also its
    bronze commit, or a ``"sink": "batch"`` line per micro-batch and a separate
    ``"sink": "bronze"`` line per bronze commit (a commit gathering several batches).
    """
    t = round(datetime.fromisoformat(entry["at"]).timestamp() - started, 3)
    batch = commit = None
    if "received" in entry:
        batch = {
            "t": t,
            "received": entry["received"],
            "kept": entry.get("kept", entry.get("rows", 0)),
            **{k: entry.get(k, 0.0) for k in ("ms", "parse_ms", "redis_ms")},
        }
    if entry.get("sink") == "bronze":
        commit = {
            "t": t,
            "rows": entry["rows"],
            "ms": entry["delta_ms"] if "delta_ms" in entry else entry["ms"],
            "version": entry["version"],
        }
    return batch, commit


@dataclass
class Observations:
    """Everything read from the job's logs and folders so far."""

    batches: list[dict] = field(default_factory=list)
    commits: list[dict] = field(default_factory=list)
    checkpoints: list[dict] = field(default_factory=list)
    checkpoint_failures: list[str] = field(default_factory=list)
    checkpoint_folders: dict[str, dict] = field(default_factory=dict)
    rows: int = 0
    received: int = 0
    duplicates: int = 0
    rejected: int = 0
    recent_ids: int = 0
    version: int | None = None


class Sampler:
    """Reads the platform's state every few seconds into ``series``."""

    def __init__(self, settings, started: float) -> None:
        from pipelines.ingest.control import flink_log_dir
        from pipelines.ingest.state import checkpoints_dir, commits_log

        self.settings = settings
        self.started = started
        self.commit_log = commits_log(settings)
        self.flink_logs = flink_log_dir(settings)
        self.checkpoints = checkpoints_dir(settings)
        self.seen = Observations()
        self.series: list[dict] = []
        self._commits = Tail()
        self._flink = Tail()

    def _read_commits(self) -> None:
        seen = self.seen
        for line in self._commits.lines([self.commit_log]):
            entry = json.loads(line)
            batch, commit = read_commit_line(entry, self.started)
            if batch:
                seen.batches.append(batch)
                seen.received += entry["received"]
                seen.duplicates += entry.get("duplicates", 0)
                seen.rejected += entry.get("rejected", 0)
            if commit:
                seen.commits.append(commit)
                seen.rows += commit["rows"]
                seen.version = commit["version"]
            seen.recent_ids = entry.get("recent_ids", seen.recent_ids)

    def _read_flink_log(self) -> None:
        for line in self._flink.lines(sorted(self.flink_logs.glob("*.log"))):
            checkpoint = parse_checkpoint_line(line)
            if checkpoint:
                checkpoint["t"] = round(checkpoint.pop("at") - self.started, 3)
                self.seen.checkpoints.append(checkpoint)
            elif FAILED.search(line) and "Completed" not in line:
                self.seen.checkpoint_failures.append(line[:300])

    def _read_checkpoint_folders(self) -> int:
        """Size of each complete ``chk-N`` not seen before; returns the folder's total."""
        for metadata in self.checkpoints.glob("*/chk-*/_metadata"):
            name = metadata.parent.name
            if name not in self.seen.checkpoint_folders:
                self.seen.checkpoint_folders[name] = {
                    "bytes": folder_bytes(metadata.parent),
                    "t": round(time.time() - self.started, 1),
                }
        return folder_bytes(self.checkpoints)

    def sample(self, phase: str, producer: Producer | None, groups: dict[str, int]) -> dict:
        from pipelines.ingest.control import kafka_lag, kafka_partitions

        self._read_commits()
        self._read_flink_log()
        on_disk = self._read_checkpoint_folders()
        seen = self.seen
        try:
            lag = sum(kafka_lag(self.settings, kafka_partitions(self.settings)).values())
        except Exception:  # Kafka busy answering the producer: a gap in the series
            lag = None
        last = seen.checkpoints[-1] if seen.checkpoints else None
        point = {
            "t": round(time.time() - self.started, 1),
            "phase": phase,
            "produced": producer.acked if producer else 0,
            "committed": seen.rows,
            "batches": len(seen.batches),
            "group_lag": lag,
            "recent_ids": seen.recent_ids,
            "bronze_version": seen.version,
            "last_checkpoint": last,
            "checkpoints_on_disk_bytes": on_disk,
            "rss_mb": rss_by_component(groups),
            "cpu_s": cpu_seconds(groups),
            "load_1m": os.getloadavg()[0],
        }
        self.series.append(point)
        return point


def progress(point: dict, previous: dict | None, total: int) -> str:
    seconds = max(point["t"] - previous["t"], 1e-9) if previous else None
    sent = (point["produced"] - previous["produced"]) / seconds if seconds else 0.0
    rate = (point["committed"] - previous["committed"]) / seconds if seconds else 0.0
    chk = point["last_checkpoint"]
    chk_text = f"chk {chk['id']} {chk['bytes'] / 1e6:.1f} MB {chk['duration_ms']} ms" if chk else ""
    rss = point["rss_mb"]
    return (
        f"[{point['t']:7.0f} s] {point['phase']:<7} produced {point['produced']:>11,} / "
        f"{total:,} ({sent:>7,.0f}/s)  committed {point['committed']:>11,} ({rate:>7,.0f}/s)  "
        f"lag {point['group_lag'] if point['group_lag'] is not None else '?':>10}  {chk_text}  "
        f"jvm {rss.get(COMPONENT_NAMES['flink jvm'], 0):,.0f} MB  "
        f"kafka {rss.get('kafka', 0):,.0f} MB  load {point['load_1m']:.1f}"
    )


# --------------------------------------------------------------------------- summaries


def _mean(rows: list[dict], key: str) -> float:
    return round(sum(r[key] for r in rows) / len(rows), 1) if rows else 0.0


def _between(items: list[dict], start: float, end: float) -> list[dict]:
    return [item for item in items if start < item["t"] <= end]


def per_minute(
    series: list[dict], batches: list[dict], commits: list[dict], checkpoints: list[dict]
) -> list[dict]:
    """One row per minute of the run: rates over the minute, the state at its end."""
    rows = []
    previous = None
    first = series[0] if series else None
    for minute in sorted({int(p["t"] // 60) for p in series}):
        points = [p for p in series if int(p["t"] // 60) == minute]
        last = points[-1]
        base = previous or {"t": 0.0, "committed": 0, "produced": 0}
        seconds = max(last["t"] - base["t"], 1e-9)
        # the first minute's CPU from the first sample: the processes' start-up and the
        # template's simulation are no part of the run
        cpu_base = previous or first
        cpu_seconds = max(last["t"] - cpu_base["t"], 1e-9)

        in_minute, committed, done = (
            _between(items, base["t"], last["t"]) for items in (batches, commits, checkpoints)
        )
        rows.append(
            {
                "minute": minute + 1,
                "phase": "+".join(dict.fromkeys(p["phase"] for p in points)),
                "produced_per_s": round((last["produced"] - base["produced"]) / seconds),
                "committed_per_s": round((last["committed"] - base["committed"]) / seconds),
                "backlog": last["produced"] - last["committed"],
                "group_lag": last["group_lag"],
                "batches": len(in_minute),
                "mean_batch": round(_mean(in_minute, "received")),
                "mean_batch_ms": {k: _mean(in_minute, k) for k in ("ms", "parse_ms", "redis_ms")},
                "bronze_commits": len(committed),
                "mean_commit_rows": round(_mean(committed, "rows")),
                "mean_commit_ms": _mean(committed, "ms"),
                "checkpoints": len(done),
                "last_checkpoint_bytes": done[-1]["bytes"] if done else None,
                "max_checkpoint_ms": max(c["duration_ms"] for c in done) if done else None,
                "rss_mb": {
                    name: max(p["rss_mb"].get(name, 0) for p in points) for name in last["rss_mb"]
                },
                "cpu_percent": {
                    name: round(100 * (s - cpu_base["cpu_s"].get(name, 0)) / cpu_seconds)
                    for name, s in last["cpu_s"].items()
                },
                "recent_ids": last["recent_ids"],
            }
        )
        previous = last
    return rows


def job_summary(seen: Observations, job_started: float) -> dict:
    """The job's totals: start-up, bronze events/s, batches, de-duplication ids."""
    first_commit, last_commit = seen.commits[0]["t"], seen.commits[-1]["t"]
    return {
        "started_at_s": round(job_started, 1),
        "first_commit_after_start_s": round(first_commit - job_started, 1),
        "start_to_last_commit_s": round(last_commit - job_started, 1),
        "events_per_s_from_start": round(seen.rows / (last_commit - job_started)),
        # the steady rate, start-up left out (the first commit's rows are in: a lower bound)
        "events_per_s_first_to_last_commit": round(seen.rows / (last_commit - first_commit))
        if last_commit > first_commit
        else None,
        "batches": len(seen.batches),
        "bronze_commits": len(seen.commits),
        "rows": seen.rows,
        "received": seen.received,
        "duplicates": seen.duplicates,
        "rejected": seen.rejected,
        "recent_ids_at_end": seen.recent_ids,
    }


def verify_bronze(settings, expected: int, prefix: str) -> dict:
    """Bronze holds exactly the ``expected`` ids of this run: as many rows as distinct ids,
    all with this run's prefix, counters 0..expected-1."""
    import pyarrow.compute as pc

    from encore.delta import open_delta, read_lake_table
    from encore.tables import PLAY_EVENTS, PLAY_EVENTS_REJECTED

    ids = read_lake_table(settings, PLAY_EVENTS, columns=["event_id"]).column("event_id")
    counters = pc.cast(pc.utf8_slice_codeunits(ids, 24), "int64") if len(ids) else None
    delta = open_delta(settings, PLAY_EVENTS)
    log = Path(PLAY_EVENTS.path(settings)) / "_delta_log"
    result = {
        "expected": expected,
        "rows": len(ids),
        "distinct_ids": pc.count_distinct(ids).as_py() if len(ids) else 0,
        "ids_of_this_run": pc.sum(pc.starts_with(ids, prefix + "-")).as_py() if len(ids) else 0,
        "counter_min": pc.min(counters).as_py() if counters is not None else None,
        "counter_max": pc.max(counters).as_py() if counters is not None else None,
        "rejected_rows": read_lake_table(
            settings, PLAY_EVENTS_REJECTED, columns=["kafka_offset"]
        ).num_rows,
        "bronze_version": delta.version() if delta else None,
        "bronze_files": len(delta.file_uris()) if delta else 0,
        "delta_log_commits": len(list(log.glob("*.json"))),
        "delta_log_checkpoints": len(list(log.glob("*.checkpoint*.parquet"))),
        "delta_log_bytes": folder_bytes(log),
    }
    result["exact"] = (
        result["rows"] == result["distinct_ids"] == result["ids_of_this_run"] == expected
        and result["counter_min"] == 0
        and result["counter_max"] == expected - 1
    )
    return result


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument(
        "--rate",
        type=float,
        default=0,
        help="0: fill the topic first, then measure the job draining it; R: produce at R "
        "events/s while the job runs",
    )
    parser.add_argument("--template", type=int, default=5000, help="simulated events copied")
    parser.add_argument("--span-hours", type=float, default=24, help="start times span")
    parser.add_argument("--sample-s", type=float, default=5)
    parser.add_argument("--checkpoint-ms", type=int, default=2000)
    parser.add_argument("--commit-ms", type=int, default=1000)
    parser.add_argument("--timeout-s", type=float, help="default: 900 s + 2 ms per event")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true", help="Keep the temporary ENCORE_HOME.")
    args = parser.parse_args()
    timeout_s = args.timeout_s or 900 + args.events / 500

    home = Path(tempfile.mkdtemp(prefix="encore-bench-ingest-scale-"))
    settings = isolated_settings(home, args.checkpoint_ms, args.commit_ms)
    from simulated_events import simulated_events

    from encore import services
    from pipelines.ingest import control

    print(f"simulating a template of {args.template} events ...", flush=True)
    template = [template_event(e) for e in simulated_events(args.template, seed=7, days=1)]
    prefix = run_prefix()
    # the newest copy of the longest event ends a minute before now: every start and end
    # time lies in the past when it is sent, as a real listener's would
    span = timedelta(hours=args.span_hours)
    longest = timedelta(microseconds=max(event.duration_us for event in template))
    first_start = datetime.now(UTC) - span - longest - timedelta(minutes=1)
    values = event_values(template, args.events, first_start, span, prefix)
    mode = "rate" if args.rate else "backlog"
    producer = Producer(settings, values, args.rate)
    config = {
        k: v
        for k, v in bulk_producer_config(settings).items()
        if k not in ("partitioner", "bootstrap_servers")
    }
    result: dict = {
        "benchmark": "ingest_scale",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_ingest_scale.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_avg_before": os.getloadavg(),
        "events": args.events,
        "mode": mode,
        "rate": args.rate or None,
        "template_events": args.template,
        "span_hours": args.span_hours,
        "settings": {
            "checkpoint_interval_ms": settings.flink.checkpoint_interval_ms,
            "commit_interval_ms": settings.flink.commit_interval_ms,
            "state_backend": settings.flink.state_backend,
            "python_execution_mode": settings.flink.python_execution_mode,
            "ingest_parallelism": settings.flink.ingest_parallelism,
            "partitions": settings.kafka.play_events_partitions,
            "dedup_ttl_s": settings.flink.dedup_ttl_s,
            "kafka_heap": settings.kafka.heap,
        },
        "producer_config": {k: str(v) if v == float("inf") else v for k, v in config.items()},
    }
    print(f"load average before: {result['load_avg_before']}", flush=True)
    started = time.time()
    sampler = Sampler(settings, started)
    job_started: float | None = None
    try:
        print("platform: kafka, redis ...", flush=True)
        services.up(settings, ["kafka", "redis"])
        services.ensure_topics(settings)
        groups = {
            "kafka": services.running_pid(settings, "kafka"),
            "redis": services.running_pid(settings, "redis"),
        }

        def start_job() -> float:
            control.start(settings)
            groups["flink job"] = control.running_pid(settings)
            return time.time() - started

        previous = None
        if mode == "backlog":
            print(f"filling the topic with {args.events:,} events ...", flush=True)
            producer.start()
            while producer.is_alive():
                producer.join(args.sample_s)
                point = sampler.sample("load", producer, groups)
                print(progress(point, previous, args.events), flush=True)
                previous = point
            if producer.errors:
                raise SystemExit(f"the producer failed: {producer.errors}")
            print("starting the ingestion job ...", flush=True)
            job_started = start_job()
        else:
            print(f"starting the job, producing {args.rate:,.0f} events/s ...", flush=True)
            job_started = start_job()
            producer.start()

        deadline = time.monotonic() + timeout_s
        while True:
            time.sleep(args.sample_s)
            phase = "produce" if producer.is_alive() else "drain"
            point = sampler.sample(phase, producer, groups)
            print(progress(point, previous, args.events), flush=True)
            previous = point
            if producer.errors:
                raise SystemExit(f"the producer failed: {producer.errors}")
            done = not producer.is_alive() and point["committed"] >= args.events
            if done and point["group_lag"] == 0:
                break
            if not control.running_pid(settings):
                log = (home / "logs" / "ingest.log").read_text()[-3000:]
                raise SystemExit(f"the ingestion job died:\n{log}")
            if time.monotonic() > deadline:
                raise SystemExit(f"not done after {timeout_s:.0f} s: {point}")
        result["load_avg_after"] = os.getloadavg()
        control.stop(settings, timeout_s=60)
        print("verifying bronze ...", flush=True)
        result["verification"] = verify_bronze(settings, args.events, prefix)
    finally:
        control.stop(settings, timeout_s=20)
        services.down(settings, ["kafka", "redis"])
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)

    seen = sampler.seen
    result["producer"] = {
        "events": producer.acked,
        "seconds": round(producer.finished_at - producer.started_at, 1),
        "events_per_s": round(producer.acked / (producer.finished_at - producer.started_at)),
        "errors": producer.errors,
    }
    result["job"] = job_summary(seen, job_started)
    result["checkpoints"] = seen.checkpoints
    result["checkpoint_failures"] = seen.checkpoint_failures
    result["checkpoint_folders"] = seen.checkpoint_folders
    result["samples"] = sampler.series
    result["minutes"] = per_minute(sampler.series, seen.batches, seen.commits, seen.checkpoints)
    result["batches"] = seen.batches
    result["bronze_commits"] = seen.commits
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    report(result, args.out)
    if not result["verification"]["exact"]:
        raise SystemExit(f"bronze does not hold exactly the events: {result['verification']}")


def _mb(value: float | None) -> str:
    return "" if value is None else f"{value / 1e6:,.1f}"


def report(result: dict, out: Path) -> None:
    import statistics

    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 200))  # one minute per line, even in a log
    jvm = COMPONENT_NAMES["flink jvm"]
    bench = COMPONENT_NAMES["benchmark client"]
    minutes = Table(
        "min",
        "phase",
        "produced/s",
        "committed/s",
        "backlog",
        "group lag",
        "batches (mean size)",
        "batch ms: all / parse / redis",
        "bronze commits (mean rows, ms)",
        "last chk MB / max ms",
        "RSS MB: jvm / kafka / redis / producer",
        "CPU %: jvm / kafka / producer",
        "de-dup ids",
        title=f"ingestion at scale: {result['events']:,} events, {result['mode']} mode",
    )
    for row in result["minutes"]:
        rss, cpu, ms = row["rss_mb"], row["cpu_percent"], row["mean_batch_ms"]
        minutes.add_row(
            str(row["minute"]),
            row["phase"],
            f"{row['produced_per_s']:,}",
            f"{row['committed_per_s']:,}",
            f"{row['backlog']:,}",
            "?" if row["group_lag"] is None else f"{row['group_lag']:,}",
            f"{row['batches']} ({row['mean_batch']:,})",
            " / ".join(f"{ms[k]:,.0f}" for k in ("ms", "parse_ms", "redis_ms")),
            f"{row['bronze_commits']} ({row['mean_commit_rows']:,}, {row['mean_commit_ms']:,.0f})",
            f"{_mb(row['last_checkpoint_bytes'])} / {row['max_checkpoint_ms'] or ''}",
            " / ".join(f"{rss.get(k, 0):,.0f}" for k in (jvm, "kafka", "redis", bench)),
            " / ".join(f"{cpu.get(k, 0)}" for k in (jvm, "kafka", bench)),
            f"{row['recent_ids']:,}",
        )
    console.print(minutes)

    totals = Table("measure", "value", title="totals")
    producer, job, check = result["producer"], result["job"], result["verification"]
    totals.add_row(
        "producer (kafka-python, acks=all)",
        f"{producer['events_per_s']:,} events/s "
        f"({producer['events']:,} in {producer['seconds']} s)",
    )
    totals.add_row("job start -> first bronze commit", f"{job['first_commit_after_start_s']} s")
    totals.add_row(
        "committed to bronze, first -> last commit",
        f"{job['events_per_s_first_to_last_commit'] or 0:,} events/s",
    )
    totals.add_row(
        "committed to bronze, job start -> last commit",
        f"{job['events_per_s_from_start']:,} events/s ({job['start_to_last_commit_s']} s)",
    )
    totals.add_row(
        "micro-batches, bronze commits", f"{job['batches']:,}, {job['bronze_commits']:,}"
    )
    checkpoints = result["checkpoints"]
    if checkpoints:
        sizes = [c["bytes"] for c in checkpoints]
        durations = [c["duration_ms"] for c in checkpoints]
        totals.add_row(
            "checkpoints: count, size median / max",
            f"{len(checkpoints)}, {_mb(statistics.median(sizes))} / {_mb(max(sizes))} MB",
        )
        totals.add_row(
            "checkpoint duration median / max",
            f"{statistics.median(durations):,.0f} / {max(durations):,} ms",
        )
    totals.add_row("checkpoint failures in the Flink log", str(len(result["checkpoint_failures"])))
    peaks: dict[str, float] = defaultdict(float)
    for point in result["samples"]:
        for name, mb in point["rss_mb"].items():
            peaks[name] = max(peaks[name], mb)
    for name, mb in sorted(peaks.items()):
        totals.add_row(f"peak RSS: {name}", f"{mb:,.0f} MB")
    for name, seconds in sorted(result["samples"][-1]["cpu_s"].items()):
        totals.add_row(f"CPU seconds: {name}", f"{seconds:,.0f} s")
    totals.add_row("sink de-dup ids at the end (recent_ids)", f"{job['recent_ids_at_end']:,}")
    totals.add_row(
        "bronze: Delta version, data files",
        f"{check['bronze_version']:,}, {check['bronze_files']:,}",
    )
    totals.add_row(
        "bronze _delta_log: commits, checkpoints, MB",
        f"{check['delta_log_commits']:,}, {check['delta_log_checkpoints']}, "
        f"{_mb(check['delta_log_bytes'])}",
    )
    totals.add_row(
        "bronze holds exactly the events (rows, distinct ids)",
        f"{check['exact']} ({check['rows']:,}, {check['distinct_ids']:,} of {check['expected']:,};"
        f" {check['rejected_rows']} rejected)",
    )
    before, after = result["load_avg_before"], result.get("load_avg_after")
    totals.add_row(
        "load average (1/5/15 min) before / after",
        " ".join(f"{x:.1f}" for x in before)
        + " / "
        + (" ".join(f"{x:.1f}" for x in after) if after else "?"),
    )
    console.print(totals)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
