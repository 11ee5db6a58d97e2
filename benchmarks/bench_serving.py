"""The recommendation service under load, beside a bare FastAPI endpoint (issue 11, item 9).

One run, side by side, on a world of its own: a private platform (Redis, PostgreSQL, MLflow
in a temporary ENCORE_HOME on free ports), an ALS model trained on synthetic plays of
``--listeners`` x ``--songs`` (``models.synthetic``) and registered with its FAISS index,
``dims.songs`` and ``dims.users`` in a private lake, Redis holding every listener's
precomputed list (``recs:v1``, through ``serving.precompute``), recent plays for a tenth of
them (``recent:v1``: sessions) and each country's trending window, every listener's, song's
and artist's features written to Feast's online store, and a LightGBM LambdaRank ranker over
those features registered as the ranker champion (fitted on random impressions: its scores
mean nothing, its cost per request is the real second stage's). The full world takes
minutes to build (on this machine, unloaded, roughly: synthetic plays 3-6 min, ALS training
and registration 2-3 min, lists and features 1-2 min); ``--small`` takes about two.

Then, with the same Go client (``benchmarks/loadgen``, standard library, built here: a Python
client on these two cores would take more CPU per request than the bare endpoint spends),
the same concurrency, duration and uvicorn worker count:

1. the bare endpoint (``benchmarks/bare_app.py``: a fixed list of 20 songs as JSON);
2. ``GET /api/v1/recommendations/for-you`` of ``encore serve``, listener JWTs of 2,000
   listeners in turn;
3. Feast's online read of one listener's features (``get_online_features``, in process);
4. the swap under load: for-you again (at least 30 s) while the ``champion`` alias moves to
   a second registered version (the same vectors, registered before the run) a third of the
   way in; requests, errors, and how long the service took to swap. After the swap the
   precomputed lists name the old version, so the service searches the index per request,
   as it would until the next ``encore recs precompute``.

Goal: for-you p99 at most 15 ms and at least half the bare endpoint's requests/s. Prints a
table, saves JSON (default ``benchmarks/results/serving.json``; ``--small``:
``serving-small.json``). The client runs on the same machine and takes CPU from the servers,
the same for both. Refuses to run on a busy machine (1-minute load above the cores) unless
``--force``.

    .venv/bin/python benchmarks/bench_serving.py            # 100k listeners x 50k songs
    .venv/bin/python benchmarks/bench_serving.py --small    # 5k x 2k, a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
MODEL = "bench-serving-als"
ALS = {"factors": 64, "iterations": 12, "weighting": "log"}
COUNTRIES = ["US", "GB", "DE", "FR", "SE", "BR", "JP"]
GENRES = ["rock", "pop", "jazz", "folk", "metal", "soul", "hip-hop", "electronic", "classical"]
SESSION_SHARE = 0.1
"""Listeners with plays in the last minutes (their answer takes the session path)."""
TOKENS = 2000
"""Listeners the client cycles through (one JWT each)."""
LIMIT = 20
FEAST_READS = 2000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the platform ----------------------------------------------------------------------------


def platform_env(home: Path, workers: int) -> dict[str, str]:
    """ENCORE_* variables of the benchmark's own platform, for this process and children."""
    return {
        "ENCORE_HOME": str(home),
        "ENCORE_DEVELOPMENT": "true",
        "ENCORE_REDIS__PORT": str(free_port()),
        "ENCORE_POSTGRES__PORT": str(free_port()),
        "ENCORE_MLFLOW__PORT": str(free_port()),
        "ENCORE_KAFKA__PORT": str(free_port()),
        "ENCORE_KAFKA__CONTROLLER_PORT": str(free_port()),
        "ENCORE_SERVING__PORT": str(free_port()),
        "ENCORE_SERVING__WORKERS": str(workers),
        "ENCORE_SERVING__MODEL_NAME": MODEL,
        "ENCORE_SERVING__REGISTRY_POLL_S": "1",
    }


@contextmanager
def private_platform(workers: int) -> Iterator:
    """Redis, PostgreSQL and MLflow in a temporary home; settings from its environment."""
    from encore import services
    from encore.settings import get_settings

    home = Path(tempfile.mkdtemp(prefix="encore-bench-serving-"))
    home.chmod(0o755)  # PostgreSQL runs as its own user when we are root
    saved = dict(os.environ)
    os.environ.update(platform_env(home, workers))
    get_settings.cache_clear()
    settings = get_settings()
    try:
        say(f"platform in {home}: redis, postgres, mlflow")
        services.up(settings, ["postgres", "redis", "mlflow"])
        yield settings
    finally:
        services.down(settings)
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()
        shutil.rmtree(home, ignore_errors=True)


