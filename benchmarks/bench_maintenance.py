"""Lake maintenance on bronze after an hour of simulated traffic: files, bytes, query time.

One command, in a throw-away lake (no services)::

    .venv/bin/python benchmarks/bench_maintenance.py                       # an hour, 1 commit/s
    .venv/bin/python benchmarks/bench_maintenance.py --users 2000 --commits 60   # seconds

1. simulates ``--users`` listeners for an hour (the simulator the platform's ``encore
   simulate`` uses, over the default synthetic catalog) and validates every event with the
   ingestion job's parser, giving bronze rows;
2. writes them to ``bronze.play_events`` as the Flink job does: the job's own writer
   (``OffsetTiedWriter``), ``--commits`` commits in event-time order (3,600 = one a second);
3. measures files, bytes and two queries (one song's plays on the busiest day, one listener's
   plays on it; delta-rs to a pyarrow dataset with the filter pushed down, median of
   ``--repeats`` runs), then runs ``maintain`` as the nightly run after the day closed (so the
   day is Z-ordered), and measures again. Prints the load average before and after.

Writing is the slow part, and deliberately the real one: each of the job's commits costs
more as the table's files grow (delta-rs updates its snapshot and writes a checkpoint every
100 commits), so an hour of 3,600 commits takes tens of minutes (measured while the machine
was shared: ~1,200 commits in 5 minutes, down to 1-2 commits/s past 1,000 files; the
figure is the stream's own commit cost, worth knowing). ``write_s`` in the JSON records it.
The simulated hour ends 15 minutes before now; run it after 01:15 UTC, so the hour lies in
today and its files were written while their day was open (only those are Z-ordered).

Vacuum retention is 0 here (``--retention-hours``): the copy has no other readers, so the
stored bytes show what vacuum reclaims; production keeps ``lake.vacuum_retention_hours``.

Prints a table and saves JSON to ``benchmarks/results/maintenance.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "maintenance.json"


HOUR_ENDS_BEFORE_NOW = timedelta(minutes=15)
"""The simulated hour ends this long before now: the contract refuses a play that ends after
its arrival (now), and a play started in the hour's last minutes lasts a few minutes more."""


def simulated_hour_start(now: datetime) -> datetime:
    return (now - HOUR_ENDS_BEFORE_NOW - timedelta(hours=1)).replace(second=0, microsecond=0)


def simulated_hour(users: int, seed: int, start: datetime) -> list[dict]:
    """An hour of listening by ``users`` listeners from ``start``."""
    from encore.settings import CatalogSettings
    from pipelines.simulation import Catalog, SimulationConfig, generate_events
    from streaming_api.catalog.synthetic import synthetic_songs

    config = SimulationConfig(seed=seed, users=users, start=start, duration=timedelta(hours=1))
    defaults = CatalogSettings()
    catalog = Catalog.from_records(
        synthetic_songs(defaults.artists, defaults.songs_per_artist, defaults.seed)
    )
    return list(generate_events(config, catalog=catalog))


