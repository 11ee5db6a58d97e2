"""Search latency and throughput at catalog scale: the API beside its own SQL statement.

Loads a synthetic catalog of ``--songs`` songs with ``streaming_api.catalog.load`` into a
database of its own (``bench_search_<songs>`` on the PostgreSQL of the current settings,
kept between runs: a second run with the same size reuses it), then in the same run:

1. EXPLAIN ANALYZE of the search statement for a title and a typo query: which indexes it
   reads (GIN full text; trigram for the typo; no sequential scan of ``songs``);
2. the baseline: the search statement alone (``streaming_api.catalog.search``'s SQL on one
   autocommit connection, no HTTP), p50/p99 and statements/s, one client, after one untimed
   pass over the queries (the API rows meet a warm cache too);
3. ``GET /api/v1/search`` through ``encore api`` (started by the supervisor like any service,
   ``--workers`` uvicorn workers) at each ``--concurrency``: p50/p99 and requests/s.

Queries are a realistic mix drawn from the loaded catalog (seeded): exact song titles,
artist names, titles typed part-way ("come toget"), artist names with two letters swapped
("beatels"), and title plus artist. Each kind's hit rate (the drawn song or artist in the
first page) is reported as a sanity check of relevance. Prints a table with the load
average, saves JSON (default ``benchmarks/results/search.json``). Clients run on the same
machine and take CPU from the API and PostgreSQL; the figures are a lower bound.

    ENCORE_HOME=/tmp/bench .venv/bin/encore up postgres
    ENCORE_HOME=/tmp/bench .venv/bin/python benchmarks/bench_search.py            # 1M songs
    ENCORE_HOME=/tmp/bench .venv/bin/python benchmarks/bench_search.py --songs 50000 \\
        --requests 600 --concurrency 1 4                                          # a quick look

Loading 1M songs takes several minutes the first time; run it alone on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from encore import services
from encore.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parent.parent
INDEXES = ("songs_search", "songs_title_trgm", "artists_search", "artists_name_trgm")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_database(settings: Settings, name: str) -> Settings:
    """``settings`` on database ``name`` of the same server (DSN or embedded cluster)."""
    postgres = settings.postgres
    if postgres.dsn:
        base, _, rest = postgres.dsn.rpartition("/")
        query = rest.partition("?")[2]
        dsn = f"{base}/{name}" + (f"?{query}" if query else "")
        return settings.model_copy(update={"postgres": postgres.model_copy(update={"dsn": dsn})})
    return settings.model_copy(update={"postgres": postgres.model_copy(update={"database": name})})


def prepare_catalog(settings: Settings, name: str, songs: int, songs_per_artist: int) -> Settings:
    """Database ``name`` migrated and holding at least ``songs`` songs (loaded if short)."""
    import psycopg

    from encore.db import migrate
    from streaming_api.catalog.load import load_catalog

    with psycopg.connect(settings.postgres.effective_dsn, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')
    bench = with_database(settings, name)
    migrate.upgrade(bench)
    with psycopg.connect(bench.postgres.effective_dsn, autocommit=True) as connection:
        have = connection.execute("SELECT count(*) FROM songs").fetchone()[0]
    if have < songs:
        artists = -(-songs // songs_per_artist)
        print(f"loading {artists:,} artists x {songs_per_artist} songs ...", file=sys.stderr)
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            print(f"\r  {done:,}/{total:,} artists", end="", file=sys.stderr, flush=True)

        load_catalog(
            bench, artists=artists, songs_per_artist=songs_per_artist, seed=7, progress=progress
        )
        print(f"\n  loaded in {time.monotonic() - started:.0f} s", file=sys.stderr)
        with psycopg.connect(bench.postgres.effective_dsn, autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE")
    return bench


def draw_queries(settings: Settings, count: int, seed: int) -> list[dict]:
    """``count`` queries of five kinds from songs drawn (seeded) from the catalog."""
    import psycopg

    with psycopg.connect(settings.postgres.effective_dsn) as connection:
        total = connection.execute("SELECT count(*) FROM songs").fetchone()[0]
        rows = connection.execute(
            "SELECT s.song_id, s.title, ar.artist_id, ar.name FROM songs AS s"
            " TABLESAMPLE BERNOULLI (%s) REPEATABLE (%s)"
            " JOIN artists AS ar ON ar.artist_id = s.artist_id ORDER BY s.song_id",
            (min(100.0, 100.0 * 4 * count / max(total, 1)), seed),
        ).fetchall()
    rng = random.Random(seed)
    rng.shuffle(rows)
    kinds = ["title", "artist", "prefix", "typo", "title artist"]
    queries = []
    for index, (song_id, title, artist_id, artist) in enumerate(rows[:count]):
        kind = kinds[index % len(kinds)]
        if kind == "title":
            q, expect = title, ("songs", song_id)
        elif kind == "artist":
            q, expect = artist, ("artists", artist_id)
        elif kind == "prefix":
            q, expect = title[: max(3, (len(title) * 2) // 3)], ("songs", song_id)
        elif kind == "typo":
            q, expect = swap_two_letters(artist, rng), ("artists", artist_id)
        else:
            q, expect = f"{title} {artist}", ("songs", song_id)
        queries.append({"kind": kind, "q": q, "expect": expect})
    return queries


def swap_two_letters(name: str, rng: random.Random) -> str:
    """``name`` with two adjacent letters of its longest word swapped ("beatles" -> "beatels")."""
    words = name.split()
    longest = max(range(len(words)), key=lambda i: len(words[i]))
    word = words[longest]
    if len(word) < 4:
        return name
    at = rng.randrange(1, len(word) - 2)
    words[longest] = word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    return " ".join(words)


def explain(settings: Settings, queries: list[dict]) -> dict:
    """EXPLAIN ANALYZE of the search statement for one title and one typo query: the indexes
    planned, and those actually read (the typo arm's trigram scans run only as a fallback)."""
    from sqlalchemy import text

    from encore.db import create_engine
    from streaming_api.catalog.search import SEARCH_TYPES, search_parameters, search_statement

    engine = create_engine(settings)
    plans = {}
    try:
        with engine.connect() as connection:
            for kind in ("title", "typo"):
                q = next(query["q"] for query in queries if query["kind"] == kind)
                statement = text("EXPLAIN ANALYZE " + search_statement(SEARCH_TYPES))
                lines = [
                    row[0] for row in connection.execute(statement, search_parameters(q, 20, 0))
                ]
                scans = {
                    index: [line for line in lines if f"Index Scan on {index} " in line]
                    for index in INDEXES
                }
                plans[kind] = {
                    "q": q,
                    "indexes_planned": [index for index, found in scans.items() if found],
                    "indexes_read": [
                        index
                        for index, found in scans.items()
                        if any("never executed" not in line for line in found)
                    ],
                    "seq_scan_on_songs": any("Seq Scan on songs" in line for line in lines),
                    "plan": "\n".join(lines),
                }
    finally:
        engine.dispose()
    return plans


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def bench_sql(settings: Settings, queries: list[dict]) -> tuple[dict, dict]:
    """The search statement alone, one client; also each query kind's hit rate."""
    from sqlalchemy import text

    from encore.db import create_engine
    from streaming_api.catalog.search import SEARCH_TYPES, search_parameters, search_statement

    statement = text(search_statement(SEARCH_TYPES))
    engine = create_engine(settings)
    latencies = []
    found: dict[str, list[bool]] = {}
    try:
        with engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            for query in queries:  # warm the cache as the API rows will find it
                connection.execute(statement, search_parameters(query["q"], 20, 0)).all()
            started = time.perf_counter()
            for query in queries:
                sent = time.perf_counter()
                rows = connection.execute(statement, search_parameters(query["q"], 20, 0)).all()
                latencies.append(time.perf_counter() - sent)
                kind, wanted = query["expect"]
                ids = {row.id for row in rows if row.kind + "s" == kind}
                found.setdefault(query["kind"], []).append(wanted in ids)
            elapsed = time.perf_counter() - started
    finally:
        engine.dispose()
    latencies.sort()
    result = {
        "what": "SQL statement, 1 client",
        "requests": len(latencies),
        "seconds": elapsed,
        "per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "load_1m_after": os.getloadavg()[0],
    }
    hit_rates = {kind: sum(hits) / len(hits) for kind, hits in found.items()}
    return result, hit_rates


def wait_ready(base: str, timeout_s: float = 60) -> None:
    """Until the API reaches PostgreSQL (Kafka is not needed by search)."""
    deadline = time.monotonic() + timeout_s
    url = f"{base}/api/v1/health/ready"
    while True:
        try:
            if httpx.get(url, timeout=10).json()["checks"].get("postgres") == "ok":
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"the API at {base} was not ready within {timeout_s:.0f} s")
        time.sleep(0.3)


