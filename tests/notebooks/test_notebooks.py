"""The data scientists' notebooks: each pair (``.ipynb`` and its ``py:percent`` source) in
sync and free of outputs, and each notebook executed top to bottom with papermill against
the analytics world, on small data (its ``parameters`` cell), failing on any error.

The kernel is ``python3`` from the core env (ipykernel installs its spec in ``.venv``;
jupyter_client starts it with this interpreter), so a fresh clone needs no manual step. It
inherits this process's environment: the world's ``ENCORE_*`` settings are set there, and a
notebook reads them through ``encore.settings.get_settings()`` as it would on any platform.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import jupytext
import nbformat
import pytest

from encore.settings import REPO_ROOT, settings_env

NOTEBOOKS = REPO_ROOT / "notebooks"
NAMES = [
    "01_listening_exploration",
    "02_compare_recommenders",
    "03_training_set_from_feast",
    "04_ab_test_analysis",
]
FORBIDDEN_IMPORT = re.compile(r"^\s*(from|import)\s+(serving|streaming_api)\b", re.MULTILINE)
DEFINITION = re.compile(r"^\s*(def|class)\s+\w+", re.MULTILINE)


def cells(notebook: nbformat.NotebookNode) -> list[tuple[str, str, list[str]]]:
    return [
        (cell.cell_type, cell.source.strip(), sorted(cell.metadata.get("tags", [])))
        for cell in notebook.cells
    ]


def test_the_notebooks_are_the_ones_listed() -> None:
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == NAMES
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.py")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_each_pair_is_in_sync_and_the_notebook_has_no_outputs(name: str) -> None:
    stored = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    for cell in stored.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}.ipynb keeps outputs: clear them (README)"
            assert cell.execution_count is None, f"{name}.ipynb keeps execution counts"
    source = jupytext.read(NOTEBOOKS / f"{name}.py")
    notebook = jupytext.read(NOTEBOOKS / f"{name}.ipynb")
    assert cells(source) == cells(notebook), (
        f"{name}.py and {name}.ipynb differ: `uv run jupytext --sync notebooks/*.ipynb`"
    )
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), "the first code cell: parameters"
    assert "small = False" in code[0].source
    every_line = "\n".join(cell.source for cell in code)
    assert not FORBIDDEN_IMPORT.search(every_line), "nothing imports serving or streaming_api"
    assert not DEFINITION.search(every_line), "reusable code goes into a package"


@pytest.mark.integration
@pytest.mark.spark
# the first notebook builds the analytics world (minutes; far more beside other Spark work)
@pytest.mark.timeout(2700)
@pytest.mark.parametrize("name", NAMES)
def test_each_notebook_runs_top_to_bottom_on_the_world(
    name: str, analytics_world, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import papermill

    for key, value in settings_env(analytics_world.settings).items():
        monkeypatch.setenv(key, value)
    # Jupyter's inline backend, as a notebook server gives its kernels: importing streamlit
    # (the dashboard's tests, in this process) sets MPLBACKEND=Agg, which kernels inherit
    # and which draws no figure into a cell
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    parameters = {"small": True}
    if name == "02_compare_recommenders":
        parameters["experiment"] = f"notebook-test-{uuid.uuid4().hex[:8]}"
    executed = tmp_path / f"{name}.ipynb"
    started = time.perf_counter()
    papermill.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"),
        str(executed),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
    )
    print(f"{name}: {time.perf_counter() - started:.1f} s, executed copy {executed}")
    result = nbformat.read(executed, as_version=4)
    errors = [
        output
        for cell in result.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert errors == []
    # every chart was drawn: each figure cell left an image
    images = sum(
        "image/png" in output.get("data", {})
        for cell in result.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert images >= {"01": 5, "02": 1, "03": 1, "04": 3}[name[:2]]
