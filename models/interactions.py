"""The shapes every dataset source produces: interactions, and the events behind them.

A leaf module (numpy and scipy only): :mod:`models.datasets` (the loaders) and
:mod:`models.synthetic` (the generator) both build these, and neither imports the other's
types, so the loaders can call the generator without an import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


@dataclass
class Events:
    """Event-level interactions (one row per play), for time-based splits."""

    user_index: np.ndarray
    item_index: np.ndarray
    timestamp: np.ndarray
    """Seconds since the epoch (float64)."""


@dataclass
class InteractionDataset:
    """A users x items matrix of raw play counts plus what is known about the items."""

    name: str
    user_items: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray
    item_names: np.ndarray | None = None
    item_features: sp.csr_matrix | None = None
    """items x features (tag counts), or None."""
    feature_names: np.ndarray | None = None
    events: Events | None = None
    lineage: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.user_items.shape

    def describe(self) -> dict:
        users, items = self.shape
        return {
            "name": self.name,
            "users": int(users),
            "items": int(items),
            "interactions": int(self.user_items.nnz),
            "density": float(self.user_items.nnz / max(users * items, 1)),
            "item_features": 0 if self.item_features is None else self.item_features.shape[1],
        }
