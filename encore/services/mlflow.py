"""MLflow: a tracking server on the local PostgreSQL, artifacts on disk."""

from __future__ import annotations

import sys
from pathlib import Path

from encore.services.base import Service
from encore.settings import Settings


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


SERVICE = Service(
    "mlflow",
    address=lambda s: s.mlflow.effective_tracking_uri,
    command=_mlflow_command,
    healthy=_mlflow_healthy,
    # MLflow's job runner (GenAI evaluation jobs, trace roll-ups) starts seven more Python
    # processes; Encore uses tracking and the registry only
    env=lambda s: {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    external=lambda s: bool(s.mlflow.tracking_uri),
    ports=lambda s: {"ENCORE_MLFLOW__PORT": s.mlflow.port},
    needs=("postgres",),
    start_timeout_s=120,
    core=True,
)
