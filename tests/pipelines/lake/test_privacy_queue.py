"""The privacy request queue against real PostgreSQL and Redis and a small private lake:
queueing (one open request per kind and listener, oldest due first), processing (the lake's
rows erased, the export written 0600, a failing request recorded while the others go on),
lateness, two processors never taking the same request, and the commands' exit codes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import get_args

import pytest
from sqlalchemy import delete
from sqlalchemy.engine import Engine

from encore.db.schema import PRIVACY_REQUEST_KINDS, privacy_requests
from encore.errors import ContractError
from encore.settings import Settings, settings_env
from encore.tables import ERASURES, PLAY_EVENTS
from pipelines.lake import privacy, privacy_cli
from pipelines.lake import privacy_queue as pq
from tests.conftest import fresh_database
from tests.pipelines.lake.conftest import read_rows, write_rows
from tests.pipelines.lake.test_silver import event

pytestmark = pytest.mark.integration

ENCORE = str(Path(sys.executable).parent / "encore")
ALICE, CAROL = "listener-alice-queue", "listener-carol-queue"
HOUR = timedelta(hours=1)
PLAYED = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def database(platform: Settings) -> Settings:
    """The platform's settings on a database of this module's own."""
    return fresh_database(platform, "privacy_queue_tests")


@pytest.fixture()
def settings(database: Settings, tmp_path: Path) -> Settings:
    """A private lake and an empty queue for each test."""
    lake = database.lake.model_copy(update={"root": str(tmp_path / "lake")})
    return database.model_copy(update={"lake": lake})


@pytest.fixture()
def engine(settings: Settings) -> Iterator[Engine]:
    engine = pq.connect(settings)
    with engine.begin() as connection:
        connection.execute(delete(privacy_requests))
    yield engine
    engine.dispose()


def write_plays(settings: Settings) -> None:
    """Two plays of Alice, one of Carol, in bronze."""
    rows = [
        event("e-a1", ALICE, "s-1", PLAYED, 40_000),
        event("e-a2", ALICE, "s-2", PLAYED, 40_000),
        event("e-c1", CAROL, "s-1", PLAYED, 40_000),
    ]
    write_rows(settings, PLAY_EVENTS, rows)


def test_the_cli_kinds_are_the_tables() -> None:
    assert get_args(privacy_cli.Kind) == PRIVACY_REQUEST_KINDS


def test_queueing_returns_the_open_request_and_lists_oldest_due_first(
    settings: Settings, engine: Engine
) -> None:
    now = datetime.now(UTC)
    erase, created = pq.queue_request(settings, engine, "erase", ALICE, now=now)
    export, _ = pq.queue_request(settings, engine, "export", ALICE, now=now - timedelta(hours=1))
    carol, _ = pq.queue_request(settings, engine, "erase", CAROL, now=now - timedelta(hours=2))

    again, created_again = pq.queue_request(settings, engine, "erase", ALICE)

    assert created and not created_again
    assert again == erase
    assert erase.status == "pending" and erase.attempts == 0
    assert erase.due_at == now + timedelta(hours=settings.lake.privacy_deadline_hours)
    listed = pq.open_requests(engine)
    assert [r.request_id for r in listed] == [carol.request_id, export.request_id, erase.request_id]
    with pytest.raises(ContractError, match="'delete': expected one of erase, export"):
        pq.queue_request(settings, engine, "delete", ALICE)
    with pytest.raises(ContractError, match="1 to 64 characters"):
        pq.queue_request(settings, engine, "erase", "x" * 65)


def test_processing_exports_then_erases_and_the_queue_forgets_the_listener(
    settings: Settings, engine: Engine
) -> None:
    write_plays(settings)
    now = datetime.now(UTC)
    export, _ = pq.queue_request(settings, engine, "export", ALICE, now=now - timedelta(hours=1))
    erase, _ = pq.queue_request(settings, engine, "erase", ALICE, now=now)
    seen: dict[str, tuple[int, dict]] = {}

    def on_processed(request: pq.PrivacyRequest) -> None:
        if request.export_path:  # read before the erasure that follows deletes it
            path = Path(request.export_path)
            mode = stat.S_IMODE(path.stat().st_mode)
            seen[request.request_id] = (mode, json.loads(path.read_text()))

    report = pq.process_requests(settings, engine, on_processed=on_processed)

    assert report.ok, report.lines()
    assert [r.request_id for r in report.processed] == [export.request_id, erase.request_id]
    mode, document = seen[export.request_id]
    assert mode == 0o600
    assert sorted(r["event_id"] for r in document["tables"]["bronze.play_events"]) == [
        "e-a1",
        "e-a2",
    ]
    assert [r["event_id"] for r in read_rows(settings, PLAY_EVENTS)] == ["e-c1"]
    [logged] = read_rows(settings, ERASURES)
    assert logged["request_id"] == erase.request_id
    done_export = pq.get_request(engine, export.request_id)
    done_erase = pq.get_request(engine, erase.request_id)
    assert done_erase.status == done_export.status == "done"
    assert done_erase.attempts == 1 and done_erase.result["rows_deleted"] == 2
    assert done_export.result["rows"]["bronze.play_events"] == 2
    # the erasure took the id out of the queue and deleted the earlier export's file
    assert done_erase.user_id is None and done_export.user_id is None
    assert done_export.export_path is None
    assert not pq.export_file(settings, export.request_id).exists()
    with engine.connect() as connection:
        hmacs = connection.execute(privacy_requests.select()).mappings().all()
    assert {r["subject_hmac"] for r in hmacs} == {privacy.subject_hmac(settings, ALICE)}
    assert all(ALICE not in line for line in report.lines())
    # nothing open: processing again changes nothing
    assert pq.process_requests(settings, engine).processed == []


def test_a_failing_request_is_recorded_and_the_others_processed(
    settings: Settings, engine: Engine
) -> None:
    write_plays(settings)
    now = datetime.now(UTC)
    export, _ = pq.queue_request(settings, engine, "export", ALICE, now=now - timedelta(hours=1))
    erase, _ = pq.queue_request(settings, engine, "erase", CAROL, now=now)
    # the export's file cannot be written: a folder holds its name
    blocker = pq.export_file(settings, export.request_id)
    blocker.mkdir(parents=True)

    report = pq.process_requests(settings, engine)

    assert not report.ok
    [failed] = report.failed
    assert failed.request_id == export.request_id and failed.status == "failed"
    assert failed.attempts == 1 and "IsADirectoryError" in failed.last_error
    assert pq.get_request(engine, erase.request_id).status == "done"
    assert [r["user_id"] for r in read_rows(settings, PLAY_EVENTS)] == [ALICE, ALICE]
    assert [r.request_id for r in pq.open_requests(engine)] == [export.request_id]
    line = failed.describe(report.checked_at)
    assert line.startswith(f"{export.request_id} export failed (attempt 1: IsADirectoryError")
    # a failed request stays open: queueing again returns it, the next run retries it
    assert pq.queue_request(settings, engine, "export", ALICE)[0].request_id == export.request_id
    blocker.rmdir()
    retried = pq.process_requests(settings, engine)
    assert retried.ok, retried.lines()
    [done] = retried.processed
    assert done.status == "done" and done.attempts == 2 and done.last_error is None


def test_a_failure_reason_masks_the_listener() -> None:
    reason = pq._reason(ValueError(f"no such file: /exports/{ALICE}.json"), ALICE)
    assert reason == f"ValueError: no such file: /exports/{pq.MASK}.json"


def test_late_and_overdue_requests_fail_the_run_naming_them(
    settings: Settings, engine: Engine
) -> None:
    deadline = timedelta(hours=settings.lake.privacy_deadline_hours)
    now = datetime.now(UTC)
    # due 28 h ago, and 8 h ago; an empty lake: the erasures find nothing, quickly
    late, _ = pq.queue_request(settings, engine, "erase", ALICE, now - deadline - 28 * HOUR)
    waiting, _ = pq.queue_request(settings, engine, "erase", CAROL, now - deadline - 8 * HOUR)
    on_time, _ = pq.queue_request(settings, engine, "export", CAROL, now=now)

    report = pq.process_requests(settings, engine, limit=1)

    assert not report.ok
    assert [r.request_id for r in report.processed] == [late.request_id]
    assert [r.request_id for r in report.overdue] == [waiting.request_id]
    done_line, overdue_line = report.lines()
    assert done_line.startswith(f"{late.request_id} erase done, LATE: 1 d 4 h after its due time")
    assert overdue_line.startswith(f"{waiting.request_id} erase pending, LATE: 8 h ")
    assert "past its due time" in overdue_line
    assert on_time.request_id not in "".join(report.lines())


def test_two_processors_never_take_the_same_request(settings: Settings, engine: Engine) -> None:
    now = datetime.now(UTC)
    queued = [
        pq.queue_request(settings, engine, "erase", f"listener-{n}", now + n * HOUR)[0]
        for n in range(3)
    ]
    other = pq.connect(settings)
    try:
        # a claim holds its row until its transaction ends: the other connection skips it
        with engine.begin() as first, other.begin() as second:
            one = pq.claim_next(first)
            two = pq.claim_next(second)
            three = pq.claim_next(second, [two.request_id])
            assert pq.claim_next(second, [two.request_id, three.request_id]) is None
        assert [one.request_id, two.request_id, three.request_id] == [r.request_id for r in queued]

        # two whole processors at once: every request processed exactly once (the erasure
        # log exists already: two first appends at once would race to create it)
        write_rows(settings, ERASURES, [])
        reports: list[pq.ProcessReport] = []
        start = threading.Barrier(2)

        def processor(on: Engine) -> None:
            start.wait()
            reports.append(pq.process_requests(settings, on))

        threads = [threading.Thread(target=processor, args=(e,)) for e in (engine, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        other.dispose()
    taken = [r.request_id for report in reports for r in report.processed]
    assert sorted(taken) == sorted(r.request_id for r in queued)
    assert all(pq.get_request(engine, r.request_id).attempts == 1 for r in queued)
    assert sorted(r["request_id"] for r in read_rows(settings, ERASURES)) == sorted(taken)


def test_the_commands_queue_list_and_process(settings: Settings, engine: Engine) -> None:
    write_plays(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCORE_")}
    env |= settings_env(settings) | {"COLUMNS": "200"}  # the listing's table unwrapped

    def encore(*args: str) -> subprocess.CompletedProcess[str]:
        command = [ENCORE, "privacy", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    queued = encore("request", "erase", "--user", ALICE)
    assert queued.returncode == 0, queued.stderr
    [erase] = pq.open_requests(engine)
    due = f"{erase.due_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    assert queued.stdout == f"{erase.request_id} erase queued, due {due}\n"
    # and one request already 2 h past its due time
    old = datetime.now(UTC) - timedelta(hours=settings.lake.privacy_deadline_hours + 2)
    late, _ = pq.queue_request(settings, engine, "export", CAROL, now=old)
    listed = encore("queue")
    assert listed.returncode == 0, listed.stderr
    rows = [line for line in listed.stdout.splitlines() if "-" in line[:12]]
    assert [row.split()[1] for row in rows] == [late.request_id, erase.request_id], listed.stdout
    assert " 2 h 0 min " in rows[0]

    processed = encore("process")

    # both done, the late one first (oldest due) and named: exit 1
    assert processed.returncode == 1, processed.stderr
    late_line, erase_line = processed.stdout.splitlines()
    assert late_line.startswith(f"{late.request_id} export done, LATE: 2 h ")
    assert erase_line == f"{erase.request_id} erase done, due {due}"
    assert "2 processed, 0 failed, 1 late" in processed.stderr
    output = queued.stdout + queued.stderr + listed.stdout + processed.stdout + processed.stderr
    assert ALICE not in output and CAROL not in output
    assert [r["user_id"] for r in read_rows(settings, PLAY_EVENTS)] == [CAROL]
