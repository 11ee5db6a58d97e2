"""Outages while events are being produced, checked end to end in bronze.

(a) Kafka stopped for longer than the API's client timeouts while a real ``encore api``
keeps receiving (service token, the ingestion job running): requests during the outage
answer 503, after Kafka is back 202; every event that got a 202 is in bronze exactly once
and none that got a 503 during the outage is: a 503 means the record can never be delivered
later. (A request in flight at the very moment the broker stops or returns may have had a
batch written whose ack never came back, which no Kafka client can rule out: those events
are in bronze at most once.)

(b) The job restarted with ``fresh`` while duplicates straddle the restart (copies of events
sent before the stop, re-sent while it is stopped and after it is back): bronze holds each
event id exactly once. A fresh start must rebuild the de-duplication state from the last
``flink.dedup_ttl_s`` of the topic, not begin with an empty one.

Every wait is on an observable condition (answers seen, the job caught up), never a sleep.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from encore import services
from encore.delta import read_lake_table
from encore.settings import Settings
from encore.tables import PLAY_EVENTS
from pipelines.ingest import control
from pipelines.ingest.state import commits_log
from tests.events import play_event
from tests.pipelines.ingest.conftest import produce, wait_for
from tests.pipelines.ingest.producing import valid_events
from tests.streaming_api.test_broker_crash import api_process, service_headers

pytestmark = [
    pytest.mark.crash,
    pytest.mark.integration,
    pytest.mark.flink,
    pytest.mark.slow,
]

URL = "/api/v1/playback-events"
# Short, so that the outage can outlast every client timeout in seconds: the client's
# delivery timeout is half of it, the waits for the client and for metadata a quarter each.
PRODUCE_TIMEOUT_MS = 4000
OUTAGE_S = 3 * PRODUCE_TIMEOUT_MS / 1000


def commit_lines(settings: Settings) -> int:
    """Lines in the job's commits log so far (a start's mark: later lines are its own)."""
    log = commits_log(settings)
    return len(log.read_text().splitlines()) if log.exists() else 0


def lanes_pending(settings: Settings, since_line: int) -> set[int]:
    """Lanes whose last summary since ``since_line`` is a micro-batch leaving rows pending
    for bronze (the job commits them at ``bronze_target_rows`` or ``bronze_max_delay_ms``)."""
    last: dict[int, dict] = {}
    for line in commits_log(settings).read_text().splitlines()[since_line:]:
        entry = json.loads(line)
        if "lane" in entry:
            last[entry["lane"]] = entry
    return {lane for lane, entry in last.items() if entry.get("pending_rows")}


def bronze_ids(settings: Settings, since_line: int) -> Counter[str]:
    """How many rows bronze holds per event id, once the job has caught up with Kafka (a
    completed checkpoint covers every record) and no lane holds rows pending for bronze."""
    control.wait_until_caught_up(settings, timeout_s=240)
    wait_for(
        lambda: not lanes_pending(settings, since_line),
        "bronze commits of the pending rows",
        120,
        interval_s=0.1,
    )
    rows = read_lake_table(settings, PLAY_EVENTS, ["event_id"])
    return Counter(rows.column("event_id").to_pylist())


# --------------------------------------------------------------------------- (a) Kafka down


@dataclass
class Answer:
    started: float
    finished: float
    status: int  # 0: no HTTP answer
    ids: tuple[str, ...]


@dataclass
class Traffic:
    """Client threads posting batches of new events, each batch once (no retries)."""

    base: str
    settings: Settings
    clients: int = 3
    batch: int = 10
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, client: int) -> None:
        headers = service_headers(self.settings)
        with httpx.Client(base_url=self.base, timeout=60) as http:
            n = 0
            while not self.stop.is_set():
                n += 1
                start = datetime.now(UTC) - timedelta(minutes=10)
                events = [
                    play_event(start, user_id=f"outage-{client}-{(n + i) % 7}")
                    for i in range(self.batch)
                ]
                started = time.monotonic()
                try:
                    status = http.post(URL, json={"events": events}, headers=headers).status_code
                except httpx.TransportError:
                    status = 0
                answer = Answer(
                    started, time.monotonic(), status, tuple(e["event_id"] for e in events)
                )
                with self.lock:
                    self.answers.append(answer)
                self.stop.wait(0.05)

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

    def count(self, status: int, since: float = 0.0, until: float = float("inf")) -> int:
        with self.lock:
            return sum(
                a.status == status and a.started >= since and a.finished <= until
                for a in self.answers
            )


def test_kafka_outage_503s_are_never_delivered_and_202s_are_in_bronze_once(
    platform: Settings, ingest_settings: Settings
) -> None:
    settings = ingest_settings.model_copy(
        update={
            "api": ingest_settings.api.model_copy(
                update={
                    "produce_timeout_ms": PRODUCE_TIMEOUT_MS,
                    "readiness_timeout_ms": 1000,
                    # one producer to follow; each worker's would go through the same
                    "workers": 1,
                }
            )
        }
    )
    mark = commit_lines(settings)
    control.start(settings)
    try:
        with (
            api_process(settings, start_timeout_s=240) as (base, _log),
            Traffic(base, settings).running() as traffic,
        ):
            wait_for(
                lambda: traffic.count(202) >= 20,
                "20 accepted requests before the outage",
                90,
                interval_s=0.1,
            )
            services.down(platform, ["kafka"])
            down = time.monotonic()  # the broker's process group is gone
            wait_for(
                lambda: traffic.count(503, since=down) >= 6 and time.monotonic() - down >= OUTAGE_S,
                f"503s for {OUTAGE_S:g} s of outage",
                120,
                interval_s=0.1,
            )
            starter = threading.Thread(target=services.up, args=(platform, ["kafka"]))
            starter.start()
            wait_for(
                lambda: services.port_open(platform.kafka.port),
                "Kafka's port open again",
                120,
                interval_s=0.1,
            )
            reachable = time.monotonic()  # from here a record could reach the broker again
            starter.join()
            up = time.monotonic()
            wait_for(
                lambda: traffic.count(202, since=up) >= 20,
                "20 accepted requests after Kafka is back",
                120,
                interval_s=0.1,
            )
        answers = list(traffic.answers)
    finally:
        if not services.port_open(platform.kafka.port):
            services.up(platform, ["kafka"])
    in_bronze = bronze_ids(settings, mark)
    control.stop(settings)

    statuses = Counter(a.status for a in answers)
    assert set(statuses) <= {202, 503}, f"only 202 and 503 are allowed: {statuses}"
    # wholly inside the outage: the broker was gone from the request's start to its answer
    outage = [a for a in answers if a.started >= down and a.finished <= reachable]
    assert len(outage) >= 6, f"only {len(outage)} requests fell wholly inside the outage"
    assert {a.status for a in outage} == {503}, Counter(a.status for a in outage)
    assert any(a.status == 202 and a.started >= up for a in answers)

    accepted = [i for a in answers if a.status == 202 for i in a.ids]
    assert len(accepted) >= 400
    missing = [i for i in accepted if in_bronze[i] == 0]
    twice = [i for i in accepted if in_bronze[i] > 1]
    assert not missing, f"{len(missing)} accepted events are not in bronze, e.g. {missing[:3]}"
    assert not twice, f"{len(twice)} accepted events are in bronze more than once"

    # A 503 during the outage must leave nothing behind: had the API kept a record in its
    # client's buffer, the client would deliver it once the broker was back.
    delivered = [i for a in outage for i in a.ids if in_bronze[i]]
    assert not delivered, (
        f"{len(delivered)} events answered 503 during the outage reached bronze later, "
        f"e.g. {delivered[:3]}"
    )
    # A request in flight as the broker stopped or came back may have had a batch written
    # whose ack never reached the API (no Kafka client can rule that out): at most once.
    refused = [a for a in answers if a.status == 503]
    at_stop = [a for a in refused if a.started < down]
    at_start = [a for a in refused if a.started >= down and a.finished > reachable]
    assert all(in_bronze[i] <= 1 for a in at_stop + at_start for i in a.ids)
    posted = {i for a in answers for i in a.ids}
    assert set(in_bronze) <= posted, "bronze holds events nobody posted"

    def stored(group: list[Answer]) -> int:
        return sum(bool(in_bronze[i]) for a in group for i in a.ids)

    print(
        f"answers {dict(statuses)}; {len(outage)} requests wholly inside the outage; 503s in "
        f"flight at the stop: {len(at_stop)} ({stored(at_stop)} of their events in bronze), "
        f"at the restart: {len(at_start)} ({stored(at_start)} in bronze)"
    )


# --------------------------------------------------------------------------- (b) fresh restart


def test_fresh_restart_with_duplicates_straddling_it_keeps_each_event_once(
    ingest_settings: Settings,
) -> None:
    settings = ingest_settings
    rng = random.Random(21)
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    before = valid_events(1500, seed=21, start=start)
    after = valid_events(1500, seed=22, start=start + timedelta(minutes=10))

    def records(events: list) -> list[tuple[str, bytes]]:
        return [(e.user_id, e.to_json_bytes()) for e in events]

    produce(settings, records(before))
    control.start(settings)
    first = bronze_ids(settings, since_line=0)
    assert first == Counter({str(e.event_id): 1 for e in before})

    # duplicates straddle the restart: copies of the first events sent before the stop,
    # while the job is down, and after the fresh start, among new events and their copies
    produce(settings, records(rng.sample(before, 200)))
    assert control.stop(settings)
    produce(settings, records(rng.sample(before, 200)))
    mark = commit_lines(settings)
    control.start(settings, fresh=True)
    mixed = records(after) + records(rng.sample(before, 300)) + records(rng.sample(after, 200))
    rng.shuffle(mixed)
    produce(settings, mixed)

    in_bronze = bronze_ids(settings, mark)
    control.stop(settings)
    expected = {str(e.event_id) for e in before + after}
    assert set(in_bronze) == expected
    twice = {event_id: n for event_id, n in in_bronze.items() if n > 1}
    assert not twice, (
        f"{len(twice)} events are in bronze more than once after the fresh restart "
        f"(e.g. {list(twice.items())[:3]}): its de-duplication state began empty"
    )
