"""The event API against a Kafka broker that crashes (SIGKILL) and comes back, or is down.

These tests stop and kill services, so they run on a platform of their own (own ENCORE_HOME,
own ports: Kafka and PostgreSQL only), never on the session's shared one. The API runs as a
real ``encore api`` process, as in production.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from encore import services
from encore.db import migrate
from encore.settings import Settings, settings_env
from tests.conftest import free_port, make_platform_home, platform_env
from tests.streaming_api.conftest import create_topic, with_topic
from tests.streaming_api.test_playback import event
from tests.topics import read_all

pytestmark = pytest.mark.integration

URL = "/api/v1/playback-events"
PRODUCE_TIMEOUT_MS = 3000
# Per-request bound while Kafka is down: the produce timeout plus HTTP and scheduling slack on
# a shared 2-core machine. A correctness bound (no request queues behind another), not a
# benchmark: the bug it guards against made the 10th concurrent request wait 50 s.
LATENCY_BOUND_S = PRODUCE_TIMEOUT_MS / 1000 + 3.0
RECOVERY_BOUND_S = 30.0


@pytest.fixture(scope="module")
def own_platform() -> Iterator[Settings]:
    """Kafka and PostgreSQL in a platform home of this module, free to stop and kill."""
    home = make_platform_home("encore-broker-crash-")
    saved = dict(os.environ)
    try:
        os.environ.update(platform_env(home))
        settings = Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    settings = with_topic(
        settings,
        settings.kafka.play_events_topic,
        produce_timeout_ms=PRODUCE_TIMEOUT_MS,
        readiness_timeout_ms=1000,
    )
    try:
        services.up(settings, ["kafka", "postgres"])
        migrate.upgrade(settings)
        yield settings
    finally:
        services.down(settings, ["kafka", "postgres"])
        shutil.rmtree(home, ignore_errors=True)


def kafka_up(settings: Settings) -> None:
    services.up(settings, ["kafka"])


def kafka_pid(settings: Settings) -> int:
    return int(services.pid_file(settings, "kafka").read_text().split()[0])


def sigkill_kafka(settings: Settings) -> None:
    """Kill the broker's whole process group with SIGKILL, as a crash would, and wait."""
    os.killpg(kafka_pid(settings), signal.SIGKILL)
    deadline = time.monotonic() + 20
    while services.port_open(settings.kafka.port):
        assert time.monotonic() < deadline, "the killed broker still answers"
        time.sleep(0.1)


@contextmanager
def api_process(settings: Settings, start_timeout_s: float = 60) -> Iterator[tuple[str, Path]]:
    """A real ``encore api`` on a free port with ``settings``; yields its URL and its log."""
    port = free_port()
    log = settings.home / "logs" / f"api-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "encore"), "api", "--port", str(port)],
        env={**os.environ, **settings_env(settings)},
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            try:
                if httpx.get(f"{base}/api/v1/health/live", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"encore api did not answer in {start_timeout_s} s"
            time.sleep(0.2)
        yield base, log
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def service_headers(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.api.service_token.get_secret_value()}"}


@dataclass
class Answer:
    started: float
    finished: float
    status: int  # 0: no HTTP answer (connection error)
    ids: tuple[str, ...]
    attempt: int


@dataclass
class Traffic:
    """Client threads posting small batches; a 503'd batch is retried as is, until a 202."""

    base: str
    settings: Settings
    clients: int = 4
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, client: int) -> None:
        headers = service_headers(self.settings)
        with httpx.Client(base_url=self.base, timeout=60) as http:
            n = 0
            while not self.stop.is_set():
                n += 1
                batch = [event(user_id=f"c{client}-u{(n + i) % 11}") for i in range(1 + n % 4)]
                ids = tuple(e["event_id"] for e in batch)
                attempt = 0
                while not self.stop.is_set():
                    attempt += 1
                    started = time.monotonic()
                    try:
                        status = http.post(URL, json={"events": batch}, headers=headers)
                        code = status.status_code
                    except httpx.TransportError:
                        code = 0
                    with self.lock:
                        self.answers.append(Answer(started, time.monotonic(), code, ids, attempt))
                    if code == 202:
                        break
                    time.sleep(0.05)

    @contextmanager
    def running(self) -> Iterator[Traffic]:
        threads = [threading.Thread(target=self.run, args=(c,)) for c in range(self.clients)]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(timeout=60)

    def snapshot(self) -> list[Answer]:
        with self.lock:
            return list(self.answers)


def read_topic(settings: Settings, topic: str) -> Counter[str]:
    """How often each event id is on ``topic``: every partition read to its end offset."""
    from encore.events import PlayEventV1

    records = read_all(settings, topic, timeout_s=60)
    return Counter(str(PlayEventV1.model_validate_json(r.value).event_id) for r in records)