# -- the world -------------------------------------------------------------------------------


def write_table(settings, table, columns: dict[str, list]) -> None:
    from deltalake import write_deltalake

    schema = table.arrow_schema()
    data = pa.table({f.name: pa.array(columns[f.name], f.type) for f in schema}, schema=schema)
    write_deltalake(table.path(settings), data, mode="overwrite")


def write_dimensions(settings, song_ids: list[str], user_ids: list[str], seed: int) -> None:
    """``dims.songs`` (five songs an artist, a genre each, popularity falling, every tenth
    explicit, a quarter licensed in fewer countries) and ``dims.users`` (a country each,
    half allowing explicit songs)."""
    from encore.tables import DIM_SONGS, DIM_USERS

    rng = np.random.default_rng(seed)
    now = datetime.now(UTC)
    n = len(song_ids)
    write_table(
        settings,
        DIM_SONGS,
        {
            "song_id": song_ids,
            "title": [f"Song {i}" for i in range(n)],
            "artist_id": [f"artist-{i // 5}" for i in range(n)],
            "album_id": [f"album-{i // 5}" for i in range(n)],
            "track_number": [i % 5 + 1 for i in range(n)],
            "genre": [GENRES[g] for g in rng.integers(0, len(GENRES), n)],
            "duration_ms": rng.integers(120_000, 360_000, n).tolist(),
            "release_date": [date(2020, 1, 1)] * n,
            "explicit": [i % 10 == 3 for i in range(n)],
            "territories": [COUNTRIES[:3] if i % 4 == 1 else COUNTRIES for i in range(n)],
            "popularity": (1e6 / np.arange(1, n + 1)).tolist(),
            "created_at": [now] * n,
            "updated_at": [now] * n,
        },
    )
    m = len(user_ids)
    write_table(
        settings,
        DIM_USERS,
        {
            "user_id": user_ids,
            "country": [COUNTRIES[c] for c in rng.integers(0, len(COUNTRIES), m)],
            "subscription_plan": ["free"] * m,
            "allow_explicit": [i % 2 == 1 for i in range(m)],
            "created_at": [now] * m,
            "updated_at": [now] * m,
        },
    )


def write_realtime(settings, bundle, song_ids: list[str], seed: int) -> dict:
    """Every listener's precomputed list, recent plays of a tenth, trending per country."""
    import redis

    from encore import keys
    from serving.precompute import write_lists

    rng = random.Random(seed)
    users = [str(u) for u in bundle.user_ids.tolist()]
    client = redis.Redis.from_url(settings.redis.effective_url)
    started = time.perf_counter()
    written = write_lists(
        client,
        bundle,
        users,
        top_n=settings.serving.recs_top_n,
        ttl_s=settings.serving.recs_ttl_s,
    )
    precompute_s = time.perf_counter() - started
    now_us = int(time.time() * 1e6)
    session_users = rng.sample(users, int(len(users) * SESSION_SHARE))
    with client.pipeline(transaction=False) as pipe:
        for user in session_users:
            key = keys.recent_key(user)
            for minutes in sorted(rng.sample(range(1, 20), 5), reverse=True):  # oldest first
                entry = keys.recent_entry(
                    str(uuid.uuid4()),
                    rng.choice(song_ids),
                    "complete",
                    now_us - minutes * 60_000_000,
                    180_000,
                )
                pipe.lpush(key, entry)  # newest ends first
            pipe.expire(key, settings.flink.redis_ttl_s)
        for country in COUNTRIES:
            top = rng.sample(song_ids[:2000], 200)
            pipe.zadd(keys.trending_key(country), {s: 1000 - i for i, s in enumerate(top)})
        pipe.execute()
    client.close()
    return {
        "recs_written": written,
        "precompute_seconds": precompute_s,
        "session_listeners": len(session_users),
    }


