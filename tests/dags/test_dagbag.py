"""Every file in dags/ loads in Airflow's own environment, quickly, and every DAG in it keeps
the house rules: tags, doc_md, retries with back-off, a timeout on every task, no catch-up.

The DAG files are loaded the way the DAG processor loads them (Airflow's ``BundleDagBag``,
one import per file, in a Python of the Airflow environment: Encore's packages are not
there, so a DAG importing one fails here as it would in production). The parse-time budget
is per file, from the DagBag's own per-file load statistics: a DAG file doing work at
import (a query, a Spark session, a big import) blows it long before the DAG processor's
timeout would.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from encore.services import airflow
from encore.settings import Settings

PARSE_BUDGET_S = 2.0
"""Per DAG file; today's files take a few tenths of a second."""
EXPECTED_DAGS = {
    "lake_daily",
    "lake_maintenance",
    "features_daily",
    "train_recommenders",
    "privacy_requests",
}

INSPECT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from airflow.dag_processing.dagbag import BundleDagBag

    folder = Path(sys.argv[1])
    bag = BundleDagBag(dag_folder=folder, bundle_path=folder, bundle_name="dags-folder")
    dags = {}
    for dag_id, dag in bag.dags.items():
        args = dict(dag.default_args or {})
        dags[dag_id] = {
            "file": Path(dag.fileloc).name,
            "tags": sorted(dag.tags or []),
            "doc_md": dag.doc_md or "",
            "catchup": dag.catchup,
            "max_active_runs": dag.max_active_runs,
            "retries_in_default_args": args.get("retries"),
            "exponential_backoff": bool(args.get("retry_exponential_backoff")),
            "tasks": {
                task.task_id: {
                    "retries": task.retries,
                    "timeout_s": (
                        task.execution_timeout.total_seconds()
                        if task.execution_timeout is not None
                        else None
                    ),
                }
                for task in dag.tasks
            },
            "start_date_tz": str(dag.start_date.tzinfo) if dag.start_date else None,
        }
    print(json.dumps({
        "errors": {str(name): str(error) for name, error in bag.import_errors.items()},
        "files": {Path(s.file).name: s.duration.total_seconds() for s in bag.dagbag_stats},
        "dags": dags,
    }))
    """
)


def inspect_dag_folder(folder: Path, home: Path) -> dict:
    """Load ``folder`` as the DAG processor would; import errors, per-file parse seconds and
    each DAG's settings, as JSON from the Airflow environment's Python."""
    settings = Settings(home=home, development=True)
    env = {**os.environ, **airflow.airflow_env(settings)}
    env.pop("ENCORE_DAG_RETRIES", None)  # the DAGs' own retries, not the tests' zero
    (home / "data" / "airflow").mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [str(settings.airflow_bin / "python"), "-c", INSPECT, str(folder)],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
        cwd=home,  # not the checkout: `python -c` puts its directory on sys.path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def house_rule_breaches(report: dict) -> list[str]:
    """What each DAG of ``report`` lacks, one line per breach (empty: all is well)."""
    breaches = []
    for dag_id, dag in sorted(report["dags"].items()):
        if not dag["tags"]:
            breaches.append(f"{dag_id}: no tags")
        if len(dag["doc_md"].strip()) < 40:
            breaches.append(f"{dag_id}: no doc_md describing its graph")
        if dag["catchup"] is not False:
            breaches.append(f"{dag_id}: catchup is not False")
        if not dag["retries_in_default_args"]:
            breaches.append(f"{dag_id}: no retries in default_args")
        if not dag["exponential_backoff"]:
            breaches.append(f"{dag_id}: retries without exponential back-off")
        if dag["start_date_tz"] not in ("UTC", "Timezone('UTC')"):
            breaches.append(f"{dag_id}: start_date not in UTC ({dag['start_date_tz']})")
        for task_id, task in sorted(dag["tasks"].items()):
            if not task["timeout_s"]:
                breaches.append(f"{dag_id}.{task_id}: no execution_timeout")
            if task["retries"] < 1:
                breaches.append(f"{dag_id}.{task_id}: no retries")
    return breaches


@pytest.fixture(scope="module")
def dag_folder_report(tmp_path_factory) -> dict:
    return inspect_dag_folder(airflow.DAGS_FOLDER, tmp_path_factory.mktemp("airflow-home"))


def test_every_dag_file_imports_without_errors(dag_folder_report):
    assert dag_folder_report["errors"] == {}


def test_every_dag_file_parses_within_the_budget(dag_folder_report):
    files = dag_folder_report["files"]
    assert files, "no DAG file was loaded"
    slow = {name: seconds for name, seconds in files.items() if seconds > PARSE_BUDGET_S}
    assert slow == {}, f"over {PARSE_BUDGET_S} s to parse: {slow}"


def test_the_expected_dags_are_there_one_per_file_named_after_it(dag_folder_report):
    dags = dag_folder_report["dags"]
    assert set(dags) >= EXPECTED_DAGS
    assert {dag_id: dag["file"] for dag_id, dag in dags.items()} == {
        dag_id: f"{dag_id}.py" for dag_id in dags
    }


def test_every_dag_keeps_the_house_rules(dag_folder_report):
    assert house_rule_breaches(dag_folder_report) == []


def test_the_checks_catch_an_import_error_and_a_dag_breaking_the_rules(tmp_path):
    """The checker itself: a DAG with no tags, docs, retries or timeouts, and a file that
    fails to import, are both reported."""
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "careless.py").write_text(
        textwrap.dedent(
            """
            from datetime import datetime
            from airflow.sdk import dag, task

            @dag(
                dag_id="careless",
                schedule="@daily",
                start_date=datetime(2026, 1, 1),
                catchup=True,
                default_args={"retries": 0},
            )
            def careless():
                @task.bash
                def hello() -> str:
                    return "echo hello"
                hello()

            careless()
            """
        )
    )
    (folder / "broken.py").write_text("from airflow.sdk import dag\nimport encore.settings\n")
    report = inspect_dag_folder(folder, tmp_path / "home")
    assert list(report["errors"]) == ["broken.py"]
    assert "No module named 'encore'" in report["errors"]["broken.py"]
    assert house_rule_breaches(report) == [
        "careless: no tags",
        "careless: no doc_md describing its graph",
        "careless: catchup is not False",
        "careless: no retries in default_args",
        "careless: retries without exponential back-off",
        "careless.hello: no execution_timeout",
        "careless.hello: no retries",
    ]
