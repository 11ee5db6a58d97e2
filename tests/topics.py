"""Reading a Kafka topic back in tests, completely."""

from __future__ import annotations

import time

from encore.settings import Settings


def read_all(settings: Settings, topic: str | None = None, timeout_s: float = 30) -> list:
    """Every record of ``topic`` (default ``settings``' play-events topic): each partition
    read to its end offset, nothing past it.

    Call it once every write was acknowledged (a sender's return, the API's 202): the end
    offsets are then final, so a record missing from the list was never written and one
    too many leaked. Reading up to a sentinel proves neither, across partitions.
    """
    from kafka import KafkaConsumer, TopicPartition

    topic = topic or settings.kafka.play_events_topic
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka.servers, enable_auto_commit=False, group_id=None
    )
    deadline = time.monotonic() + timeout_s
    try:
        while (numbers := consumer.partitions_for_topic(topic)) is None:
            assert time.monotonic() < deadline, f"no metadata for {topic}"
            time.sleep(0.2)
        partitions = [TopicPartition(topic, number) for number in sorted(numbers)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        records: list = []
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            assert time.monotonic() < deadline, f"{len(records)} records read in {timeout_s} s"
            for tp, batch in consumer.poll(timeout_ms=500).items():
                records.extend(record for record in batch if record.offset < end[tp])
    finally:
        consumer.close()
    return records
