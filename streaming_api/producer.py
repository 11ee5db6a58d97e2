"""The Kafka producer behind ``POST /api/v1/playback-events``.

Durability first: ``acks="all"`` with idempotence (kafka-python >= 2.1 supports it and turns
it on by default; we ask for it explicitly so a client downgrade fails loudly), retries until
``delivery_timeout_ms``, records keyed by ``user_id`` so one listener's events stay ordered in
one partition. A request is answered only after every one of its records is acknowledged,
so an accepted event is never lost; if Kafka does not acknowledge in
``settings.api.produce_timeout_ms`` the request fails with 503 and claims nothing.

The producer is created in the app's lifespan. If Kafka is down at startup the API still
starts (health says so) and the producer is created on the first request that needs it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from kafka import KafkaProducer
from kafka.cluster import ClusterMetadata
from kafka.errors import KafkaError
from kafka.partitioner import DefaultPartitioner, Partitioner

from encore.events import PlayEventV1
from encore.settings import Settings
from streaming_api.errors import UnavailableError
from streaming_api.playback import encode_event

log = logging.getLogger(__name__)


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
    timeout_ms = api.produce_timeout_ms
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
        # delivery_timeout_ms must be >= linger_ms + request_timeout_ms
        "request_timeout_ms": max(1000, timeout_ms // 2),
        "delivery_timeout_ms": max(1000, timeout_ms // 2) + api.producer_linger_ms + 1000,
        "max_block_ms": timeout_ms,
        "bootstrap_timeout_ms": min(timeout_ms, 5000),
    }


class EventProducer:
    """Publishes validated play events to the play-events topic and waits for the acks."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.kafka.play_events_topic
        self._timeout_s = settings.api.produce_timeout_ms / 1000
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    @property
    def connected(self) -> bool:
        return self._producer is not None

    def connect(self) -> None:
        """Create the Kafka client if it does not exist yet.

        Raises:
            UnavailableError: no broker answered at ``settings.kafka.servers``.
        """
        if self._producer is not None:
            return
        with self._lock:
            if self._producer is not None:
                return
            try:
                self._producer = KafkaProducer(**producer_config(self.settings))
            except KafkaError as error:
                raise UnavailableError(
                    f"Kafka at {self.settings.kafka.servers} is unreachable ({error!r}); "
                    "no events were accepted, retry later"
                ) from error

    def publish(self, events: Sequence[PlayEventV1]) -> list[str]:
        """Send ``events`` and block until Kafka acknowledged every one of them.

        Returns the accepted event ids, in request order.

        Raises:
            UnavailableError: Kafka is unreachable, or did not acknowledge every event in time.
                Some events may have been written; none is claimed, so the client retries the
                request as is and the ingestion job drops the duplicates by ``event_id``.
        """
        self.connect()
        producer = self._producer
        deadline = time.monotonic() + self._timeout_s
        try:
            futures = [
                producer.send(self.topic, value=encode_event(event), key=event.user_id.encode())
                for event in events
            ]
            # Futures of one partition batch resolve together: once a batch is in, the rest of
            # its records cost an attribute check each, not a timed wait.
            for future in futures:
                if not future.is_done:
                    future.get(timeout=max(0.0, deadline - time.monotonic()))
                elif future.failed():
                    raise future.exception
        except (KafkaError, TimeoutError) as error:
            raise UnavailableError(
                f"Kafka did not acknowledge all {len(events)} events within "
                f"{self._timeout_s:g} s ({error!r}); none is claimed accepted, retry the request"
            ) from error
        return [str(event.event_id) for event in events]

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=self._timeout_s)
            self._producer = None
