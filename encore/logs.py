"""Where log records go: Encore's own to the terminal, everything to ``logs/encore.log``.

Called once by the CLI callback. The terminal shows what Encore prints (progress, tables,
results) plus warnings from Encore's own loggers (the core's and the parts'); library
chatter (Kafka clients, MLflow, FAISS, py4j, alembic, urllib3, Python warnings) goes to the
log file only, and to the terminal too with ``--verbose``. Processes Encore starts have
their own log files beside it.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import io
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Libraries that print without the logging module, switched off by their own variables.
_QUIET_ENV = {
    # MLflow's tqdm bars for every artifact upload and download
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # MLflow otherwise installs its own stderr handler on the "mlflow" logger
    "MLFLOW_CONFIGURE_LOGGING": "false",
}


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs a callback on a module right after it is first imported (a quieting patch for a
    library we must not import at start-up)."""

    def __init__(self, callbacks: dict[str, Callable[[ModuleType], None]]) -> None:
        self.callbacks = callbacks

    def find_spec(self, name, path, target=None):  # type: ignore[no-untyped-def]
        if name not in self.callbacks:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return None
        exec_module, callback = spec.loader.exec_module, self.callbacks[name]

        def exec_then_patch(module: ModuleType) -> None:
            exec_module(module)
            callback(module)

        spec.loader.exec_module = exec_then_patch  # type: ignore[method-assign]
        return spec


def _quiet_mlflow_prints(module: ModuleType) -> None:
    # MLflow's eprint() ("Successfully registered model ...") writes to this stream, not to
    # a logger; send it to the "mlflow" logger instead
    logger = logging.getLogger("mlflow")

    def write(self, text: str) -> None:  # type: ignore[no-untyped-def]
        if text.strip():
            logger.info(text.rstrip())

    module.MlflowLoggingStream.write = write


def _quiet_mlflow_run_links(module: ModuleType) -> None:
    # "View run ... at: <url>" lines go to sys.stdout on every run end; log them instead
    logger = logging.getLogger("mlflow.tracking")
    client = module.TrackingServiceClient
    original = client._log_url

    def log_url(self, run_id):  # type: ignore[no-untyped-def]
        saved, sys.stdout = sys.stdout, _LogWriter(logger)
        try:
            return original(self, run_id)
        finally:
            sys.stdout = saved

    client._log_url = log_url


class _LogWriter(io.TextIOBase):
    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def write(self, text: str) -> int:
        if text.strip():
            self.logger.info(text.rstrip())
        return len(text)


_PATCHES: dict[str, Callable[[ModuleType], None]] = {
    "mlflow.utils.logging_utils": _quiet_mlflow_prints,
    "mlflow.tracking._tracking_service.client": _quiet_mlflow_run_links,
}


class _OwnWarnings(logging.Filter):
    """Lets through warnings and errors of Encore's own loggers only."""

    def __init__(self, packages: set[str]) -> None:
        super().__init__()
        self.packages = packages

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING and record.name.split(".", 1)[0] in self.packages


def log_path(home: Path) -> Path:
    return home / "logs" / "encore.log"


def configure(home: Path, verbose: bool = False, packages: set[str] | None = None) -> Path:
    """Route this process's logging: file always, terminal per ``verbose``; returns the file.

    ``packages``: top-level packages whose warnings are Encore's own (the parts').
    """
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)
    path = log_path(home)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        file_handler: logging.Handler = logging.FileHandler(path, delay=True)
    except OSError:  # a read-only home: the terminal is all there is
        file_handler = logging.NullHandler()
    file_handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(file_handler)
    terminal = logging.StreamHandler(sys.stderr)
    terminal.setFormatter(logging.Formatter(FORMAT))
    if not verbose:
        terminal.addFilter(_OwnWarnings({"encore", *(packages or set())}))
    root.addHandler(terminal)
    # connection-level lines of clients are noise even in the file (their warnings stay)
    for noisy in ("kafka", "httpx", "httpcore", "urllib3", "py4j"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.captureWarnings(True)
    if not verbose and not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(dict(_PATCHES)))
    return path
