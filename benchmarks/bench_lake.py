"""What Spark costs on one machine: the lake's daily build at 1M and 10M events, and the same
gold tables computed by polars and DuckDB over the same Delta files.

One command, in a throw-away lake (no services; the lead runs it alone on the machine)::

    .venv/bin/python benchmarks/bench_lake.py                      # 1M and 10M events
    .venv/bin/python benchmarks/bench_lake.py --sizes 20000        # a minute

For each size:

1. one day of bronze (``--sizes`` events) and the dimensions are written with numpy and
   delta-rs (``lake_data.py``: Zipf songs over a synthetic catalog, ~events/20 listeners, a
   few countries and devices, skips, 0.2 % redelivered events), not through Kafka or
   PostgreSQL, so making the data is not what is measured;
2. every job of ``pipelines.lake.audit.JOBS`` runs for that day, in order, on Spark
   ``local[2]`` (the dims job reads PostgreSQL: its tables were written in step 1;
   publish_top_songs writes to PostgreSQL: not run). Per table: seconds, rows in and out,
   rows in per second (the job's own ``RunRecord``); per job: the peak RSS of the Spark
   driver's JVM and of this Python process, sampled every 0.1 s. A job whose module is still
   a stub is reported ``missing``, one that raises ``failed`` (with its error), and unlike
   ``encore lake build`` the benchmark goes on with the next job (most read only silver);
3. ``daily_song_plays``, DAU (``daily_active_users.dau``) and ``skip_rates`` for the day are
   computed again by polars (``scan_delta``) and DuckDB (over delta-rs's Arrow dataset:
   DuckDB's own delta extension is downloaded at run time, which this machine cannot), each
   in a fresh process (its peak RSS is its own), from the ``silver.plays`` files Spark
   wrote, and their rows are compared with Spark's: the comparison is honest only if they
   agree, and the JSON says whether they do.

One Spark session serves every size (sizes run smallest first; a JVM's heap rarely shrinks,
so a size's JVM peak is at least the previous one's). Spark's seconds include the JVM
warming up on the first size; its start is reported apart.

Prints one table per size and saves JSON to ``benchmarks/results/lake.json`` (``--out``),
with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "lake.json"
NOT_RUN = ("dims", "publish_top_songs")
"""Jobs of JOBS that talk to PostgreSQL: the benchmark writes dims itself and publishes nothing."""
MB = 1024 * 1024


# -- memory ---------------------------------------------------------------------------------


@dataclass
class Peak:
    jvm_rss: int = 0
    python_rss: int = 0


@dataclass
class MemorySampler:
    """Samples this process's RSS and its Java children's (the Spark driver JVM) in a thread;
    ``phase()`` yields the peaks seen while its block ran."""

    interval_s: float = 0.1
    _phases: list[Peak] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> MemorySampler:
        import psutil

        self._me = psutil.Process()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> Peak:
        import psutil

        jvm = 0
        for child in self._me.children(recursive=True):
            try:
                if "java" in child.name():
                    jvm += child.memory_info().rss
            except psutil.Error:
                pass
        return Peak(jvm_rss=jvm, python_rss=self._me.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._record(self._sample())

    def _record(self, now: Peak) -> None:
        for peak in list(self._phases):
            peak.jvm_rss = max(peak.jvm_rss, now.jvm_rss)
            peak.python_rss = max(peak.python_rss, now.python_rss)

    @contextmanager
    def phase(self) -> Iterator[Peak]:
        peak = Peak()
        self._phases.append(peak)
        self._record(self._sample())
        try:
            yield peak
        finally:
            self._record(self._sample())
            self._phases.remove(peak)


# -- the Spark build ------------------------------------------------------------------------


def run_spark_jobs(spark, settings, day: date, sampler: MemorySampler) -> list[dict]:
    """Run every job of JOBS but ``NOT_RUN`` for ``day``, in order; one result per job."""
    from pipelines.lake.audit import JOBS

    results: list[dict] = []
    for job in JOBS:
        if job.name in NOT_RUN:
            continue
        result: dict = {"job": job.name}
        results.append(result)
        try:
            function = job.load()
        except (ImportError, AttributeError) as error:
            result |= {"status": "missing", "error": f"{job.target}: {error}"}
            continue
        started = time.perf_counter()
        with sampler.phase() as peak:
            try:
                records = function(spark, settings, day)
            except Exception as error:  # reported; the jobs after it may still run
                result |= {"status": "failed", "error": _error_text(error)}
                records = []
        result |= {
            "status": result.get("status", "ok"),
            "seconds": round(time.perf_counter() - started, 3),
            "peak_jvm_rss_mb": round(peak.jvm_rss / MB),
            "peak_python_rss_mb": round(peak.python_rss / MB),
            "tables": [_table_figures(r) for r in records],
        }
    return results


def _error_text(error: BaseException) -> str:
    last = traceback.extract_tb(error.__traceback__)[-1:]
    where = f" at {last[0].filename}:{last[0].lineno}" if last else ""
    return f"{type(error).__name__}: {error}"[:500] + where


def _table_figures(record) -> dict:
    return {
        "table": record.table,
        "rows_in": record.rows_in,
        "rows_out": record.rows_out,
        "seconds": record.seconds,
        "rows_in_per_s": round(record.rows_in / record.seconds) if record.seconds else None,
    }


# -- the same gold tables on polars and DuckDB ----------------------------------------------

UNKNOWN_GENRE = "unknown"
"""skip_rates' genre of a play whose song the catalog does not know (as the Spark job)."""
QUERIES = ("daily_song_plays", "daily_active_users", "skip_rates")
ENGINES = ("polars", "duckdb")
COMPARED = {
    "daily_song_plays": (
        "country_code", "device_type", "song_id", "artist_id", "genre", "song_known",
        "plays", "likes", "listeners", "completed", "skips", "ms_played",
    ),
    "daily_active_users": ("country_code", "dau"),
    "skip_rates": ("scope", "subject_id", "genre", "plays", "skips", "skip_rate"),
}  # fmt: skip
"""The columns compared with Spark's table, per query (DAU only of daily_active_users: its
other columns need 28 days of history)."""


