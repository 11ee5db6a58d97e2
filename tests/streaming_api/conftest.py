"""Fixtures of the streaming API tests: a fresh topic per test, and reading it back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from encore.settings import Settings


def with_topic(settings: Settings, topic: str, **api: object) -> Settings:
    """``settings`` writing play events to ``topic``, with ``api`` fields overridden."""
    return settings.model_copy(
        update={
            "kafka": settings.kafka.model_copy(update={"play_events_topic": topic}),
            "api": settings.api.model_copy(update=api),
        }
    )


def create_topic(settings: Settings, topic: str, partitions: int = 3) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.servers)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()


@pytest.fixture()
def topic_settings(platform: Settings) -> Iterator[Settings]:
    """The platform's settings with play events going to a fresh topic of this test."""
    topic = f"test-play-events-{uuid.uuid4().hex[:8]}"
    create_topic(platform, topic)
    yield with_topic(platform, topic)
