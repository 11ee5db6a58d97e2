"""Traffic simulation: realistic listening as a stream of v1 play events.

One concern per module, each depending only on the ones before it:

* ``population``: who listens to what (the catalog's songs, listeners and their tastes,
  the HetRec population);
* ``listening``: when and how they listen (sessions -> events, ``generate_events``);
* ``faults``: duplicates and malformed records (``inject_faults``, ``FaultStats``);
* ``senders``: Kafka or the API (``send_to_kafka``, ``post_to_api``, ``SendReport``);
* ``run``: all of it as one call (``run_simulation``), what ``encore simulate`` runs.
"""

from pipelines.simulation.faults import FaultStats, inject_faults
from pipelines.simulation.listening import generate_events
from pipelines.simulation.population import (
    Catalog,
    CatalogEmptyError,
    CatalogSong,
    SimulationConfig,
    read_catalog,
)
from pipelines.simulation.run import (
    SimulationOptions,
    SimulationReport,
    Target,
    run_simulation,
)
from pipelines.simulation.senders import SendReport, paced, post_to_api, send_to_kafka

__all__ = [
    "Catalog",
    "CatalogEmptyError",
    "CatalogSong",
    "FaultStats",
    "SendReport",
    "SimulationConfig",
    "SimulationOptions",
    "SimulationReport",
    "Target",
    "generate_events",
    "inject_faults",
    "paced",
    "post_to_api",
    "read_catalog",
    "run_simulation",
    "send_to_kafka",
]
