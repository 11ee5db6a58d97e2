"""What the crash tests compare the job against: the topic as Kafka holds it, and the
bronze rows, Redis windows and gold counts it implies (computed here, not by the job's code).
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from encore import supervisor
from encore.settings import Settings
from encore.tables import PLAY_EVENTS
from pipelines.ingest import control
from pipelines.ingest.state import commits_log

Position = tuple[int, int]
"""(kafka_partition, kafka_offset)"""


@dataclass
class SentTopic:
    """Every record of the topic, read back from Kafka."""

    bronze: dict[Position, dict[str, Any]] = field(default_factory=dict)
    """The first copy of each valid event: its expected bronze row, without ``ingested_at``."""
    rejected: set[Position] = field(default_factory=set)
    event_time_us: dict[str, int] = field(default_factory=dict)
    """Event id -> min(start_time, broker arrival) in epoch µs (the time trending counts by)."""


def read_topic(settings: Settings, valid_values: set[bytes]) -> SentTopic:
    """Read the whole topic; ``valid_values`` are the payloads of the valid events sent."""
    topic = settings.kafka.play_events_topic
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.servers, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in control.kafka_partitions(settings)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records = []
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend(batch)
    finally:
        consumer.close()
    sent = SentTopic()
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        position = (record.partition, record.offset)
        if record.value not in valid_values:
            sent.rejected.add(position)
            continue
        row = expected_bronze_row(json.loads(record.value), position)
        if row["event_id"] in sent.event_time_us:
            continue  # a later copy: the first one wins
        sent.bronze[position] = row
        arrival_us = record.timestamp * 1000  # LogAppendTime, ms
        sent.event_time_us[row["event_id"]] = min(_epoch_us(row["start_time"]), arrival_us)
    return sent


def expected_bronze_row(sent: dict[str, Any], position: Position) -> dict[str, Any]:
    """The bronze row of a sent v1 JSON event (every column but ``ingested_at``)."""
    start = datetime.fromisoformat(sent["start_time"]).astimezone(UTC)
    row = {
        **sent,
        "start_time": start,
        "end_time": datetime.fromisoformat(sent["end_time"]).astimezone(UTC),
        "schema_version": sent.get("schema_version", 1),
        "variant": sent.get("variant"),
        "event_date": start.date(),
        "kafka_partition": position[0],
        "kafka_offset": position[1],
    }
    assert set(row) == set(PLAY_EVENTS.column_names) - {"ingested_at"}, sorted(row)
    return row


def _epoch_us(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def window_counts(sent: SentTopic, window_s: int) -> dict[tuple[str, int], Counter[str]]:
    """(country, window start epoch s) -> plays per song, from the unique sent events."""
    counts: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
    for row in sent.bronze.values():
        window = sent.event_time_us[row["event_id"]] // (window_s * 1_000_000) * window_s
        counts[(row["country_code"], window)][row["song_id"]] += 1
    return counts


def commit_lines(settings: Settings) -> list[dict[str, Any]]:
    """The job's commit log: one summary per written micro-batch, oldest first."""
    path = commits_log(settings)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def job_dead(settings: Settings) -> bool:
    """No process of the job's group is left (the leader reaped, so no zombie counts)."""
    return supervisor.recorded_group(settings.home, control.NAME) is None


def produce_steadily(settings: Settings, records: list[tuple[str, bytes]], rate: float) -> None:
    """Send ``records`` at about ``rate`` per second in small steps (pacing only: every
    micro-batch window then receives rows, so a checkpoint barrier finds some pending)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.kafka.servers, acks="all", linger_ms=5)
    started = time.monotonic()
    try:
        for i, (key, value) in enumerate(records):
            producer.send(settings.kafka.play_events_topic, key=key.encode(), value=value)
            if i % 5 == 4:
                producer.flush()
                time.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))
        producer.flush()
    finally:
        producer.close()
