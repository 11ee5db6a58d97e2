"""The local platform against real processes: Kafka, Redis, PostgreSQL, MLflow, Spark, Flink."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from encore import services, smoke, supervisor
from encore.settings import Settings, get_settings
from tests.conftest import make_platform_home, platform_env

pytestmark = pytest.mark.integration


def test_status_lists_every_service_healthy(platform):
    rows = services.status(platform, ["postgres", "redis", "kafka", "mlflow"])
    assert [row.name for row in rows] == ["postgres", "redis", "kafka", "mlflow"]
    assert all(row.healthy and row.pid for row in rows), rows


def test_the_registry_holds_the_core_and_the_parts_services():
    names = list(services.registry())
    assert names[:4] == ["postgres", "redis", "kafka", "mlflow"]
    assert {"api", "ingest"} <= set(names)  # contributed by the streaming_api and pipelines parts
    assert [s.name for s in services.CORE if s.core] == names[:4]
    # Airflow's three are the core's own services, started by name only (`encore up airflow`)
    assert {"airflow", "airflow-scheduler", "airflow-dag-processor"} <= set(names)
    assert not any(s.core for s in services.CORE if s.name.startswith("airflow"))


def test_up_twice_is_harmless(platform):
    before = {row.name: row.pid for row in services.status(platform)}
    services.up(platform)
    after = {row.name: row.pid for row in services.status(platform)}
    assert before == after


def test_play_events_topic_is_created_with_its_partitions(platform):
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=platform.kafka.servers)
    partitions = consumer.partitions_for_topic(platform.kafka.play_events_topic)
    consumer.close()
    assert partitions == set(range(platform.kafka.play_events_partitions))


def _timestamp_type(settings, topic):
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.servers)
    try:
        result = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all"
        )
    finally:
        admin.close()
    return result["topic"][topic]["message.timestamp.type"]["value"]


def test_play_events_has_broker_timestamps_even_if_created_before(platform):
    """ensure_topics sets LogAppendTime on a topic that exists with CreateTime (idempotently)."""
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = f"play-events-old-{os.getpid()}-{time.monotonic_ns()}"
    admin = KafkaAdminClient(bootstrap_servers=platform.kafka.servers)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    admin.close()
    settings = platform.model_copy(
        update={"kafka": platform.kafka.model_copy(update={"play_events_topic": topic})}
    )
    assert _timestamp_type(settings, topic) == "CreateTime"
    services.ensure_topics(settings)
    services.ensure_topics(settings)
    assert _timestamp_type(settings, topic) == "LogAppendTime"
    assert _timestamp_type(platform, platform.kafka.play_events_topic) == "LogAppendTime"


def test_kafka_round_trip(platform):
    assert "100 records" in smoke.check_kafka(platform)


def test_redis_round_trip(platform):
    smoke.check_redis(platform)


def test_postgres_round_trip(platform):
    smoke.check_postgres(platform)


@pytest.mark.spark
def test_spark_delta_write_read_time_travel(platform):
    smoke.check_spark_delta(platform)


@pytest.mark.flink
def test_flink_sql_job_reads_kafka(platform):
    smoke.check_flink_kafka(platform)


def test_mlflow_registered_model_loads_in_a_fresh_process(platform):
    smoke.check_mlflow(platform)
    code = (
        "import mlflow; from encore.settings import get_settings;"
        "mlflow.set_tracking_uri(get_settings().mlflow.effective_tracking_uri);"
        "m = mlflow.pyfunc.load_model('models:/encore-smoke-echo/latest');"
        "print(list(m.predict([7, 8])))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[7, 8]"


def test_down_leaves_none_of_our_processes(monkeypatch):
    """A second, separate platform: up, up again, down; nothing of it may survive."""
    home = make_platform_home("encore-down-")
    for key, value in platform_env(home).items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    settings = Settings()
    try:
        services.up(settings, ["postgres", "redis", "kafka"])
        services.up(settings, ["postgres", "redis", "kafka"])
        groups = services.our_processes(settings)
        assert len(groups) == 3
    finally:
        services.down(settings)
        get_settings.cache_clear()
    time.sleep(0.5)
    assert services.our_processes(settings) == []
    for pgid in groups:
        with pytest.raises(ProcessLookupError):
            os.killpg(pgid, 0)
    assert not any(line for line in _cmdlines() if str(home) in line)
    shutil.rmtree(home, ignore_errors=True)


def _cmdlines():
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                yield Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue


def test_a_port_held_by_another_program_names_the_service_and_setting(tmp_path, monkeypatch):
    """A port held by something that is not Redis: `up` refuses before starting redis-server,
    naming the service, the port and the setting (a start that fails naming its log file is
    tests/encore/test_supervisor.py::test_exiting_during_start_up_fails_fast_naming_the_log)."""
    import socket

    from encore.errors import ServiceError

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = Settings(home=tmp_path, redis={"port": port})
        with pytest.raises(ServiceError) as error:
            services.up(settings, ["redis"])
    services.down(settings)
    message = str(error.value)
    assert message.startswith("redis:")
    # refused before redis-server starts (tests/encore/test_ports.py has the CLI's line)
    assert f"port {port}" in message and "ENCORE_REDIS__PORT" in message
    assert services.our_processes(settings) == []


@pytest.mark.flink
def test_the_ingest_job_of_a_part_is_up_down_and_status_by_name(platform):
    """`ingest` is registered by the pipelines part: up/status/down by name, like a service."""
    try:
        services.up(platform, ["ingest"])
        (row,) = services.status(platform, ["ingest"])
        assert row.healthy and row.pid
        assert services.running_pid(platform, "ingest") == row.pid
        services.up(platform, ["ingest"])  # idempotent
        assert services.status(platform, ["ingest"])[0].pid == row.pid
    finally:
        services.down(platform, ["ingest"])
    (after,) = services.status(platform, ["ingest"])
    assert not after.healthy and after.pid is None
    assert supervisor.start_ticks(row.pid) is None
    assert services.status(platform, ["kafka"])[0].healthy  # only the job stopped
