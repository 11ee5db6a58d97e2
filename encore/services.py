"""The local platform: Kafka (KRaft), Redis, PostgreSQL and an MLflow tracking server.

``encore up`` starts each service as a child process of its own session, records
``<pid> <start-ticks>`` in ``$ENCORE_HOME/run/<service>.pid`` and waits for its health check.
``encore down`` signals exactly those process groups: never a process found by name, and
never a recycled pid (the kernel's start time must still match the recorded one).

Everything a service keeps lives under ``ENCORE_HOME``: ``data/<service>``, ``logs/<service>.log``,
``run/<service>.pid``. Beyond one machine these services are not started at all: point the
settings at a Kafka cluster, Redis URL, PostgreSQL DSN or remote tracking URI instead.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from encore.errors import ConfigurationError, ServiceError
from encore.settings import Settings

log = logging.getLogger(__name__)

# PostgreSQL refuses to run as root; when we are root we run it as this system user.
POSTGRES_OS_USER = "postgres"


@dataclass
class ServiceStatus:
    name: str
    healthy: bool
    pid: int | None
    address: str
    detail: str = ""


@dataclass
class Service:
    """One local service: how to prepare it, start it and tell it is healthy."""

    name: str
    address: Callable[[Settings], str]
    command: Callable[[Settings], list[str]]
    healthy: Callable[[Settings], bool]
    prepare: Callable[[Settings], None] = lambda settings: None
    after_start: Callable[[Settings], None] = lambda settings: None
    run_as: Callable[[], str | None] = lambda: None
    env: Callable[[Settings], dict[str, str]] = lambda settings: {}
    start_timeout_s: float = 90.0
    needs: tuple[str, ...] = field(default_factory=tuple)


# --------------------------------------------------------------------------- paths


def data_dir(settings: Settings, name: str) -> Path:
    return settings.home / "data" / name


def log_file(settings: Settings, name: str) -> Path:
    return settings.home / "logs" / f"{name}.log"


def pid_file(settings: Settings, name: str) -> Path:
    return settings.home / "run" / f"{name}.pid"


# --------------------------------------------------------------------------- processes


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces; fields after it are space-separated
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie is gone for our purposes
        return None
    return int(fields[19])


def recorded_pid(settings: Settings, name: str) -> int | None:
    """The pid we started for ``name`` if that very process is still alive."""
    path = pid_file(settings, name)
    try:
        pid_text, ticks_text = path.read_text().split()
    except (OSError, ValueError):
        return None
    pid = int(pid_text)
    return pid if start_ticks(pid) == int(ticks_text) else None


def group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process remains in process group ``pgid``."""
    # reap the leader if it is our own child, so it does not linger as a zombie
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


# --------------------------------------------------------------------------- kafka


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

    if not settings.kafka.bootstrap_servers and not _port_open(settings.kafka.port):
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


