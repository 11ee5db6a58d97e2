"""Kafka: a single-node KRaft broker (broker and controller in one JVM)."""

from __future__ import annotations

import base64
import contextlib
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from encore.errors import ConfigurationError, ServiceError
from encore.services.base import Service, data_dir, port_open
from encore.settings import Settings


def _kafka_classpath(settings: Settings) -> str:
    jars = settings.jars_dir / "kafka"
    if not any(jars.glob("kafka_2.13-*.jar")):
        raise ConfigurationError(f"Kafka broker jars not found in {jars}; run `make jars` first")
    return f"{jars}/*"


def _java() -> str:
    java = shutil.which("java")
    if not java:
        raise ConfigurationError("java not found on PATH; Encore needs a Java 17 runtime")
    return java


def _kafka_properties(settings: Settings) -> Path:
    k = settings.kafka
    path = data_dir(settings, "kafka") / "server.properties"
    lines = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@localhost:{k.controller_port}",
        "listeners": f"PLAINTEXT://localhost:{k.port},CONTROLLER://localhost:{k.controller_port}",
        "advertised.listeners": f"PLAINTEXT://localhost:{k.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir(settings, "kafka") / "logs"),
        "num.partitions": str(k.play_events_partitions),
        # one broker: every internal topic at replication 1
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "min.insync.replicas": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "log.retention.hours": "168",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{key}={value}\n" for key, value in lines.items()))
    return path


_KAFKA_LOG4J2 = """\
Configuration:
  name: encore-kafka
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.request.logger
        level: WARN
      - name: org.apache.kafka.raft
        level: WARN
      - name: kafka.log.LogCleaner
        level: WARN
"""


def _kafka_log4j(settings: Settings) -> Path:
    path = data_dir(settings, "kafka") / "log4j2.yaml"
    path.write_text(_KAFKA_LOG4J2)
    return path


def _kafka_prepare(settings: Settings) -> None:
    properties = _kafka_properties(settings)
    _kafka_log4j(settings)
    if (data_dir(settings, "kafka") / "logs" / "meta.properties").exists():
        return  # storage is formatted once; formatting again would orphan the data
    cluster_id = "-"
    while cluster_id.startswith("-"):  # the storage tool would read a leading "-" as an option
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    result = subprocess.run(
        [
            _java(),
            "-cp",
            _kafka_classpath(settings),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(properties),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ServiceError(
            "kafka", f"formatting storage failed: {result.stderr.strip() or result.stdout}"
        )


def _kafka_command(settings: Settings) -> list[str]:
    return [
        _java(),
        f"-Xmx{settings.kafka.heap}",
        f"-Xms{settings.kafka.heap}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={data_dir(settings, 'kafka') / 'log4j2.yaml'}",
        "-cp",
        _kafka_classpath(settings),
        "kafka.Kafka",
        str(_kafka_properties(settings)),
    ]


def _kafka_healthy(settings: Settings) -> bool:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    if not settings.kafka.bootstrap_servers and not port_open(settings.kafka.port):
        return False
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.kafka.servers,
            request_timeout_ms=3000,
            client_id="encore-health",
        )
    except (KafkaError, OSError, ValueError):
        return False
    try:
        return bool(admin.describe_cluster().get("brokers"))
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


# Consumers (the event validator) read a record's timestamp as the broker's arrival time, so the
# broker stamps it, whatever the producer sent.
PLAY_EVENTS_CONFIG = {"message.timestamp.type": "LogAppendTime"}


def ensure_topics(settings: Settings) -> None:
    """Create the platform's topics if missing and set their configs (idempotent)."""
    from kafka import KafkaAdminClient
    from kafka.admin import AlterConfigOp, ConfigResource, ConfigResourceType, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    topic = settings.kafka.play_events_topic
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.servers, client_id="encore-admin")
    try:
        if topic not in admin.list_topics():
            with contextlib.suppress(TopicAlreadyExistsError):  # a concurrent `up` won the race
                admin.create_topics(
                    [
                        NewTopic(
                            topic,
                            num_partitions=settings.kafka.play_events_partitions,
                            replication_factor=settings.kafka.replication_factor,
                            topic_configs=PLAY_EVENTS_CONFIG,
                        )
                    ]
                )
                return
        # a topic created before (or by someone else) gets the same config; setting it again is
        # a no-op. The broker validates the keys (the client's own check races a new topic).
        resource = ConfigResource(
            ConfigResourceType.TOPIC,
            topic,
            {key: (AlterConfigOp.SET, value) for key, value in PLAY_EVENTS_CONFIG.items()},
        )
        for _ in range(20):  # a topic created a moment ago may not be known to the broker yet
            answer = admin.alter_configs([resource], incremental=True, raise_on_unknown=False)
            result = answer.get("topic", {}).get(topic)
            if result == "OK":
                return
            time.sleep(0.5)
        raise ServiceError("kafka", f"setting {PLAY_EVENTS_CONFIG} on topic {topic}: {result}")
    finally:
        admin.close()


SERVICE = Service(
    "kafka",
    address=lambda s: s.kafka.servers,
    command=_kafka_command,
    healthy=_kafka_healthy,
    prepare=_kafka_prepare,
    after_start=ensure_topics,
    external=lambda s: bool(s.kafka.bootstrap_servers),
    ports=lambda s: {
        "ENCORE_KAFKA__PORT": s.kafka.port,
        "ENCORE_KAFKA__CONTROLLER_PORT": s.kafka.controller_port,
    },
    start_timeout_s=120,
    core=True,
)
