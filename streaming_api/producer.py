"""The Kafka producer behind ``POST /api/v1/playback-events``.

Durability first: ``acks="all"`` with idempotence (kafka-python >= 2.1 supports it and turns
it on by default; we ask for it explicitly so a client downgrade fails loudly), retries until
``delivery_timeout_ms``, records keyed by ``user_id`` so one listener's events stay ordered in
one partition. A request is answered only after every one of its records is acknowledged,
so an accepted event is never lost; if Kafka does not acknowledge in
``settings.api.produce_timeout_ms`` the request fails with 503 and claims nothing.

A 503 also means the records will not turn up later. A request answers only once every
record it handed to the client has *settled* (acknowledged, or failed by the client), never
while one still waits in the client's buffer: the client's ``delivery_timeout_ms`` is sized
so its records settle inside the request's budget (a quarter waiting for the client, a
quarter blocked in ``send()``, half for delivery), and a client that fails to settle them in
time (see the wedge below) is force-closed, which fails them, before the 503 goes out. The
one case no client can rule out is a batch the broker wrote but died before acknowledging:
those records may be in Kafka after a 503 (the ingestion job de-duplicates a retry).

Failure is bounded and recovery automatic:

- The client is created in the background, one attempt at a time. Requests wait for that
  attempt for at most a quarter of their produce timeout and then answer 503, so while
  Kafka is down concurrent requests fail in parallel instead of queueing on a connect lock.
- kafka-python (3.0.x) can wedge its idempotent producer for good after a broker crash: when
  a batch that was already sent expires (the broker died holding it),
  ``Sender._send_producer_data`` calls ``TransactionManager.reset_producer_id()``, which
  clears the producer id but leaves the state ``READY``. ``Sender.run_once`` then asks for a
  new id through ``init_producer_id()``, a no-op outside ``UNINITIALIZED``, and returns early
  on "no producer id" on every loop: nothing is ever sent or expired again, and ``close()``
  cannot finish (its ``flush`` raises ``KafkaTimeoutError`` before it forces the sender
  down). Every request checks for that state (and for the transaction manager's fatal
  error state) and replaces the client: the old one is force-closed in a background thread
  (its unacknowledged records fail, so their requests answered or will answer 503) and a
  new one, with a new producer id, serves the next request.

The producer is created in the app's lifespan. If Kafka is down at startup the API still
starts (readiness says so) and the producer is created when a request needs it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence

from kafka import KafkaProducer
from kafka.cluster import ClusterMetadata
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.partitioner import DefaultPartitioner, Partitioner
from kafka.producer.future import FutureRecordMetadata
from kafka.producer.transaction_manager import TransactionState
from kafka.structs import TopicPartition

from encore.events import PlayEventV1
from encore.settings import Settings
from streaming_api.errors import UnavailableError
from streaming_api.playback import encode_event

log = logging.getLogger(__name__)

# How long a request waits for a force-closed client to fail its records (its sender thread
# stops within one poll, at most retry_backoff_ms).
DISCARD_WAIT_S = 5.0


class KeyCachePartitioner(Partitioner):
    """kafka-python's default partitioner (murmur2 of the key, as the Java client), memoised.

    The pure-Python murmur2 and the sorting of partitions cost ~10% of a send; listeners post
    many events, so their partition is looked up far more often than computed. The cache is
    keyed by the partition count too, so adding partitions re-hashes, as it must.
    """

    MAX_KEYS = 1_000_000

    def __init__(self) -> None:
        self._default = DefaultPartitioner()
        self._cache: dict[tuple[str, bytes, int], int] = {}

    def partition(
        self,
        topic: str,
        key: object,
        serialized_key: bytes | None,
        value: object,
        serialized_value: bytes | None,
        cluster: ClusterMetadata,
    ) -> int:
        if serialized_key is None:
            return self._default.partition(
                topic, key, serialized_key, value, serialized_value, cluster
            )
        partitions = cluster.partitions_for_topic(topic)
        slot = (topic, serialized_key, len(partitions) if partitions else 0)
        found = self._cache.get(slot)
        if found is None:
            if len(self._cache) >= self.MAX_KEYS:
                self._cache.clear()
            found = self._cache[slot] = self._default.partition(
                topic, key, serialized_key, value, serialized_value, cluster
            )
        return found


def producer_config(settings: Settings) -> dict:
    """kafka-python ``KafkaProducer`` options for play events (see the module docstring)."""
    api = settings.api
    quarter_ms = max(1, api.produce_timeout_ms // 4)
    delivery_ms = max(api.producer_linger_ms + 1, api.produce_timeout_ms // 2)
    return {
        "bootstrap_servers": settings.kafka.servers.split(","),
        "client_id": "encore-streaming-api",
        "partitioner": KeyCachePartitioner(),
        "acks": "all",
        "enable_idempotence": True,
        "retries": float("inf"),  # bounded by delivery_timeout_ms, as in the Java client
        "max_in_flight_requests_per_connection": 5,  # the most idempotence keeps ordered
        "linger_ms": api.producer_linger_ms,
        "batch_size": api.producer_batch_size,
        "compression_type": None
        if api.producer_compression == "none"
        else api.producer_compression,
        # A request waits a quarter of its budget for the client to exist, a quarter in
        # send() (topic metadata, buffer space) and half for its records to settle: the
        # client fails a record still unacknowledged delivery_timeout_ms after its batch
        # was created, so by produce_timeout_ms every record is acked or failed, none left
        # in the buffer to be delivered after the request answered 503.
        "delivery_timeout_ms": delivery_ms,
        # must leave delivery_timeout_ms >= linger_ms + request_timeout_ms
        "request_timeout_ms": max(1, delivery_ms - api.producer_linger_ms),
        "max_block_ms": quarter_ms,
        "bootstrap_timeout_ms": max(1, min(quarter_ms, 5000)),
    }


def wedged(producer: KafkaProducer) -> str | None:
    """Why ``producer`` can never deliver again, or ``None`` if it can.

    See the module docstring: a cleared producer id in state ``READY`` is never re-initialised
    by kafka-python 3.0.x, and ``FATAL_ERROR`` is terminal by design.
    """
    manager = getattr(producer, "_transaction_manager", None)
    if manager is None:
        return None
    if manager.has_fatal_error():
        return f"fatal producer error {manager.last_error!r}"
    state = getattr(manager, "_current_state", None)
    if state == TransactionState.READY and not manager.has_producer_id():
        return "its producer id was reset and kafka-python never requests a new one"
    return None


def discard(producer: KafkaProducer, timeout_s: float = 5.0) -> None:
    """Close ``producer`` without waiting for records it cannot deliver.

    ``KafkaProducer.close`` flushes first and raises when the flush times out, before forcing
    its sender thread down; so force the sender ourselves, then close.
    """
    try:
        producer.close(timeout=0)
    except KafkaError:
        sender = producer._sender
        if sender is not None:
            sender.force_close()  # fails its pending records, so their waiters return
            sender.join(timeout_s)
        try:
            producer.close(timeout=0)
        except KafkaError as error:
            log.warning("Kafka producer did not close cleanly: %r", error)


def send_records(
    producer: KafkaProducer,
    topic: str,
    records: Sequence[tuple[bytes, bytes]],
    futures: list[FutureRecordMetadata],
) -> None:
    """``producer.send(topic, value=value, key=key)`` for each ``(key, value)``, cheaper;
    each record's future is appended to ``futures`` as it is sent (so that a caller
    interrupted by an error still holds those of the records already handed over).

    ``send()`` re-checks its arguments, the topic's metadata and the record size, and wakes
    the sender, for every record: about a quarter of the API's CPU per event. The first
    record goes through ``send()`` (it waits for the topic's metadata up to ``max_block_ms``
    and fails on a closed producer); the rest are appended to the same accumulator
    ``send()`` appends to, partitioned by the same partitioner, and the sender is woken once.
    Records are a few hundred bytes (``PlayEventV1``'s fields are bounded), far below
    ``max_request_size``, the check skipped here.
    """
    if not records:
        return
    key, value = records[0]
    futures.append(producer.send(topic, value=value, key=key))
    accumulator = producer._accumulator
    partitioner = producer.config["partitioner"]
    cluster = producer._metadata
    partitions: dict[int, TopicPartition] = {}
    wake = False
    for key, value in records[1:]:
        number = partitioner.partition(topic, key, key, value, value, cluster)
        tp = partitions.get(number)
        if tp is None:
            tp = partitions[number] = TopicPartition(topic, number)
        future, full, created, _ = accumulator.append(tp, None, key, value, [])
        futures.append(future)
        wake = wake or full or created
    if wake:
        producer._sender.wakeup()


def settle(futures: Sequence[FutureRecordMetadata], until: float) -> int:
    """Wait until every future is done (acknowledged or failed) or ``until`` (monotonic s);
    returns how many are still pending."""
    for future in futures:
        # Futures of one partition batch resolve together: once a batch is in, the rest of
        # its records cost an attribute check each, not a timed wait.
        if future.is_done:
            continue
        remaining = until - time.monotonic()
        if remaining <= 0:
            break
        with contextlib.suppress(KafkaError):  # failed, or pending at `until`: counted below
            future.get(timeout=remaining)
    return sum(not future.is_done for future in futures)


class _Connect:
    """One background attempt to create the Kafka client, shared by every request waiting."""

    def __init__(self, settings: Settings) -> None:
        self.done = threading.Event()
        self.producer: KafkaProducer | None = None
        self.error: BaseException | None = None
        self._settings = settings
        threading.Thread(target=self._run, name="encore-kafka-connect", daemon=True).start()

    def _run(self) -> None:
        try:
            self.producer = KafkaProducer(**producer_config(self._settings))
        except Exception as error:  # handed to every waiter as a 503
            self.error = error
        finally:
            self.done.set()


class EventProducer:
    """Publishes validated play events to the play-events topic and waits for the acks."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.kafka.play_events_topic
        self._timeout_s = settings.api.produce_timeout_ms / 1000
        # the sender fails an expired batch on its next loop: a little slack past delivery
        self._settle_grace_s = min(1.0, self._timeout_s / 10)
        self._producer: KafkaProducer | None = None
        self._connect: _Connect | None = None
        self._lock = threading.Lock()

    def connect(self, wait_s: float | None = None) -> KafkaProducer:
        """The Kafka client, created (in the background) if there is none or it is wedged.

        Waits at most ``wait_s`` (default: a quarter of the produce timeout) for a client
        being created; requests arriving meanwhile wait for the same attempt, not a new one.

        Raises:
            UnavailableError: no broker answered in time, or the attempt failed.
        """
        wait_s = self._timeout_s / 4 if wait_s is None else wait_s
        with self._lock:
            producer = self._producer
            if producer is not None:
                reason = wedged(producer)
                if reason is None:
                    return producer
                self._replace(producer, reason)
            attempt = self._connect
            if attempt is None or (attempt.done.is_set() and attempt.producer is None):
                attempt = self._connect = _Connect(self.settings)
        if not attempt.done.wait(wait_s):
            raise UnavailableError(
                f"Kafka is unreachable (no broker answered within {wait_s:g} s); "
                "no events were accepted, retry later"
            )
        if attempt.producer is None:
            log.warning("Kafka client creation failed: %r", attempt.error)
            raise UnavailableError(
                f"Kafka is unreachable ({type(attempt.error).__name__}); "
                "no events were accepted, retry later"
            ) from attempt.error
        with self._lock:
            if self._producer is None and self._connect is attempt:
                self._producer = attempt.producer
                self._connect = None
            return self._producer or attempt.producer

    def _replace(self, producer: KafkaProducer, reason: str) -> None:
        # Caller holds self._lock.
        log.warning("Replacing the Kafka producer: %s", reason)
        self._producer = None
        threading.Thread(
            target=discard, args=(producer,), name="encore-kafka-discard", daemon=True
        ).start()

    def publish(self, events: Sequence[PlayEventV1]) -> list[str]:
        """Send ``events`` and block until Kafka acknowledged every one of them.

        Returns the accepted event ids, in request order. Takes at most about
        ``settings.api.produce_timeout_ms``.

        Raises:
            UnavailableError: Kafka is unreachable, or did not acknowledge every event in time.
                None is claimed, and none is left in the client to be delivered later (see
                the module docstring for the one exception, a broker dying mid-write); the
                client retries the request as is, and the ingestion job drops duplicates
                by ``event_id``.
        """
        deadline = time.monotonic() + self._timeout_s
        producer = self.connect()
        records = [(event.user_id.encode(), encode_event(event)) for event in events]
        futures: list[FutureRecordMetadata] = []
        failure: BaseException | None = None
        try:
            send_records(producer, self.topic, records, futures)
        except KafkaError as error:  # no metadata within max_block_ms, or a closed client
            failure = error
        unsettled = settle(futures, deadline + self._settle_grace_s)
        if unsettled:
            # The client did not fail them in time (a wedged one never will): make them
            # undeliverable before answering 503, by force-closing the client.
            with self._lock:
                if self._producer is producer:
                    self._replace(producer, f"{unsettled} records unsettled past the deadline")
            unsettled = settle(futures, time.monotonic() + DISCARD_WAIT_S)
            if unsettled:
                log.error("%d records still unsettled after discarding the producer", unsettled)
            failure = failure or KafkaTimeoutError("records not acknowledged in time")
        if failure is None:
            failure = next((f.exception for f in futures if f.failed()), None)
        if failure is not None:
            raise UnavailableError(
                f"Kafka did not acknowledge all {len(events)} events within "
                f"{self._timeout_s:g} s ({type(failure).__name__}); none is claimed accepted, "
                "retry the request"
            ) from failure
        return [str(event.event_id) for event in events]

    def check(self, timeout_s: float) -> None:
        """A metadata round trip to a broker on the producer's own connections, within
        about ``timeout_s``; creates the client if there is none, replaces a wedged one.

        Raises:
            UnavailableError: no broker answered in time.
        """
        try:
            producer = self.connect(wait_s=timeout_s)
        except UnavailableError as error:
            raise UnavailableError(f"no Kafka broker answered within {timeout_s:g} s") from error
        # What KafkaProducer._wait_on_metadata does, with our own deadline; the future
        # resolves only on a metadata response (a dedicated KafkaAdminClient would do, but
        # each failed one leaks its IO thread while Kafka is down).
        answered = threading.Event()
        future = producer._metadata.request_update()
        future.add_both(lambda *_: answered.set())
        producer._sender.wakeup()
        if not answered.wait(timeout_s):
            raise UnavailableError(
                f"no Kafka broker answered a metadata request within {timeout_s:g} s"
            )
        if future.failed():
            raise UnavailableError(
                f"Kafka's metadata request failed ({type(future.exception).__name__})"
            )

    def close(self) -> None:
        """Deliver what is pending (up to the produce timeout), then close."""
        with self._lock:
            producer, self._producer = self._producer, None
            attempt, self._connect = self._connect, None
        if attempt is not None and attempt.producer is not None:  # created, never used
            attempt.producer.close(timeout=0)
        if producer is not None:
            try:
                producer.close(timeout=self._timeout_s)
            except KafkaError:
                discard(producer)
