"""The feature-store step of ``encore demo``: register the definitions, load the newest
snapshots into Redis and print one listener's features as the service would read them.

Input: the feature tables the lake step built. Output: the Feast registry and
``feature_store.yaml`` under ``settings.features_repo``, Redis filled, Feast's own progress
output in ``logs/features.log``, a printed table. A day's snapshot is known at the next
00:00 UTC; the demo's day has not ended, so it loads up to the end of the newest day built
(what tonight's run would load).
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.table import Table

from encore.delta import read_lake_table
from encore.settings import Settings
from encore.tables import LISTENER_ACTIVITY
from features import store

console = Console(stderr=True)


def run_demo_step(settings: Settings) -> None:
    columns = ["feature_date", "user_id", "plays_28d"]
    snapshots = read_lake_table(settings, LISTENER_ACTIVITY, columns)
    if snapshots.num_rows == 0:
        console.print("no listener features built (no plays in the lake): step skipped")
        return
    newest = max(snapshots.column("feature_date").to_pylist())
    end = datetime.combine(newest + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    log_path = settings.home / "logs" / "features.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with (
        log_path.open("a") as log,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        names = store.apply(settings)
        store.materialize(settings, end=end)
    console.print(f"applied {len(names)} definitions; snapshots up to {end:%Y-%m-%d %H:%M} UTC")
    rows = [r for r in snapshots.to_pylist() if r["feature_date"] == newest]
    listener = max(rows, key=lambda r: (r["plays_28d"], r["user_id"]))["user_id"]
    feast = store.feature_store(settings)
    view = feast.get_feature_view(LISTENER_ACTIVITY.name)
    online = feast.get_online_features(
        features=[f"{view.name}:{feature.name}" for feature in view.features],
        entity_rows=[{"user_id": listener}],
    ).to_dict()
    table = Table(title=f"online features of the most active listener ({listener})")
    table.add_column("feature")
    table.add_column("value", justify="right")
    for name, values in online.items():
        if name != "user_id" and values[0] is not None:
            table.add_row(name, _shown(values[0]))
    console.print(table)


def _shown(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