def bench_api(base: str, token: str, queries: list[dict], requests: int, clients: int) -> dict:
    """``requests`` searches from ``clients`` threads, cycling through the queries."""
    url = f"{base}/api/v1/search"
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    cursor = iter(range(requests))

    def client() -> None:
        with httpx.Client(timeout=60, headers=headers) as http:
            while True:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                q = queries[index % len(queries)]["q"]
                sent = time.perf_counter()
                answer = http.get(url, params={"q": q})
                took = time.perf_counter() - sent
                with lock:
                    if answer.status_code == 200:
                        latencies.append(took)
                    else:
                        failures.append(f"{answer.status_code} for {q!r}: {answer.text[:200]}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, first: {failures[0]}")
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "load_1m_after": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--songs", type=int, default=1_000_000)
    parser.add_argument("--songs-per-artist", type=int, default=20)
    parser.add_argument("--queries", type=int, default=500, help="distinct queries drawn")
    parser.add_argument("--requests", type=int, default=3000, help="API requests per row")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of the API")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/search.json")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    settings = get_settings()
    if not services.status(settings, ["postgres"])[0].healthy:
        raise SystemExit("PostgreSQL is not answering: run `encore up postgres` first")
    bench = prepare_catalog(
        settings, f"bench_search_{args.songs}", args.songs, args.songs_per_artist
    )
    queries = draw_queries(bench, args.queries, seed=11)
    print(f"{len(queries)} queries drawn; EXPLAIN ...", file=sys.stderr)
    plans = explain(bench, queries)
    print("the search statement alone ...", file=sys.stderr)
    sql, hit_rates = bench_sql(bench, queries)
    rows = [sql]

    api = bench.api.model_copy(update={"port": free_port(), "workers": args.workers})
    served = bench.model_copy(update={"api": api, "development": True})
    with services.running(served, "api", instance="bench-search"):
        base = f"http://{served.api.host}:{served.api.port}"
        wait_ready(base)
        token = served.api.service_token.get_secret_value()
        bench_api(base, token, queries, min(len(queries), 200), 2)  # warm up every worker
        for clients in args.concurrency:
            print(f"API: {args.workers} worker(s), {clients} clients ...", file=sys.stderr)
            result = bench_api(base, token, queries, args.requests, clients)
            rows.append({"what": f"API, {args.workers} worker(s), {clients} clients", **result})

    print(f"\n{'what':<30} {'requests':>8} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8} {'load':>5}")
    for row in rows:
        print(
            f"{row['what']:<30} {row['requests']:>8,} {row['per_s']:>8,.0f} "
            f"{row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} {row['load_1m_after']:>5.1f}"
        )
    print("\nhit rate (the drawn song or artist on the first page):")
    for kind, rate in hit_rates.items():
        print(f"  {kind:<14} {rate:6.1%}")
    for kind, plan in plans.items():
        seq = "a seq scan of songs" if plan["seq_scan_on_songs"] else "no seq scan of songs"
        print(
            f"EXPLAIN ANALYZE {kind} {plan['q']!r}: read {', '.join(plan['indexes_read'])} "
            f"(planned {', '.join(plan['indexes_planned'])}); {seq}"
        )

    result = {
        "benchmark": "search",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_1m_before": load_before,
        },
        "songs": args.songs,
        "songs_per_artist": args.songs_per_artist,
        "queries": len(queries),
        "query_kinds": sorted({query["kind"] for query in queries}),
        "workers": args.workers,
        "rows": rows,
        "hit_rates": hit_rates,
        "explain": plans,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nsaved {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