def bronze_batches(events: list[dict], commits: int) -> list[dict[str, list]]:
    """Bronze columns of the events, validated by the job's parser, split in time order."""
    from encore.tables import PLAY_EVENTS
    from pipelines.ingest.parse import EVENT_FIELDS, parse_record

    arrival = datetime.now(UTC)
    names = [name for name, _ in EVENT_FIELDS]
    parsed = []
    for event in events:
        record = parse_record(json.dumps(event).encode(), arrival)
        if record.reason is not None:
            raise SystemExit(f"the simulator made an invalid event: {record.reason}")
        parsed.append(tuple(getattr(record, n) for n in names))
    # one Kafka partition in arrival (= event time) order: the writer skips offsets it has
    # committed, so the offsets must grow from batch to batch
    parsed.sort(key=lambda r: r[names.index("start_time")])
    rows = [(*r, 0, offset, _epoch_us(arrival)) for offset, r in enumerate(parsed)]
    columns = [*names, "kafka_partition", "kafka_offset", "ingested_at"]
    assert sorted(columns) == sorted(PLAY_EVENTS.column_names)
    size = -(-len(rows) // commits)
    return [
        {c: [r[i] for r in rows[start : start + size]] for i, c in enumerate(columns)}
        for start in range(0, len(rows), size)
    ]


def _most_common(column):
    counts = pc.value_counts(column)
    best = pc.index(counts.field("counts"), pc.max(counts.field("counts"))).as_py()
    return counts.field("values")[best].as_py()


def _epoch_us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def timed_query(path: str, column: str, value: str, day, repeats: int) -> dict:
    from deltalake import DeltaTable

    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        dataset = DeltaTable(path).to_pyarrow_dataset()
        found = dataset.to_table(
            filter=(ds.field("event_date") == day) & (ds.field(column) == value)
        ).num_rows
        seconds.append(time.perf_counter() - started)
    return {"rows": found, "median_s": statistics.median(seconds), "runs": repeats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--commits", type=int, default=3600)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--retention-hours", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--bronze-dir",
        type=Path,
        default=None,
        help="keep the written bronze here, or reuse it if it is there (writing takes tens "
        "of minutes; measuring alone again then takes one)",
    )
    args = parser.parse_args()

    from deltalake import DeltaTable

    from encore.settings import Settings
    from encore.tables import PLAY_EVENTS
    from pipelines.ingest.delta_sink import OffsetTiedWriter
    from pipelines.lake.maintenance import maintain

    # Z-order as the registry declares it for bronze (set here until it does)
    bronze = PLAY_EVENTS
    if "zorder_by" not in bronze.extra:
        import dataclasses

        bronze = dataclasses.replace(PLAY_EVENTS, extra={"zorder_by": ("song_id", "user_id")})

    load_before = os.getloadavg()
    home = Path(tempfile.mkdtemp(prefix="encore-bench-maintenance-"))
    try:
        settings = Settings(
            home=home,
            lake={"root": str(home / "lake"), "vacuum_retention_hours": args.retention_hours},
        )
        path = PLAY_EVENTS.path(settings)
        saved = args.bronze_dir / "written.json" if args.bronze_dir else None
        if saved is not None and saved.exists():
            # a copy: maintenance rewrites the table, the saved one stays as written
            shutil.copytree(args.bronze_dir / "play_events", path)
            written = json.loads(saved.read_text())
            commits, write_s, load_written, events_n = (
                written["commits"],
                written["write_s"],
                written["load_avg_while_writing"],
                written["events"],
            )
            hour_start = datetime.fromisoformat(written["simulated_hour_start"])
            print(f"reused {args.bronze_dir}: {commits:,} commits written in {write_s:.0f} s")
        else:
            started = time.perf_counter()
            hour_start = simulated_hour_start(datetime.now(UTC))
            if hour_start.date() != datetime.now(UTC).date():
                print(
                    "note: the simulated hour is not all of today (run after 01:15 UTC): files "
                    "written after their day closed are compacted, not Z-ordered"
                )
            events = simulated_hour(args.users, args.seed, hour_start)
            batches = bronze_batches(events, args.commits)
            events_n = len(events)
            simulate_s = time.perf_counter() - started
            print(f"{events_n:,} events in {len(batches):,} batches ({simulate_s:.0f} s)")

            started = time.perf_counter()
            writer = OffsetTiedWriter(PLAY_EVENTS, settings, "play-events")
            for batch in batches:
                writer.write(batch)
            write_s = time.perf_counter() - started
            commits, load_written = writer.commits, os.getloadavg()
            print(f"{commits:,} commits in {write_s:.0f} s")
            if saved is not None:
                shutil.copytree(path, args.bronze_dir / "play_events")
                saved.write_text(
                    json.dumps(
                        {
                            "commits": commits,
                            "write_s": round(write_s, 1),
                            "load_avg_while_writing": load_written,
                            "simulated_hour_start": hour_start.isoformat(),
                            "events": events_n,
                        }
                    )
                )

        table = DeltaTable(path).to_pyarrow_table(columns=["event_date", "song_id", "user_id"])
        assert table.num_rows == events_n, "the writer skipped rows"
        day = _most_common(table.column("event_date"))
        on_day = table.filter(pc.equal(table.column("event_date"), day))
        song = _most_common(on_day.column("song_id"))
        user = _most_common(on_day.column("user_id"))

        def measure() -> dict:
            return {
                "song_query": timed_query(path, "song_id", song, day, args.repeats),
                "user_query": timed_query(path, "user_id", user, day, args.repeats),
            }

        before = measure()
        # the nightly run: every simulated day has closed by then
        nightly = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
        nightly += timedelta(hours=12)
        report = maintain(settings, [bronze], now=nightly).tables[0]
        after = measure()
        for name in before:
            assert before[name]["rows"] == after[name]["rows"], f"{name} changed its answer"
    finally:
        shutil.rmtree(home, ignore_errors=True)

    result = {
        "command": "benchmarks/bench_maintenance.py "
        + f"--users {args.users} --commits {args.commits} --seed {args.seed} "
        + f"--repeats {args.repeats} --retention-hours {args.retention_hours}",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": _cpus()},
        "load_avg_before": load_before,
        "load_avg_after": os.getloadavg(),
        "simulated_hour_start": hour_start.isoformat(timespec="minutes"),
        "events": events_n,
        "commits": commits,
        "write_s": round(write_s, 1),
        "load_avg_after_writing": load_written,
        "day": str(day),
        "song_id": song,
        "user_id": user,
        "files": {"before": report.active_before.files, "after": report.active_after.files},
        "bytes": {"before": report.active_before.bytes, "after": report.active_after.bytes},
        "stored_files": {
            "before": report.stored_before.files,
            "after": report.stored_after.files,
        },
        "stored_bytes": {
            "before": report.stored_before.bytes,
            "after": report.stored_after.bytes,
        },
        "zordered_partitions": report.zordered_partitions,
        "compacted": [report.compacted_files_removed, report.compacted_files_added],
        "vacuumed_files": report.vacuumed_files,
        "checkpoint_version": report.checkpoint_version,
        "maintain_s": round(report.seconds, 2),
        "queries": {"before": before, "after": after},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"\nbronze.play_events after {events_n:,} events in {commits:,} commits")
    print(f"{'':28}{'before':>14}{'after':>14}")
    print(f"{'files':28}{result['files']['before']:>14,}{result['files']['after']:>14,}")
    print(f"{'bytes':28}{result['bytes']['before']:>14,}{result['bytes']['after']:>14,}")
    print(
        f"{'stored bytes':28}{result['stored_bytes']['before']:>14,}"
        f"{result['stored_bytes']['after']:>14,}"
    )
    for name, label in (
        ("song_query", "one song, one day (s)"),
        ("user_query", "one user, one day (s)"),
    ):
        print(f"{label:28}{before[name]['median_s']:>14.4f}{after[name]['median_s']:>14.4f}")
    print(f"maintain: {report.seconds:.1f} s, z-ordered {report.zordered_partitions or 'none'}")
    print(
        f"load average before {result['load_avg_before'][0]:.2f}, "
        f"after {result['load_avg_after'][0]:.2f}"
    )
    print(f"saved {args.out}")


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()
