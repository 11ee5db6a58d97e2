"""Where simulated records go: Kafka's play-events topic or the streaming API.

Input: any stream of records (dicts, or bytes that are not JSON), from
:mod:`pipelines.simulation.listening` and :mod:`pipelines.simulation.faults`. Output: a
``SendReport`` of what the target acknowledged, refused or never received. The senders know
nothing of how the records were made.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from queue import Queue
from typing import TYPE_CHECKING

import pydantic_core

from encore.errors import EncoreError
from encore.settings import Settings

if TYPE_CHECKING:
    from pipelines.simulation.faults import FaultStats


@dataclass
class SendReport:
    """What a send did. ``sent`` counts records the target acknowledged."""

    target: str
    sent: int = 0
    rejected: int = 0
    """Records the API refused with 422 (malformed ones, when faults are injected)."""
    failed: int = 0
    """Records not delivered after retries (the target was down or refused the client)."""
    retries: int = 0
    requests: int = 0
    duplicates: int = 0
    malformed: int = 0
    elapsed_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        return (self.sent + self.rejected) / self.elapsed_s if self.elapsed_s else 0.0

    def take_fault_counts(self, stats: FaultStats | None) -> None:
        if stats is not None:
            self.duplicates, self.malformed = stats.duplicates, stats.malformed


def paced(items: Iterable, rate: float | None) -> Iterator:
    """``items`` at no more than ``rate`` per second (as fast as possible when ``None``)."""
    if not rate:
        yield from items
        return
    started = time.monotonic()
    for count, item in enumerate(items):
        ahead = started + count / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        yield item


def _key_of(record: bytes | dict) -> bytes | None:
    user = record.get("user_id") if isinstance(record, dict) else None
    return user.encode() if isinstance(user, str) else None


def _value_of(record: bytes | dict) -> bytes:
    if isinstance(record, bytes):
        return record
    return json.dumps(record, separators=(",", ":")).encode()


def send_to_kafka(
    settings: Settings,
    records: Iterable[bytes | dict],
    *,
    topic: str | None = None,
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
    faults: FaultStats | None = None,
    timeout_s: float = 60.0,
) -> SendReport:
    """Produce ``records`` straight to the play-events topic, keyed by ``user_id``.

    Dicts are sent as compact JSON (for a valid record, the bytes of
    ``PlayEventV1.to_json_bytes()``), bytes as they are, so malformed records reach the
    topic unchanged. Uses ``acks="all"`` with idempotence, and waits for every ack.
    """
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    topic = topic or settings.kafka.play_events_topic
    report = SendReport(target=f"kafka:{settings.kafka.servers}/{topic}")
    started = time.monotonic()
    try:
        producer = KafkaProducer(
            bootstrap_servers=settings.kafka.servers.split(","),
            client_id="encore-simulator",
            acks="all",
            enable_idempotence=True,
            linger_ms=20,
            batch_size=512 * 1024,
        )
    except KafkaError as error:
        raise EncoreError(f"Kafka at {settings.kafka.servers} is unreachable: {error!r}") from error
    lock = threading.Lock()

    def delivered(_metadata: object) -> None:
        with lock:
            report.sent += 1

    def lost(error: Exception) -> None:
        with lock:
            report.failed += 1
            if len(report.errors) < 5:
                report.errors.append(repr(error))

    offered = 0
    try:
        for record in paced(records, rate):
            future = producer.send(topic, value=_value_of(record), key=_key_of(record))
            future.add_callback(delivered).add_errback(lost)
            offered += 1
            if progress is not None and offered % 1000 == 0:
                progress(1000)
        producer.flush(timeout=timeout_s)
    finally:
        producer.close(timeout=timeout_s)
    if progress is not None:
        progress(offered % 1000)
    report.requests = offered
    report.failed = offered - report.sent
    report.elapsed_s = time.monotonic() - started
    report.take_fault_counts(faults)
    return report


def _batches(records: Iterable[bytes | dict], batch_size: int) -> Iterator[list[dict] | bytes]:
    """Dicts grouped into batches; bytes (not JSON) alone, since no batch can hold them.

    A re-sent event starts a new batch: a flaky client re-sends a request, it never lists
    one event twice in a request (the API refuses such a batch as a whole).
    """
    batch: list[dict] = []
    ids: set[object] = set()
    for record in records:
        if isinstance(record, bytes):
            yield record
            continue
        event_id = record.get("event_id")
        if event_id is not None and event_id in ids:
            yield batch
            batch, ids = [], set()
        batch.append(record)
        if event_id is not None:
            ids.add(event_id)
        if len(batch) == batch_size:
            yield batch
            batch, ids = [], set()
    if batch:
        yield batch


def post_to_api(
    base_url: str,
    token: str,
    records: Iterable[bytes | dict],
    batch_size: int = 500,
    concurrency: int = 2,
    *,
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
    faults: FaultStats | None = None,
    max_retries: int = 5,
    timeout_s: float = 30.0,
) -> SendReport:
    """POST ``records`` to ``{base_url}/api/v1/playback-events`` in batches.

    ``concurrency`` threads post at once. A 422 names the bad items: they are counted as
    ``rejected`` and the rest of the batch is posted again (the API accepts a batch whole or
    not at all). 503s and connection errors are retried with backoff, the same events again
    (the pipeline de-duplicates by ``event_id``). Records that are bytes (not JSON) are
    posted alone and come back 422.

    Raises:
        EncoreError: nothing answers at ``base_url``.
    """
    import httpx

    report = SendReport(target=f"api:{base_url}")
    try:  # fail at once, not after every batch's retries, when nothing listens there
        httpx.get(base_url.rstrip("/") + "/api/v1/health", timeout=timeout_s)
    except httpx.TransportError as error:
        raise EncoreError(
            f"the API at {base_url} is unreachable ({error!r}); start it with `encore api`"
        ) from error
    lock = threading.Lock()
    queue: Queue[list[dict] | bytes | None] = Queue(maxsize=concurrency * 2)
    url = base_url.rstrip("/") + "/api/v1/playback-events"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def count(**deltas: int) -> None:
        with lock:
            for name, delta in deltas.items():
                setattr(report, name, getattr(report, name) + delta)

    def note(error: str) -> None:
        with lock:
            if len(report.errors) < 5:
                report.errors.append(error)

    def post(client: httpx.Client, item: list[dict] | bytes) -> None:
        size = 1 if isinstance(item, bytes) else len(item)
        body = item if isinstance(item, bytes) else _batch_body(item)
        attempt = 0
        while True:
            try:
                response = client.post(url, content=body, headers=headers)
            except httpx.TransportError as error:
                status, detail = None, repr(error)
            else:
                status, detail = response.status_code, response.text[:300]
            count(requests=1)
            if status == 202:
                count(sent=size)
                return
            if status == 422 and isinstance(item, list):
                bad = {e["index"] for e in response.json().get("errors", [])}
                if None in bad or not bad:
                    count(rejected=size)
                    return
                count(rejected=len(bad))
                item = [record for i, record in enumerate(item) if i not in bad]
                if not item:
                    return
                size, body = len(item), _batch_body(item)
                continue
            if status == 422:
                count(rejected=size)
                return
            if (status is None or status >= 500) and attempt < max_retries:
                attempt += 1
                count(retries=1)
                time.sleep(min(5.0, 0.2 * 2**attempt))
                continue
            count(failed=size)
            note(f"HTTP {status}: {detail}")
            return

    def worker() -> None:
        with httpx.Client(timeout=timeout_s) as client:
            while (item := queue.get()) is not None:
                post(client, item)
                if progress is not None:
                    progress(1 if isinstance(item, bytes) else len(item))

    started = time.monotonic()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    try:
        for item in _batches(paced(records, rate), batch_size):
            queue.put(item)
    finally:
        for _ in threads:
            queue.put(None)
        for thread in threads:
            thread.join()
    report.elapsed_s = time.monotonic() - started
    report.take_fault_counts(faults)
    return report


def _batch_body(records: list[dict]) -> bytes:
    # pydantic-core's encoder is ~3x faster than json.dumps; the API only needs valid JSON
    return pydantic_core.to_json({"events": records})
