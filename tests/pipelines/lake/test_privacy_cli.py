"""``encore privacy forget`` and ``encore privacy export`` as an operator runs them: a
subprocess (its own settings from the environment) against a small private lake, checking
exit codes, the printed lines and the JSON; an unknown id succeeds with a warning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from encore.settings import Settings
from encore.tables import PLAY_EVENTS, TRAINING_INTERACTIONS
from pipelines.lake import privacy, quality
from pipelines.lake.pseudonyms import listener_key
from tests.pipelines.lake.conftest import read_rows, write_rows
from tests.pipelines.lake.test_silver import event

ENCORE = str(Path(sys.executable).parent / "encore")
SECRET = "a-cli-test-pseudonym-secret-of-at-least-32-bytes"
ALICE, CAROL = "listener-alice-cli", "listener-carol-cli"
DAY = date(2026, 11, 23)


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    """What the subprocess reads from :func:`environment`, for writing and reading here."""
    lake = {"root": str(tmp_path / "lake"), "pseudonym_secret": SECRET}
    return Settings(home=tmp_path, development=False, lake=lake)


def environment(settings: Settings) -> dict[str, str]:
    """This process's environment without its ENCORE_* variables, plus the test's lake; not
    in development, so the explicit pseudonym key is what lets the commands run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCORE_")}
    return {
        **env,
        "ENCORE_HOME": str(settings.home),
        "ENCORE_DEVELOPMENT": "false",
        "ENCORE_LAKE__ROOT": settings.lake.root,
        "ENCORE_LAKE__PSEUDONYM_SECRET": SECRET,
    }


def encore(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ENCORE, "privacy", *args],
        env=environment(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


def write_lake(settings: Settings) -> None:
    """Two plays of Alice and one of Carol in bronze; a failed check whose example is
    Alice's (pseudonymised, as the checks write it)."""
    at = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
    write_rows(
        settings,
        PLAY_EVENTS,
        [
            event("e-a1", ALICE, "s-1", at, 40_000),
            event("e-a2", ALICE, "s-2", at, 40_000),
            event("e-c1", CAROL, "s-1", at, 40_000),
        ],
    )
    row = {"cutoff_date": str(DAY), "user_id": ALICE, "song_id": "s-2", "weight": -0.5}
    example = quality.pseudonymise(settings, json.dumps(row))
    failed = quality.CheckResult("in_range(weight, 0, None)", False, 2, 1, example)
    quality.append_results(settings, TRAINING_INTERACTIONS, DAY, [failed])


def test_export_then_forget_a_listener(settings: Settings, tmp_path: Path) -> None:
    write_lake(settings)
    out = tmp_path / "alice.json"

    exported = encore(settings, "export", "--user", ALICE, "--out", str(out))

    assert exported.returncode == 0, exported.stderr
    assert exported.stderr.strip() == f"wrote {out}"
    assert exported.stdout == ""
    document = json.loads(out.read_text())
    assert document["user_id"] == ALICE
    tables = document["tables"]
    assert sorted(r["event_id"] for r in tables["bronze.play_events"]) == ["e-a1", "e-a2"]
    [result] = tables["ops.quality_results"]
    assert json.loads(result["example"])["listener_key"] == listener_key(settings, ALICE)
    # without --out the same document goes to stdout
    to_stdout = encore(settings, "export", "--user", ALICE)
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert json.loads(to_stdout.stdout)["tables"] == tables

    forgotten = encore(settings, "forget", "--user", ALICE)

    assert forgotten.returncode == 0, forgotten.stderr
    lines = forgotten.stderr.strip().splitlines()
    summary = json.loads(forgotten.stdout)
    by_table = {t["table"]: t for t in summary["tables"]}
    assert by_table["bronze.play_events"]["rows_deleted"] == 2
    assert by_table["ops.quality_results"]["rows_blanked"] == 1
    assert lines[-1] == f"erasure {summary['request_id']} logged in ops.erasures"
    bronze_line = next(line for line in lines if line.startswith("bronze.play_events:"))
    removed = len(by_table["bronze.play_events"]["files_removed"])
    assert bronze_line == (
        f"bronze.play_events: 2 rows deleted, {removed} files removed, "
        "log compacted (history before the erasure dropped)"
    )
    assert ALICE not in forgotten.stdout + forgotten.stderr
    assert [r["event_id"] for r in read_rows(settings, PLAY_EVENTS)] == ["e-c1"]
    [logged] = privacy.erasures(settings)
    assert logged["request_id"] == summary["request_id"]


def test_an_unknown_listener_is_said_and_not_an_error(settings: Settings) -> None:
    write_lake(settings)
    before = read_rows(settings, PLAY_EVENTS)

    exported = encore(settings, "export", "--user", "nobody")

    assert exported.returncode == 0, exported.stderr
    assert privacy.NOTHING_HELD in exported.stderr
    document = json.loads(exported.stdout)
    assert document["tables"] == {"bronze.play_events": [], "ops.quality_results": []}

    forgotten = encore(settings, "forget", "--user", "nobody")

    assert forgotten.returncode == 0, forgotten.stderr
    assert privacy.NOTHING_HELD in forgotten.stderr
    assert "bronze.play_events: 0 rows deleted, 0 files removed" in forgotten.stderr
    assert json.loads(forgotten.stdout)["tables"][0]["rows_deleted"] == 0
    assert read_rows(settings, PLAY_EVENTS) == before
    [logged] = privacy.erasures(settings)  # the request is on record all the same
    assert logged["tables_touched"] == ""


def test_the_default_pseudonym_key_fails_with_one_line(settings: Settings) -> None:
    env = environment(settings)
    del env["ENCORE_LAKE__PSEUDONYM_SECRET"]
    done = subprocess.run(
        [ENCORE, "privacy", "forget", "--user", ALICE],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error:") and "PSEUDONYM_SECRET" in line
    assert not Path(settings.lake.root).exists()