def polars_query(query: str, silver_plays: str, day: date):
    """``query``'s rows for ``day`` from silver.plays with polars, as a pyarrow table."""
    import polars as pl

    rows = pl.scan_delta(silver_plays).filter(pl.col("event_date") == day)
    # as the Spark jobs: a like is not a listening (daily_song_plays counts likes apart)
    listening = pl.col("event_type") != "like"
    plays = rows.filter(listening)
    if query == "daily_song_plays":
        frame = rows.group_by("country_code", "device_type", "song_id").agg(
            pl.col("artist_id").first(),
            pl.col("genre").first(),
            pl.col("song_known").first(),
            listening.sum().cast(pl.Int64).alias("plays"),
            (~listening).sum().cast(pl.Int64).alias("likes"),
            pl.col("user_id").filter(listening).n_unique().cast(pl.Int64).alias("listeners"),
            pl.col("completed").sum().cast(pl.Int64),
            pl.col("skipped").sum().cast(pl.Int64).alias("skips"),
            pl.col("ms_played").sum().cast(pl.Int64),
        )
    elif query == "daily_active_users":
        by_country = plays.group_by("country_code").agg(
            pl.col("user_id").n_unique().cast(pl.Int64).alias("dau")
        )
        everyone = plays.select(
            pl.lit("ALL").alias("country_code"),
            pl.col("user_id").n_unique().cast(pl.Int64).alias("dau"),
        )
        frame = pl.concat([by_country, everyone])
    elif query == "skip_rates":

        def rates(scope: str, subject: str, rows: pl.LazyFrame) -> pl.LazyFrame:
            counts = [
                pl.len().cast(pl.Int64).alias("plays"),
                pl.col("skipped").sum().cast(pl.Int64).alias("skips"),
            ]
            if subject != "genre":
                counts.append(pl.col("genre").first())
            return (
                rows.group_by(subject)
                .agg(counts)
                .select(
                    pl.lit(scope).alias("scope"),
                    pl.col(subject).alias("subject_id"),
                    "genre",
                    "plays",
                    "skips",
                    (pl.col("skips") / pl.col("plays")).alias("skip_rate"),
                )
            )

        # as the Spark job: plays of unknown songs count under the genre "unknown"
        tagged = plays.with_columns(pl.col("genre").fill_null(UNKNOWN_GENRE))
        frame = pl.concat([rates("song", "song_id", tagged), rates("genre", "genre", tagged)])
    else:
        raise ValueError(f"unknown query {query!r}; known: {', '.join(QUERIES)}")
    return frame.collect().to_arrow()