def wait_until(what: str, check, timeout_s: float) -> float:
    """Poll ``check`` until true; the seconds it took."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout_s, f"{what} not within {timeout_s} s"
        time.sleep(0.2)
    return time.monotonic() - started


def test_api_recovers_from_broker_sigkill_and_every_202_is_on_the_topic(
    own_platform: Settings,
) -> None:
    kafka_up(own_platform)
    topic = f"crash-play-events-{uuid.uuid4().hex[:8]}"
    create_topic(own_platform, topic, partitions=3)
    settings = with_topic(own_platform, topic)

    with api_process(settings) as (base, log):
        traffic = Traffic(base, settings)
        with traffic.running():
            wait_until("first 202s", lambda: len(traffic.snapshot()) >= 20, 30)
            sigkill_kafka(settings)
            killed = time.monotonic()
            # longer than the producer's delivery timeout, so batches the dead broker held
            # expire after being sent: what wedged kafka-python's producer for good
            wait_until("503s while the broker is dead", lambda: time.monotonic() > killed + 8, 30)
            kafka_up(settings)
            healthy = time.monotonic()

            def accepted_since_healthy() -> bool:
                return any(a.status == 202 and a.started >= healthy for a in traffic.snapshot())

            recovered_s = wait_until("a 202 after the broker's return", accepted_since_healthy, 60)
            time.sleep(3)  # keep posting on the recovered API
        answers = traffic.snapshot()
    # not asserted (whether a sent batch expires depends on timing), but said on failure/-s
    print(f"API replaced its Kafka producer {log.read_text().count('Replacing the Kafka')} times")

    statuses = Counter(a.status for a in answers)
    assert set(statuses) <= {202, 503}, f"only 202 and 503 are allowed, got {statuses}"
    outage = [a for a in answers if killed <= a.started < healthy]
    assert any(a.status == 503 for a in outage), "the broker's death was never noticed"
    assert recovered_s <= RECOVERY_BOUND_S, f"202s again only {recovered_s:.1f} s after restart"
    slow = [round(a.finished - a.started, 1) for a in answers if a.status == 503]
    assert max(slow) <= LATENCY_BOUND_S, f"503s must come within the produce timeout: {slow}"

    on_topic = read_topic(settings, topic)
    attempts: dict[tuple[str, ...], int] = {}
    accepted: dict[tuple[str, ...], int] = {}
    for answer in answers:
        attempts[answer.ids] = max(attempts.get(answer.ids, 0), answer.attempt)
        if answer.status == 202:
            accepted[answer.ids] = answer.attempt
    assert len(accepted) >= 20
    for ids, attempt in accepted.items():
        for event_id in ids:
            if attempt == 1:
                # posted once, accepted first time: on the topic exactly once
                assert on_topic[event_id] == 1, f"{event_id}: {on_topic[event_id]} copies"
            else:
                # accepted after 503s: there at least once; each 503'd attempt may have left
                # one copy (allowed: ingestion dedups by event_id), the producer adds none
                assert 1 <= on_topic[event_id] <= attempt, (event_id, on_topic[event_id], attempt)
    for ids, attempt in attempts.items():
        if ids not in accepted:  # still being retried when traffic stopped: nothing claimed
            assert all(on_topic[event_id] <= attempt for event_id in ids)
    posted = {event_id for ids in attempts for event_id in ids}
    assert set(on_topic) <= posted, "the topic holds events nobody posted"


def test_requests_fail_fast_and_in_parallel_while_kafka_is_down(own_platform: Settings) -> None:
    services.down(own_platform, ["kafka"])
    settings = own_platform
    with api_process(settings) as (base, _log):  # started with no broker: the client does not exist
        durations: list[tuple[int, float]] = []
        lock = threading.Lock()
        gate = threading.Barrier(12)

        def post() -> None:
            batch = {"events": [event(user_id="fast-fail")]}
            with httpx.Client(base_url=base, timeout=120) as http:
                gate.wait()
                started = time.monotonic()
                status = http.post(URL, json=batch, headers=service_headers(settings))
                with lock:
                    durations.append((status.status_code, time.monotonic() - started))

        for _round in range(2):  # the second round meets a failed first connection attempt
            durations.clear()
            gate.reset()
            threads = [threading.Thread(target=post) for _ in range(12)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=180)
            assert len(durations) == 12
            assert {status for status, _ in durations} == {503}, durations
            late = [round(s, 1) for _, s in durations if s > LATENCY_BOUND_S]
            assert not late, f"each request must answer within the produce timeout: {late}"
    kafka_up(own_platform)
