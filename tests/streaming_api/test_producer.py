"""Producer settings and the memoised partitioner (no services)."""

from __future__ import annotations

from kafka.partitioner import DefaultPartitioner

from encore.settings import Settings
from streaming_api.producer import KeyCachePartitioner, producer_config


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
    # half the budget waiting for the client, half blocked in send(): never past the timeout
    assert config["max_block_ms"] == 2000 and config["bootstrap_timeout_ms"] <= 2000