DUCKDB_SQL = {
    "daily_song_plays": """
        SELECT country_code, device_type, song_id, first(artist_id) AS artist_id,
               first(genre) AS genre,
               first(song_known) AS song_known,
               count(*) FILTER (WHERE event_type <> 'like') AS plays,
               count(*) FILTER (WHERE event_type = 'like') AS likes,
               count(DISTINCT user_id) FILTER (WHERE event_type <> 'like') AS listeners,
               sum(completed::BIGINT) AS completed, sum(skipped::BIGINT) AS skips,
               sum(ms_played)::BIGINT AS ms_played
        FROM plays WHERE event_date = $day GROUP BY country_code, device_type, song_id""",
    "daily_active_users": """
        SELECT country_code, count(DISTINCT user_id) AS dau
        FROM plays WHERE event_date = $day AND event_type <> 'like' GROUP BY country_code
        UNION ALL
        SELECT 'ALL', count(DISTINCT user_id) FROM plays
        WHERE event_date = $day AND event_type <> 'like'""",
    "skip_rates": """
        WITH tagged AS (
            SELECT song_id, coalesce(genre, 'unknown') AS genre, skipped::BIGINT AS skip
            FROM plays WHERE event_date = $day AND event_type <> 'like')
        SELECT 'song' AS scope, song_id AS subject_id, first(genre) AS genre,
               count(*) AS plays, sum(skip) AS skips, sum(skip) / count(*) AS skip_rate
        FROM tagged GROUP BY song_id
        UNION ALL
        SELECT 'genre', genre, genre, count(*), sum(skip), sum(skip) / count(*)
        FROM tagged GROUP BY genre""",
}


def duckdb_query(query: str, silver_plays: str, day: date):
    """``query``'s rows for ``day`` from silver.plays with DuckDB, as a pyarrow table."""
    import duckdb
    from deltalake import DeltaTable

    if query not in DUCKDB_SQL:
        raise ValueError(f"unknown query {query!r}; known: {', '.join(QUERIES)}")
    connection = duckdb.connect()
    # the Arrow dataset lets DuckDB push the day's filter down to the partition
    connection.register("plays", DeltaTable(silver_plays).to_pyarrow_dataset())
    return connection.sql(DUCKDB_SQL[query], params={"day": day}).to_arrow_table()


ENGINE_QUERIES: dict[str, Callable] = {"polars": polars_query, "duckdb": duckdb_query}


def own_peak_rss() -> int:
    """This process's peak RSS in bytes: ``VmHWM``, the high-water mark of its own memory.

    Not ``ru_maxrss``: Linux keeps it across ``exec``, so a spawned child reports its
    parent's RSS at the fork (the first runs of this benchmark printed the parent's 672 MB
    for every engine)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def engine_child(engine: str, query: str, silver_plays: str, day: date, out: str) -> dict:
    """Run in a fresh process: import the engine, time the query, save its rows to ``out``
    (Parquet). Peak RSS is the process's own (interpreter and engine included); the RSS
    before the query is reported too."""
    import psutil
    import pyarrow.parquet as pq

    if engine == "polars":
        import polars  # noqa: F401
    else:
        import duckdb  # noqa: F401
    import deltalake  # noqa: F401

    before = psutil.Process().memory_info().rss
    started = time.perf_counter()
    rows = ENGINE_QUERIES[engine](query, silver_plays, day)
    seconds = time.perf_counter() - started
    pq.write_table(rows, out)
    peak = own_peak_rss()
    return {
        "seconds": round(seconds, 3),
        "rows": rows.num_rows,
        "rss_before_mb": round(before / MB),
        "peak_rss_mb": round(peak / MB),
    }


def comparable(table, columns: tuple[str, ...]) -> set[tuple]:
    """The rows of ``table`` over ``columns`` as a set (doubles rounded: engines sum in
    different orders)."""
    data = table.select(list(columns)).to_pylist()
    return {tuple(round(v, 9) if isinstance(v, float) else v for v in row.values()) for row in data}


def compare(query: str, spark_rows, engine_rows) -> dict:
    """Whether ``engine_rows`` equal Spark's over ``COMPARED[query]``; a few differences."""
    columns = COMPARED[query]
    spark, engine = comparable(spark_rows, columns), comparable(engine_rows, columns)
    only_spark, only_engine = sorted(spark - engine, key=str), sorted(engine - spark, key=str)
    # a set hides repeated rows: equal sizes prove there were none on either side
    distinct = len(spark) == spark_rows.num_rows and len(engine) == engine_rows.num_rows
    result = {"agrees": distinct and not only_spark and not only_engine}
    if not result["agrees"]:
        result |= {
            "only_in_spark": len(only_spark),
            "only_in_engine": len(only_engine),
            "examples": {"spark": only_spark[:2], "engine": only_engine[:2]},
        }
    return result


