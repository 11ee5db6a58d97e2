"""Producer settings, the memoised partitioner and wedge detection (no services)."""

from __future__ import annotations

from kafka.errors import KafkaError
from kafka.partitioner import DefaultPartitioner
from kafka.producer.transaction_manager import (
    ProducerIdAndEpoch,
    TransactionManager,
    TransactionState,
)

from encore.settings import Settings
from streaming_api.producer import KeyCachePartitioner, producer_config, wedged


class FakeCluster:
    def __init__(self, partitions: int) -> None:
        self.partitions = set(range(partitions))

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions


def test_cached_partitions_match_the_java_compatible_default() -> None:
    cached, default = KeyCachePartitioner(), DefaultPartitioner()
    for partitions in (6, 12):  # a partition count change re-hashes
        cluster = FakeCluster(partitions)
        for user in range(2000):
            key = f"u{user}".encode()
            expected = default.partition("t", None, key, None, b"", cluster)
            assert cached.partition("t", None, key, None, b"", cluster) == expected
            assert cached.partition("t", None, key, None, b"", cluster) == expected
    assert cached.partition("t", None, None, None, b"", FakeCluster(6)) in range(6)


def test_producer_is_durable_and_bounded_in_time() -> None:
    config = producer_config(Settings(api={"produce_timeout_ms": 4000}))
    assert config["acks"] == "all" and config["enable_idempotence"] is True
    assert config["max_in_flight_requests_per_connection"] <= 5
    assert config["delivery_timeout_ms"] >= config["linger_ms"] + config["request_timeout_ms"]
    # a quarter of the budget waiting for the client, a quarter blocked in send(), half for
    # the records to settle: by the request's deadline no record is left in the client's
    # buffer, so a 503 never leaves one to be delivered later
    assert config["max_block_ms"] == 1000 and config["bootstrap_timeout_ms"] <= 1000
    assert config["delivery_timeout_ms"] == 2000
    waits = config["bootstrap_timeout_ms"] + config["max_block_ms"] + config["delivery_timeout_ms"]
    assert waits <= 4000


class WedgeableProducer:
    """Just the part of ``KafkaProducer`` that ``wedged`` reads: its transaction manager."""

    def __init__(self) -> None:
        self._transaction_manager = TransactionManager()


def test_a_reset_producer_id_wedges_kafka_python_and_is_detected() -> None:
    producer = WedgeableProducer()
    manager = producer._transaction_manager
    manager.init_producer_id()  # what the sender does first: UNINITIALIZED -> INITIALIZING
    manager._transition_to(TransactionState.READY)  # the InitProducerId response arrived
    manager.set_producer_id_and_epoch(ProducerIdAndEpoch(7, 0))
    assert wedged(producer) is None

    # a batch the broker held expired after being sent: Sender._send_producer_data resets
    manager.reset_producer_id()
    manager.init_producer_id()  # the sender's every loop asks again ...
    assert not manager.has_producer_id()  # ... and never gets one: READY is not UNINITIALIZED
    assert "producer id was reset" in wedged(producer)

    manager.transition_to_fatal_error(KafkaError("boom"))
    assert "fatal" in wedged(producer)