def random_columns(table, n: int, rng: np.random.Generator, given: dict[str, list]) -> dict:
    """``n`` rows of random values for ``table``'s columns, ``given`` ones as they are."""
    from datetime import timedelta

    now = datetime.now(UTC)
    columns: dict[str, list] = {}
    for column in table.columns:
        if column.name in given:
            columns[column.name] = given[column.name]
        elif column.dtype in ("long", "int"):
            columns[column.name] = rng.integers(0, 500, n).tolist()
        elif column.dtype == "double":
            columns[column.name] = rng.random(n).tolist()
        elif column.dtype == "string":
            columns[column.name] = [GENRES[g] for g in rng.integers(0, len(GENRES), n)]
        elif column.dtype == "timestamp":
            columns[column.name] = [now - timedelta(hours=int(h)) for h in rng.integers(1, 48, n)]
        elif column.dtype == "date":
            columns[column.name] = [now.date()] * n
    return columns


def write_online_features(settings, user_ids: list[str], song_ids: list[str], seed: int) -> None:
    """Every listener's, song's and artist's features in Feast's online store (random values:
    the benchmark times reads, not the values), the repo applied first."""
    import pandas as pd

    from encore.tables import ARTIST_POPULARITY, LISTENER_ACTIVITY, SONG_ACTIVITY
    from features import store

    store.apply(settings)
    feast = store.feature_store(settings)
    rng = np.random.default_rng(seed)
    artists = sorted({f"artist-{i // 5}" for i in range(len(song_ids))})
    song_artists = [f"artist-{i // 5}" for i in range(len(song_ids))]
    for table, given in (
        (LISTENER_ACTIVITY, {"user_id": user_ids}),
        (SONG_ACTIVITY, {"song_id": song_ids, "artist_id": song_artists}),
        (ARTIST_POPULARITY, {"artist_id": artists}),
    ):
        n = len(next(iter(given.values())))
        frame = pd.DataFrame(random_columns(table, n, rng, given))
        for start in range(0, n, 20_000):
            part = frame.iloc[start : start + 20_000].reset_index(drop=True)
            feast.write_to_online_store(table.name, part)


def listener_refs(settings) -> list[str]:
    from encore.tables import LISTENER_ACTIVITY
    from features import store

    view = store.feature_store(settings).get_feature_view(LISTENER_ACTIVITY.name)
    return [f"{view.name}:{f.name}" for f in view.features]


def register_ranker(settings, seed: int) -> str:
    """A LightGBM LambdaRank ranker over the service's features, fitted on random
    impressions (its scores mean nothing; its cost per request is the real one), registered
    as the ranker champion; its version."""
    import polars as pl

    from encore.tables import ARTIST_POPULARITY, LISTENER_ACTIVITY, SONG_ACTIVITY
    from features.definitions import NOT_FEATURES
    from models import ranker_training as rt
    from models.ranking import train_ranker

    rng = np.random.default_rng(seed)
    queries, per_query = 400, 20
    n = queries * per_query
    frame: dict[str, list] = {
        "query_id": np.repeat(np.arange(queries), per_query).tolist(),
        "song_id": [str(i) for i in rng.integers(0, 1000, n)],
        "label": (rng.random(n) < 0.1).astype(int).tolist(),
        "candidate_score": rng.random(n).tolist(),
        **{c: rng.integers(1, 200, n).tolist() for c in rt.REQUEST_FEATURES[1:]},
        "event_timestamp": [datetime.now(UTC)] * n,
    }
    for table, key in (
        (LISTENER_ACTIVITY, "user_id"),
        (SONG_ACTIVITY, "song_id"),
        (ARTIST_POPULARITY, "artist_id"),
    ):
        for name, values in random_columns(table, n, rng, {}).items():
            if name not in NOT_FEATURES and name != key:
                frame[f"{table.name}{rt.FEAST_SEPARATOR}{name}"] = values
    data = rt.with_derived_features(pl.DataFrame(frame))
    ranker = train_ranker(data, rt.ranker_feature_columns(data), seed=seed)
    metric = settings.models.registry_metric
    registered = rt.register_ranker(
        settings,
        ranker,
        params={"source": "bench_serving"},
        metrics={metric: 0.5},
        lineage={"name": "random impressions", "source": "bench_serving"},
        fingerprint="bench-serving",
    )
    return registered.version