def spark_rows(settings, query: str, day: date):
    """Spark's rows of ``gold.<query>`` for ``day`` (read with delta-rs); None if absent."""
    import pyarrow.dataset as ds
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    from encore.tables import get_table

    try:
        table = DeltaTable(get_table(f"gold.{query}").path(settings))
    except TableNotFoundError:
        return None
    return table.to_pyarrow_dataset().to_table(filter=ds.field("day") == day)


def run_engines(settings, day: date, work: Path) -> dict:
    """Every query on every engine, each in a fresh process, checked against Spark's rows."""
    from encore.tables import SILVER_PLAYS

    silver = SILVER_PLAYS.path(settings)
    if not Path(silver, "_delta_log").exists():
        return {"error": "silver.plays was not built: nothing to compare"}
    import pyarrow.parquet as pq

    results: dict = {}
    for query in QUERIES:
        expected = spark_rows(settings, query, day)
        results[query] = {"spark_rows": None if expected is None else expected.num_rows}
        for engine in ENGINES:
            out = work / f"{engine}-{query}.parquet"
            try:
                with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
                    figures = pool.submit(engine_child, engine, query, silver, day, str(out))
                    figures = figures.result()
            except Exception as error:  # e.g. the engine is not installed
                results[query][engine] = {"error": _error_text(error)}
                continue
            if expected is not None:
                figures |= compare(query, expected, pq.read_table(out))
            results[query][engine] = figures
    return results


# -- one size -------------------------------------------------------------------------------


def bench_size(spark, settings, events: int, songs: int | None, day: date, seed: int, sampler):
    """Write the data for ``events``, build it with Spark, recompute gold with the others."""
    from lake_data import Shape, write_bronze_day, write_dims

    shape = Shape.for_events(events, songs)
    started = time.perf_counter()
    dims = write_dims(settings, shape, seed)
    written = write_bronze_day(settings, shape, day, seed)
    bronze = written["rows"]
    generate_s = time.perf_counter() - started
    print(
        f"\n{bronze:,} bronze events on {day}, {shape.songs:,} songs, "
        f"{shape.listeners:,} listeners (written in {generate_s:.1f} s)",
        flush=True,
    )
    started = time.perf_counter()
    jobs = run_spark_jobs(spark, settings, day, sampler)
    spark_s = time.perf_counter() - started
    engines = run_engines(settings, day, Path(settings.home))
    return {
        "events": bronze,
        "redelivered": written["redelivered"],
        "songs": shape.songs,
        "listeners": shape.listeners,
        "dims": dims,
        "generate_s": round(generate_s, 2),
        "lake_bytes": _bytes_under(Path(settings.lake_root)),
        "spark": {"total_s": round(spark_s, 2), "jobs": jobs},
        "engines": engines,
    }


def _bytes_under(folder: Path) -> dict[str, int]:
    return {
        layer.name: sum(f.stat().st_size for f in layer.rglob("*") if f.is_file())
        for layer in sorted(folder.iterdir())
    }