def ensure_topics(settings: Settings) -> None:
    """Create the platform's topics if missing (idempotent)."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.servers, client_id="encore-admin")
    try:
        if settings.kafka.play_events_topic in admin.list_topics():
            return
        with contextlib.suppress(TopicAlreadyExistsError):  # a concurrent `up` won the race
            admin.create_topics(
                [
                    NewTopic(
                        settings.kafka.play_events_topic,
                        num_partitions=settings.kafka.play_events_partitions,
                        replication_factor=settings.kafka.replication_factor,
                    )
                ]
            )
    finally:
        admin.close()


# --------------------------------------------------------------------------- redis


def _redis_command(settings: Settings) -> list[str]:
    binary = shutil.which("redis-server")
    if not binary:
        raise ConfigurationError(
            "redis-server not found; `make setup` installs it with apt-get "
            "(Debian package redis-server)"
        )
    return [
        binary,
        "--port",
        str(settings.redis.port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir(settings, "redis")),
        "--save",
        "60 1000",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
    ]


def _redis_healthy(settings: Settings) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(settings.redis.effective_url, socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


# --------------------------------------------------------------------------- postgres


def _pg_binary(name: str) -> str:
    for candidate in (
        shutil.which(name),
        *sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}")),
    ):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise ConfigurationError(
        f"PostgreSQL's {name} not found; `make setup` installs it with "
        "apt-get (Debian package postgresql)"
    )


def _pg_run_as() -> str | None:
    return POSTGRES_OS_USER if os.geteuid() == 0 else None


def _chown_for_postgres(path: Path) -> None:
    user = _pg_run_as()
    if user:
        shutil.chown(path, user, user)


def _postgres_prepare(settings: Settings) -> None:
    root = data_dir(settings, "postgres")
    pgdata, sockets = root / "pgdata", root / "sockets"
    for path in (root, sockets):
        path.mkdir(parents=True, exist_ok=True)
        _chown_for_postgres(path)
    if (pgdata / "PG_VERSION").exists():
        return
    result = subprocess.run(
        [
            _pg_binary("initdb"),
            "-D",
            str(pgdata),
            "-U",
            settings.postgres.user,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-instructions",
        ],
        capture_output=True,
        text=True,
        user=_pg_run_as(),
        check=False,
    )
    if result.returncode != 0:
        raise ServiceError("postgres", f"initdb failed: {result.stderr.strip()}")


def _postgres_command(settings: Settings) -> list[str]:
    root = data_dir(settings, "postgres")
    return [
        _pg_binary("postgres"),
        "-D",
        str(root / "pgdata"),
        "-p",
        str(settings.postgres.port),
        "-k",
        str(root / "sockets"),
        "-c",
        "listen_addresses=localhost",
        "-c",
        "max_connections=200",
        "-c",
        "shared_buffers=128MB",
        "-c",
        "fsync=on",
    ]


def _postgres_healthy(settings: Settings) -> bool:
    import psycopg

    # the embedded server is healthy once it answers; its databases come in after_start
    dsn = settings.postgres.dsn or _postgres_admin_dsn(settings)
    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _postgres_admin_dsn(settings: Settings) -> str:
    return settings.postgres.effective_dsn.rsplit("/", 1)[0] + "/postgres"


def _postgres_after_start(settings: Settings) -> None:
    """Create the MLflow database beside the application one (idempotent)."""
    import psycopg

    if settings.postgres.dsn:
        return  # a managed server: its databases are provisioned by its owners
    with psycopg.connect(_postgres_admin_dsn(settings), autocommit=True) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for name in (settings.postgres.database, settings.postgres.mlflow_database):
            if name not in existing:
                conn.execute(f'CREATE DATABASE "{name}"')


# --------------------------------------------------------------------------- mlflow


def _mlflow_command(settings: Settings) -> list[str]:
    artifacts = settings.mlflow_artifacts_root
    artifacts.mkdir(parents=True, exist_ok=True)
    backend = settings.postgres.mlflow_dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    return [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--backend-store-uri",
        backend,
        "--artifacts-destination",
        str(artifacts),
        "--serve-artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        str(settings.mlflow.port),
        "--workers",
        str(settings.mlflow.workers),
    ]


def _mlflow_healthy(settings: Settings) -> bool:
    import httpx

    try:
        return (
            httpx.get(f"{settings.mlflow.effective_tracking_uri}/health", timeout=2).status_code
            == 200
        )
    except httpx.HTTPError:
        return False


SERVICES: dict[str, Service] = {
    service.name: service
    for service in (
        Service(
            "postgres",
            lambda s: s.postgres.effective_dsn,
            _postgres_command,
            _postgres_healthy,
            prepare=_postgres_prepare,
            after_start=_postgres_after_start,
            run_as=_pg_run_as,
        ),
        Service(
            "redis",
            lambda s: s.redis.effective_url,
            _redis_command,
            _redis_healthy,
            prepare=lambda s: data_dir(s, "redis").mkdir(parents=True, exist_ok=True),
        ),
        Service(
            "kafka",
            lambda s: s.kafka.servers,
            _kafka_command,
            _kafka_healthy,
            prepare=_kafka_prepare,
            after_start=ensure_topics,
            start_timeout_s=120,
        ),
        Service(
            "mlflow",
            lambda s: s.mlflow.effective_tracking_uri,
            _mlflow_command,
            _mlflow_healthy,
            # MLflow's job runner (GenAI evaluation jobs, trace roll-ups) starts seven more
            # Python processes; Encore uses tracking and the registry only
            env=lambda s: {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            needs=("postgres",),
            start_timeout_s=120,
        ),
    )
}


def _external(settings: Settings, name: str) -> bool:
    """Whether settings point this service at an existing server we must not start."""
    return {
        "kafka": bool(settings.kafka.bootstrap_servers),
        "redis": bool(settings.redis.url),
        "postgres": bool(settings.postgres.dsn),
        "mlflow": bool(settings.mlflow.tracking_uri),
    }[name]


def _spawn(settings: Settings, service: Service) -> int:
    log_path = log_file(settings, service.name)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pid_path = pid_file(settings, service.name)
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    service.prepare(settings)
    with open(log_path, "ab") as log_handle:
        process = subprocess.Popen(
            service.command(settings),
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=settings.home,
            env={**os.environ, **service.env(settings)},
            user=service.run_as(),
            # its own session: `down` can signal the whole group (MLflow's workers too)
            start_new_session=True,
        )
    pid_path.write_text(f"{process.pid} {start_ticks(process.pid)}\n")
    return process.pid


def _wait_healthy(settings: Settings, service: Service, pid: int | None) -> None:
    deadline = time.monotonic() + service.start_timeout_s
    while time.monotonic() < deadline:
        if service.healthy(settings):
            return
        if pid is not None and start_ticks(pid) is None:
            raise ServiceError(
                service.name, "exited during start-up", str(log_file(settings, service.name))
            )
        time.sleep(0.5)
    raise ServiceError(
        service.name,
        f"not healthy after {service.start_timeout_s:.0f} s",
        str(log_file(settings, service.name)),
    )


def up(
    settings: Settings,
    names: list[str] | None = None,
    report: Callable[[str], None] = lambda message: None,
) -> None:
    """Start every (or the named) service not already running and wait until all are healthy.

    Idempotent: a healthy service we started is left alone; a service the settings point
    elsewhere is only health-checked.
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    wanted = names or list(SERVICES)
    unknown = set(wanted) - set(SERVICES)
    if unknown:
        raise ConfigurationError(f"unknown service(s) {sorted(unknown)}; known: {list(SERVICES)}")
    started: dict[str, int | None] = {}
    ready: set[str] = set()

    def wait_ready(name: str) -> None:
        if name in ready:
            return
        service = SERVICES[name]
        _wait_healthy(settings, service, started.get(name))
        service.after_start(settings)
        ready.add(name)
        report(f"{name} healthy at {service.address(settings)}")

    # services without prerequisites start first, so slow starters (Kafka) overlap the rest
    ordered = sorted(wanted, key=lambda name: bool(SERVICES[name].needs))
    for name in ordered:
        service = SERVICES[name]
        for need in service.needs:
            wait_ready(need)
        if _external(settings, name):
            started[name] = None
            continue
        pid = recorded_pid(settings, name)
        if pid is None:
            if service.healthy(settings):
                raise ServiceError(
                    name,
                    "something else already answers at "
                    f"{service.address(settings)}; choose another port in settings",
                )
            pid = _spawn(settings, service)
            report(f"started {name} (pid {pid})")
        started[name] = pid
    for name in ordered:
        wait_ready(name)