def feast_read_latency(settings, refs: list[str], user_ids: list[str], seed: int) -> dict:
    """``get_online_features`` for one listener at a time, as the service's ranker reads."""
    from features import store

    feast = store.feature_store(settings)
    rng = random.Random(seed)
    sample = [rng.choice(user_ids) for _ in range(FEAST_READS + 100)]
    latencies, empty = [], 0
    for i, user in enumerate(sample):
        started = time.perf_counter()
        row = feast.get_online_features(features=refs, entity_rows=[{"user_id": user}]).to_dict()
        took = time.perf_counter() - started
        if i >= 100:  # the first reads open connections
            latencies.append(took)
            empty += row[refs[0].split(":", 1)[1]][0] is None
    latencies.sort()
    if empty:
        say(f"warning: {empty} Feast reads found no features (not written?)")
    return {
        "reads": len(latencies),
        "empty": empty,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
    }


# -- the servers and the client --------------------------------------------------------------


def build_loadgen(folder: Path) -> Path:
    binary = folder / "loadgen"
    go = shutil.which("go") or "/usr/local/go/bin/go"
    subprocess.run(
        [go, "build", "-o", str(binary), "main.go"], cwd=BENCHMARKS / "loadgen", check=True
    )
    return binary


def wait_http(url: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout_s:.0f} s")