def print_size(result: dict) -> None:
    print(f"\n{result['events']:,} events: Spark local[2], {result['spark']['total_s']:.1f} s")
    header = f"{'job / table':34}{'status':>9}{'s':>8}{'rows in':>12}{'rows out':>12}"
    print(header + f"{'rows/s':>11}{'JVM MB':>8}{'py MB':>7}")
    for job in result["spark"]["jobs"]:
        memory = f"{job.get('peak_jvm_rss_mb', ''):>8}{job.get('peak_python_rss_mb', ''):>7}"
        seconds = f"{job['seconds']:>8.2f}" if "seconds" in job else f"{'':>8}"
        print(f"{job['job']:34}{job['status']:>9}{seconds}{'':>24}{'':>11}{memory}")
        for table in job.get("tables", []):
            rate = table["rows_in_per_s"]
            print(
                f"  {table['table']:32}{'':>9}{table['seconds']:>8.2f}{table['rows_in']:>12,}"
                f"{table['rows_out']:>12,}{rate or 0:>11,}"
            )
        if job["status"] != "ok":
            print(f"  {job['error'][:110]}")
    engines = result["engines"]
    if "error" in engines:
        print(f"engines: {engines['error']}")
        return
    spark_seconds = {
        t["table"]: t["seconds"] for job in result["spark"]["jobs"] for t in job.get("tables", [])
    }
    print(f"\n{'gold table (one day)':24}{'engine':>8}{'s':>8}{'rows':>10}{'peak MB':>9}  agrees")
    for query, by_engine in engines.items():
        spark_s = spark_seconds.get(f"gold.{query}")
        spark_cell = f"{spark_s:>8.2f}" if spark_s is not None else f"{'-':>8}"
        print(f"{query:24}{'spark':>8}{spark_cell}{by_engine['spark_rows'] or '-':>10}")
        for engine in ENGINES:
            figures = by_engine[engine]
            if "error" in figures:
                print(f"{'':24}{engine:>8}  {figures['error'][:80]}")
                continue
            agrees = {True: "yes", False: "NO"}.get(figures.get("agrees"), "no Spark table")
            print(
                f"{'':24}{engine:>8}{figures['seconds']:>8.2f}{figures['rows']:>10,}"
                f"{figures['peak_rss_mb']:>9}  {agrees}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--songs", type=int, default=None, help="catalog size (events/100)")
    parser.add_argument("--day", type=date.fromisoformat, default=None, help="default: yesterday")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default=None, help="default: spark.driver_memory")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true", help="keep the temporary lakes")
    args = parser.parse_args()

    from lake_data import yesterday

    from encore.engines import create_spark_session
    from encore.settings import Settings

    day = args.day or yesterday()
    load_before = os.getloadavg()
    result: dict = {
        "benchmark": "lake",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_lake.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version()},
        "load_avg_before": load_before,
        "day": str(day),
        "sizes": [],
    }
    base = Path(tempfile.mkdtemp(prefix="encore-bench-lake-"))
    spark_conf = {"master": args.master}
    if args.driver_memory:
        spark_conf["driver_memory"] = args.driver_memory
    # development: the gold jobs' pseudonym key is the built-in one (a throw-away lake)
    settings = Settings(home=base, spark=spark_conf, development=True)
    result["spark_settings"] = settings.spark.model_dump()
    spark = None
    try:
        with MemorySampler() as sampler:
            started = time.perf_counter()
            with sampler.phase() as peak:
                spark = create_spark_session(settings, "encore-bench-lake")
            result["spark_start_s"] = round(time.perf_counter() - started, 2)
            result["spark_start_jvm_rss_mb"] = round(peak.jvm_rss / MB)
            for events in sorted(args.sizes):
                home = base / f"events-{events}"
                home.mkdir()
                sized = settings.model_copy(
                    update={
                        "home": home,
                        "lake": settings.lake.model_copy(update={"root": str(home / "lake")}),
                    }
                )
                figures = bench_size(spark, sized, events, args.songs, day, args.seed, sampler)
                result["sizes"].append(figures)
                print_size(figures)
    finally:
        if spark is not None:
            spark.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    result["load_avg_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nload average before {load_before[0]:.2f}, after {result['load_avg_after'][0]:.2f}")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
