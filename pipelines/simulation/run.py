"""One simulation run, as ``encore simulate`` does it: generate, add faults, send, report.

Input: ``Settings`` (PostgreSQL for the catalog, Kafka, the API's address and service token)
and ``SimulationOptions``.
Output: a ``SimulationReport``: what was generated and added (``FaultStats``) and what the
target did with it (``SendReport``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from encore.errors import ConfigurationError
from encore.settings import Settings
from pipelines.simulation.faults import FaultStats, inject_faults
from pipelines.simulation.listening import generate_events
from pipelines.simulation.population import SimulationConfig, read_catalog
from pipelines.simulation.senders import SendReport, post_to_api, send_to_kafka


class Target(StrEnum):
    api = "api"
    kafka = "kafka"


def default_start(duration: timedelta, now: datetime | None = None) -> datetime:
    """The whole hour at or before ``now - duration``: a run of ``duration`` then ends by
    ``now``, so its events sit inside the event contract's age bound
    (``settings.events.max_event_age_s``) whenever the duration does. Not reproducible from
    one hour to the next: give an explicit start for that."""
    now = now or datetime.now(UTC)
    return (now - duration).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class SimulationOptions:
    """What to simulate, which faults to add and where to send it."""

    config: SimulationConfig = field(default_factory=SimulationConfig)
    target: Target = Target.api
    duplicates: float = 0.0
    """Fraction of events re-sent later with the same ``event_id``."""
    malformed: float = 0.0
    """Fraction of events followed by a malformed record."""
    rate: float | None = None
    """Records per second; ``None`` sends as fast as the target takes them."""
    api_url: str | None = None
    """The API's base URL; ``None`` means ``settings.api``'s host and port."""
    batch_size: int = 500
    concurrency: int = 2

    def __post_init__(self) -> None:
        if self.target not in set(Target):
            known = ", ".join(Target)
            raise ConfigurationError(f"unknown target {self.target!r}; known: {known}")
        object.__setattr__(self, "target", Target(self.target))  # "kafka" as Target.kafka
        if not (0 <= self.duplicates <= 1 and 0 <= self.malformed <= 1):
            raise ConfigurationError(
                "fractions must be within [0, 1], got "
                f"duplicates={self.duplicates} malformed={self.malformed}"
            )
        if self.batch_size < 1 or self.concurrency < 1:
            raise ConfigurationError(
                "batch_size and concurrency must be at least 1, got "
                f"{self.batch_size} and {self.concurrency}"
            )


@dataclass(frozen=True)
class SimulationReport:
    """What a run generated (``faults``) and what its target acknowledged (``sent``)."""

    faults: FaultStats
    sent: SendReport

    @property
    def ok(self) -> bool:
        """Every record reached the target (accepted, or refused as malformed by the API)."""
        return self.sent.failed == 0

    def rows(self) -> list[tuple[str, str]]:
        """The summary, as ``(what, value)`` rows."""
        sent = self.sent
        return [
            ("valid events", f"{self.faults.valid:,}"),
            ("duplicates re-sent", f"{sent.duplicates:,}"),
            ("malformed added", f"{sent.malformed:,}"),
            ("sent (acknowledged)", f"{sent.sent:,}"),
            ("rejected by API (422)", f"{sent.rejected:,}"),
            ("failed", f"{sent.failed:,}"),
            ("retries", f"{sent.retries:,}"),
            ("elapsed", f"{sent.elapsed_s:.1f} s"),
            ("events/s", f"{sent.events_per_s:,.0f}"),
        ]


def run_simulation(
    settings: Settings,
    options: SimulationOptions,
    progress: Callable[[int], None] | None = None,
) -> SimulationReport:
    """Generate ``options.config``'s events, add the faults, send them to the target.

    ``progress`` is called with the number of records handled since its last call.

    Raises:
        CatalogEmptyError: the catalog has no songs (run ``encore catalog load``).
        EncoreError: the target is unreachable.
    """
    stats = FaultStats()
    catalog = read_catalog(settings)  # before any target is contacted: an empty one fails fast
    records = inject_faults(
        generate_events(options.config, catalog),
        options.duplicates,
        options.malformed,
        options.config.seed,
        stats,
    )
    if options.target is Target.kafka:
        sent = send_to_kafka(settings, records, rate=options.rate, progress=progress, faults=stats)
    else:
        sent = post_to_api(
            options.api_url or f"http://{settings.api.host}:{settings.api.port}",
            settings.api.service_token.get_secret_value(),
            records,
            batch_size=options.batch_size,
            concurrency=options.concurrency,
            rate=options.rate,
            progress=progress,
            faults=stats,
        )
    return SimulationReport(faults=stats, sent=sent)