def down(
    settings: Settings,
    names: list[str] | None = None,
    timeout_s: float = 30.0,
    report: Callable[[str], None] = lambda message: None,
) -> None:
    """Stop the services we started, dependents first; wait until their groups are gone."""
    wanted = names or list(SERVICES)
    for name in reversed([n for n in SERVICES if n in wanted]):
        pid = recorded_pid(settings, name)
        if pid is None:
            pid_file(settings, name).unlink(missing_ok=True)
            continue
        # postgres: SIGINT is its "fast shutdown"; the others stop cleanly on SIGTERM
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGINT if name == "postgres" else signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if group_alive(pid):
            log.warning("%s did not stop within %.0f s; killing its process group", name, timeout_s)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            while group_alive(pid):
                time.sleep(0.1)
        # the leader may have exited after the last check: reap it so no zombie keeps the group
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        pid_file(settings, name).unlink(missing_ok=True)
        report(f"stopped {name}")


def status(settings: Settings) -> list[ServiceStatus]:
    """Health of every service, whether we started it or the settings point elsewhere."""
    result = []
    for name, service in SERVICES.items():
        pid = None if _external(settings, name) else recorded_pid(settings, name)
        healthy = service.healthy(settings)
        detail = "external" if _external(settings, name) else ("" if pid else "not started")
        result.append(ServiceStatus(name, healthy, pid, service.address(settings), detail))
    return result


def our_processes(settings: Settings) -> list[int]:
    """Pids still alive in the process groups we recorded (for tests and `status`)."""
    alive = []
    for name in SERVICES:
        try:
            pid = int(pid_file(settings, name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if group_alive(pid):
            alive.append(pid)
    return alive
