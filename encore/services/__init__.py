"""The registry of everything Encore runs: the core platform's services and the parts' own.

The core platform is Kafka (KRaft), Redis, PostgreSQL and an MLflow tracking server, one
module each beside this one. Parts add theirs (an API, a streaming job) through their
:class:`~encore.parts.Part`. Every one is a :class:`Service` declaration, run by
:mod:`encore.supervisor`: in its own session, ``<pid> <start-ticks>`` in
``$ENCORE_HOME/run/<name>.pid``, output in ``logs/<name>.log``, data in ``data/<name>``.
``down`` signals exactly those process groups: never a process found by name, and never a
recycled pid.

Beyond one machine the core services are not started at all: point the settings at a Kafka
cluster, Redis URL, PostgreSQL DSN or remote tracking URI instead.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

from encore import supervisor
from encore.errors import ConfigurationError, ServiceError
from encore.services import airflow, kafka, mlflow, postgres, redis
from encore.services.base import (
    Service,
    ServiceStatus,
    check_ports_free,
    data_dir,
    log_file,
    pid_file,
    port_open,
)
from encore.services.kafka import ensure_topics
from encore.settings import Settings

__all__ = [
    "CORE",
    "Service",
    "ServiceStatus",
    "data_dir",
    "down",
    "ensure_topics",
    "log_file",
    "our_processes",
    "pid_file",
    "port_open",
    "registry",
    "running",
    "running_pid",
    "status",
    "up",
]

CORE: tuple[Service, ...] = (
    postgres.SERVICE,
    redis.SERVICE,
    kafka.SERVICE,
    mlflow.SERVICE,
    # started by name (`encore up airflow`), not with the core platform
    airflow.SCHEDULER,
    airflow.DAG_PROCESSOR,
    airflow.API_SERVER,
)


def registry() -> dict[str, Service]:
    """Every service and job: the core platform's first, then each part's."""
    from encore.parts import load_parts

    services = {service.name: service for service in CORE}
    for part in load_parts():
        for service in part.services:
            if service.name in services:
                raise ConfigurationError(
                    f"part {part.name} declares service {service.name!r}, which already exists"
                )
            services[service.name] = service
    return services


def _lookup(names: list[str] | None, core_only: bool) -> list[Service]:
    known = registry()
    if not names:
        return [s for s in known.values() if s.core or not core_only]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigurationError(f"unknown service(s) {unknown}; known: {list(known)}")
    return [known[name] for name in names]


def up(
    settings: Settings,
    names: list[str] | None = None,
    report: Callable[[str], None] = lambda message: None,
) -> None:
    """Start every core (or each named) service not already running; wait until all are healthy.

    Idempotent: a healthy service we started is left alone; a service the settings point
    elsewhere is only health-checked. A port answered by something we did not start is an
    error naming the service.
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    wanted = _lookup(names, core_only=True)
    known = registry()
    started: dict[str, int | None] = {}
    ready: set[str] = set()

    def wait_ready(service: Service) -> None:
        if service.name in ready:
            return
        supervisor.wait_healthy(
            settings.home,
            service.name,
            lambda: service.healthy(settings),
            started.get(service.name),
            service.start_timeout_s,
        )
        service.after_start(settings)
        ready.add(service.name)
        report(f"{service.name} healthy at {service.address(settings)}")

    def launch(service: Service) -> None:
        if service.name in started:
            return
        for need in service.needs:
            launch(known[need])
            wait_ready(known[need])
        if service.external(settings):
            started[service.name] = None
            return
        pid = supervisor.running_pid(settings.home, service.name)
        if pid is None:
            check_ports_free(service, settings)
            if service.healthy(settings):
                raise ServiceError(
                    service.name,
                    "something else already answers at "
                    f"{service.address(settings)}; choose another port in settings",
                )
            service.prepare(settings)
            pid = supervisor.start(
                settings.home,
                service.name,
                service.command(settings),
                env=_child_env(service, settings),
                user=service.run_as(),
            )
            report(f"started {service.name} (pid {pid})")
        started[service.name] = pid

    # services without prerequisites start first, so slow starters (Kafka) overlap the rest
    ordered = sorted(wanted, key=lambda service: bool(service.needs))
    for service in ordered:
        launch(service)
    for service in ordered:
        wait_ready(service)


def _child_env(service: Service, settings: Settings) -> dict[str, str]:
    return {**os.environ, **service.env(settings)}


def down(
    settings: Settings,
    names: list[str] | None = None,
    report: Callable[[str], None] = lambda message: None,
) -> None:
    """Stop what we started: the named services, or all: jobs, then parts', then the core's.

    Waits until each process group is gone.
    """
    wanted = _lookup(names, core_only=False)
    order = list(registry())
    wanted.sort(key=lambda s: (not s.job, s.core, -order.index(s.name)))
    for service in wanted:
        if supervisor.stop(
            settings.home,
            service.name,
            sig=service.stop_signal,
            timeout_s=service.stop_timeout_s,
        ):
            report(f"stopped {service.name}")


def status(settings: Settings, names: list[str] | None = None) -> list[ServiceStatus]:
    """Health of every service, whether we started it or the settings point elsewhere."""
    result = []
    for service in _lookup(names, core_only=False):
        external = service.external(settings)
        pid = None if external else supervisor.running_pid(settings.home, service.name)
        healthy = service.healthy(settings)
        detail = "external" if external else ("" if pid else "not started")
        result.append(ServiceStatus(service.name, healthy, pid, service.address(settings), detail))
    return result


@contextlib.contextmanager
def running(
    settings: Settings,
    name: str,
    *,
    instance: str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Service]:
    """Service ``name`` for the duration of the block (started, healthy, then stopped).

    ``instance`` names its pid and log files when several run on one home (default
    ``name``); ``env`` is added to its environment.
    """
    service = _lookup([name], core_only=False)[0]
    service.prepare(settings)
    with supervisor.running(
        settings.home,
        instance or name,
        service.command(settings),
        lambda: service.healthy(settings),
        env=_child_env(service, settings) | (env or {}),
        timeout_s=service.start_timeout_s,
        sig=service.stop_signal,
        stop_timeout_s=service.stop_timeout_s,
    ):
        yield service


def running_pid(settings: Settings, name: str) -> int | None:
    """The pid of ``name`` as we started it, if that very process still runs."""
    return supervisor.running_pid(settings.home, name)


def our_processes(settings: Settings) -> list[int]:
    """Process groups still alive that we recorded (for tests and `status`)."""
    groups = (supervisor.recorded_group(settings.home, name) for name in registry())
    return [pgid for pgid in groups if pgid is not None]