@contextmanager
def bare_server(workers: int, songs: list[str]) -> Iterator[str]:
    """``bare_app`` under uvicorn with ``workers`` workers; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bare_app:create_app",
            "--factory",
            "--app-dir",
            str(BENCHMARKS),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env={**os.environ, "BARE_SONGS": ",".join(songs)},
        start_new_session=True,  # its workers share its group: stopped together below
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/api/v1/recommendations/for-you", 60)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def write_targets(folder: Path, name: str, base: str, tokens: dict[str, str]) -> Path:
    path = folder / f"{name}.targets"
    url = f"{base}/api/v1/recommendations/for-you?limit={LIMIT}"
    path.write_text("".join(f"{url}\tBearer {token}\n" for token in tokens.values()))
    return path


FULL_ANSWER = '"degraded":[]'
"""In a for-you answer: nothing was skipped (the ranker read its features within budget)."""


def run_load(
    loadgen: Path, targets: Path, concurrency: int, duration_s: float, contains: str = ""
) -> dict:
    command = [str(loadgen), "-targets", str(targets), "-c", str(concurrency)]
    command += ["-d", f"{duration_s}s", "-contains", contains]
    answer = subprocess.run(command, capture_output=True, text=True, check=True)
    result = json.loads(answer.stdout)
    if contains:  # the share of answers that took the whole path, not a degraded shortcut
        ok = result["requests"] - result["errors"]
        result["full_answers_share"] = result["containing"] / ok if ok else 0.0
    return {**result, "load_1m_after": os.getloadavg()[0]}


def probe(base: str, token: str) -> dict:
    """One for-you answer's model, ranker and flags: what the load runs exercise."""
    answer = httpx.get(
        f"{base}/api/v1/recommendations/for-you?limit={LIMIT}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    answer.raise_for_status()
    body = answer.json()
    return {k: body[k] for k in ("model", "ranker", "degraded", "cold_start", "variant")} | {
        "items": len(body["items"])
    }


def served_version(base: str) -> str | None:
    try:
        return httpx.get(f"{base}/api/v1/health/ready", timeout=5).json()["models"]["champion"]
    except (httpx.HTTPError, KeyError, ValueError):
        return None


def swap_under_load(
    settings, base: str, loadgen: Path, targets: Path, concurrency: int, duration_s: float, new
) -> dict:
    """for-you for ``duration_s`` while ``champion`` moves to version ``new`` after a third."""
    from mlflow import MlflowClient

    outcome: dict = {}
    load = threading.Thread(
        target=lambda: outcome.update(
            run_load(loadgen, targets, concurrency, duration_s, FULL_ANSWER)
        )
    )
    load.start()
    time.sleep(3 + duration_s / 3)  # the client's warm-up, then a third of the run
    uri = settings.mlflow.effective_tracking_uri
    MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(
        MODEL, "champion", new
    )
    moved = time.perf_counter()
    swapped_after = None
    while load.is_alive():
        if swapped_after is None and served_version(base) == new:
            swapped_after = time.perf_counter() - moved
        time.sleep(0.5)
    load.join()
    return {**outcome, "new_version": new, "swapped_after_s": swapped_after}


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="5k listeners x 2k songs, 5 s runs")
    parser.add_argument("--listeners", type=int, default=None)
    parser.add_argument("--songs", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--also-concurrency",
        type=int,
        default=2,
        help="a second pair of runs (bare and for-you) at this concurrency: latency with "
        "little queueing (0: none)",
    )
    parser.add_argument("--duration", type=float, default=None, help="seconds per run")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers, both servers")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--force", action="store_true", help="run on a busy machine anyway")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    listeners = args.listeners or (5_000 if args.small else 100_000)
    songs = args.songs or (2_000 if args.small else 50_000)
    duration = args.duration or (5.0 if args.small else 30.0)
    out = args.out or BENCHMARKS / "results" / (
        "serving-small.json" if args.small else "serving.json"
    )

    cpus = len(os.sched_getaffinity(0))
    load_before = os.getloadavg()[0]
    if load_before > cpus and not args.force:
        raise SystemExit(
            f"the machine is busy (1-minute load {load_before:.1f} on {cpus} cores): figures "
            "would measure the other work; wait, or pass --force"
        )
    if load_before > cpus / 2:
        say(f"warning: 1-minute load {load_before:.1f} on {cpus} cores before the run")

    from encore.tokens import issue_token
    from models.registry import log_and_register
    from models.synthetic import generate
    from models.training import train
    from serving.precompute import load_serving_bundle

    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    results: dict = {}
    try:
        loadgen = build_loadgen(work)
        with private_platform(args.workers) as settings:
            started = time.perf_counter()
            say(f"synthetic plays: {listeners:,} listeners x {songs:,} songs")
            data = generate(
                users=listeners, items=songs, genres=len(GENRES), tags=100, seed=args.seed
            )
            say(f"training ALS {ALS} and registering it with its index")
            trained = train(
                settings, "als", data, params=ALS, seed=args.seed, registered_name=MODEL
            )
            user_ids = [str(u) for u in data.user_ids.tolist()]
            song_ids = [str(s) for s in data.item_ids.tolist()]
            write_dimensions(settings, song_ids, user_ids, args.seed)
            bundle = load_serving_bundle(settings)
            say("Redis: precomputed lists of every listener, sessions, trending")
            results["world"] = {
                "listeners": listeners,
                "songs": songs,
                "plays": int(data.user_items.nnz),
                "model": {"name": MODEL, "version": bundle.version, **ALS},
                "index": bundle.index.kind if bundle.index is not None else None,
                **write_realtime(settings, bundle, song_ids, args.seed),
            }
            say("Feast: listener, song and artist features to the online store")
            write_online_features(settings, user_ids, song_ids, args.seed)
            refs = listener_refs(settings)
            say("ranker: LambdaRank over those features, registered")
            results["world"]["ranker_version"] = register_ranker(settings, args.seed)
            results["world"]["build_seconds"] = time.perf_counter() - started
            say("Feast online reads")
            results["feast_online_read"] = feast_read_latency(settings, refs, user_ids, args.seed)

            # the swap's version, registered now: the run measures the swap, not an upload
            say("registering a second version for the swap")
            second = log_and_register(
                settings.mlflow.effective_tracking_uri,
                MODEL,
                bundle.model,
                bundle.user_items,
                bundle.user_ids,
                bundle.item_ids,
                params={"model": "als", "swap": True},
                metrics={settings.models.registry_metric: 0.0},
                lineage={"name": "synthetic", "source": "bench_serving"},
                evaluation_fingerprint="bench-serving-swap",
                metric=settings.models.registry_metric,
                index=bundle.index,
            ).version
            del bundle, data, trained

            rng = random.Random(args.seed)
            tokens = {u: issue_token(settings, u) for u in rng.sample(user_ids, TOKENS)}
            fixed = song_ids[:LIMIT]
            with bare_server(args.workers, fixed) as bare:
                say(f"bare endpoint: {args.concurrency} connections, {duration:.0f} s")
                bare_targets = write_targets(work, "bare", bare, tokens)
                results["bare"] = run_load(loadgen, bare_targets, args.concurrency, duration)
                if args.also_concurrency:
                    say(f"bare endpoint: {args.also_concurrency} connections, {duration:.0f} s")
                    results["bare_low"] = run_load(
                        loadgen, bare_targets, args.also_concurrency, duration
                    )
            from encore import services

            with services.running(settings, "serving"):
                base = f"http://{settings.serving.host}:{settings.serving.port}"
                wait_http(f"{base}/api/v1/health/live")
                while served_version(base) != "1":
                    time.sleep(0.5)
                targets = write_targets(work, "service", base, tokens)
                results["for_you_probe"] = probe(base, next(iter(tokens.values())))
                say(f"one answer: {results['for_you_probe']}")
                say(f"for-you: {args.concurrency} connections, {duration:.0f} s")
                results["for_you"] = run_load(
                    loadgen, targets, args.concurrency, duration, FULL_ANSWER
                )
                if args.also_concurrency:
                    say(f"for-you: {args.also_concurrency} connections, {duration:.0f} s")
                    results["for_you_low"] = run_load(
                        loadgen, targets, args.also_concurrency, duration, FULL_ANSWER
                    )
                say(f"for-you while the champion moves to version {second}")
                # long enough for the load of the new version, however short the other runs
                results["swap"] = swap_under_load(
                    settings, base, loadgen, targets, args.concurrency, max(duration, 30), second
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    report(results, args, load_before, out)


def report(results: dict, args, load_before: float, out: Path) -> None:
    bare, for_you, swap = results["bare"], results["for_you"], results["swap"]
    feast = results["feast_online_read"]
    print(
        f"\n{'run':<40} {'requests':>9} {'errors':>6} {'req/s':>8} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'full':>5} {'load':>5}"
    )
    rows = [
        (f"bare FastAPI, fixed list, c={args.concurrency}", bare),
        (f"for-you, c={args.concurrency}", for_you),
    ]
    if "bare_low" in results:
        rows += [
            (f"bare FastAPI, fixed list, c={args.also_concurrency}", results["bare_low"]),
            (f"for-you, c={args.also_concurrency}", results["for_you_low"]),
        ]
    rows.append((f"for-you, swap to v{swap['new_version']}, c={args.concurrency}", swap))
    for name, row in rows:
        # full: the share of answers not degraded (ranker and features within budget)
        full = f"{row['full_answers_share']:.0%}" if "full_answers_share" in row else "-"
        print(
            f"{name:<40} {row['requests']:>9,} {row['errors']:>6} {row['requests_per_s']:>8,.0f} "
            f"{row['p50_ms']:>7.2f} {row['p99_ms']:>7.2f} {full:>5} {row['load_1m_after']:>5.1f}"
        )
    print(
        f"{'Feast online read, one listener':<40} {feast['reads']:>9,} {'':>6} {'':>8} "
        f"{feast['p50_ms']:>7.2f} {feast['p99_ms']:>7.2f}"
    )
    ratio = for_you["requests_per_s"] / bare["requests_per_s"]
    goals = {
        "p99_at_most_15_ms": for_you["p99_ms"] <= 15.0,
        "at_least_half_bare_rps": ratio >= 0.5,
        "swap_without_errors": swap["errors"] == 0 and swap["swapped_after_s"] is not None,
    }
    swapped = swap["swapped_after_s"]
    print(
        f"\nfor-you p99 {for_you['p99_ms']:.1f} ms (goal <= 15): "
        f"{'met' if goals['p99_at_most_15_ms'] else 'NOT met'}; "
        f"{ratio:.2f} x the bare endpoint's requests/s (goal >= 0.5): "
        f"{'met' if goals['at_least_half_bare_rps'] else 'NOT met'}; swap: "
        + (
            f"served v{swap['new_version']} {swapped:.1f} s after the alias moved, "
            if swapped is not None
            else "NOT seen during the run, "
        )
        + f"{swap['errors']} errors in {swap['requests']:,} requests"
    )
    payload = {
        "benchmark": "serving",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpus": len(os.sched_getaffinity(0)),
            "python": platform.python_version(),
            "load_1m_before": load_before,
            "load_average_at_end": os.getloadavg(),
        },
        "concurrency": args.concurrency,
        "also_concurrency": args.also_concurrency,
        "workers": args.workers,
        "limit": LIMIT,
        **results,
        "for_you_over_bare_rps": ratio,
        "goals": goals,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    one, five, fifteen = os.getloadavg()
    print(f"load average at end: {one:.2f} {five:.2f} {fifteen:.2f}; saved {out}")


if __name__ == "__main__":
    main()
