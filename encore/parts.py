"""The plug-in API: how a part adds its commands, demo steps, stop hooks and services.

A part declares one :class:`Part` and names it in its package's entry points::

    [project.entry-points."encore.parts"]
    mypart = "mypart.cli:PART"

The core finds parts with ``importlib.metadata`` and never names one. A part's module is
imported at start-up, so it must stay light: heavy imports belong inside its commands.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

    from encore.services import Service
    from encore.settings import Settings

GROUP = "encore.parts"


@dataclass(frozen=True)
class DemoStep:
    """One step of ``encore demo``; steps run by ``order``, then title."""

    order: int
    title: str
    run: Callable[[Settings], None]


@dataclass(frozen=True)
class StopHook:
    """Something a part runs on an ENCORE_HOME besides its services; returns whether it ran."""

    name: str
    stop: Callable[[Settings], bool]


@dataclass(frozen=True)
class Part:
    """What one part contributes to the platform."""

    name: str
    commands: Callable[[typer.Typer], None] | None = None
    """Adds the part's Typer commands (and sub-apps) to the ``encore`` app."""
    demo_steps: tuple[DemoStep, ...] = ()
    stop_hooks: tuple[StopHook, ...] = ()
    services: tuple[Service, ...] = ()
    """Services and jobs ``encore up NAME`` / ``down`` / ``status`` / ``logs`` manage."""


@functools.cache
def load_parts() -> tuple[Part, ...]:
    """Every installed part, by entry-point name (a deterministic order)."""
    parts = []
    for point in sorted(entry_points(group=GROUP), key=lambda point: point.name):
        part = point.load()
        if not isinstance(part, Part):
            raise TypeError(
                f"entry point {point.name} = {point.value!r} in group {GROUP} "
                f"must be an encore.parts.Part, got {type(part).__name__}"
            )
        parts.append(part)
    return tuple(parts)


def demo_steps(parts: tuple[Part, ...]) -> list[DemoStep]:
    return sorted(
        (step for part in parts for step in part.demo_steps),
        key=lambda step: (step.order, step.title),
    )


def part_packages() -> set[str]:
    """The top-level packages parts live in (their loggers are Encore's own), without importing."""
    return {point.value.split(":", 1)[0].split(".", 1)[0] for point in entry_points(group=GROUP)}
