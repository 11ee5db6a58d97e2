"""# privacy_requests

Listeners' erasure and export requests, processed within their deadline.

**Graph**: one task, `process` = `encore privacy process`. It takes every open request
(queued by `encore privacy request erase|export --user U`) oldest-due first, erases the
listener from the lake or writes their export (`<home>/privacy/exports/<request id>.json`,
mode 0600), and marks each done or failed with the reason, one log line per request. It
then checks the deadlines in the same pass, and fails (exit 1) when a request failed, was
finished after its due time, or is still open past it; the log line names the request and
how late it is. A separate verification task would re-read the same queue a moment later
and say the same thing, so the check is part of the command a person runs.

**Schedule**: hourly, at minute 17 (away from the daily DAGs at 00:00). A request is due
`lake.privacy_deadline_hours` (72 h by default) after it arrives; hourly runs take a new
request within the hour, so a failing one gets dozens of retries and an operator's attention
long before the deadline, instead of one daily chance.

**Idempotence**: not tied to a data interval: a run processes whatever is open. With nothing
open it changes nothing. Two runs at once never take the same request (rows are claimed with
`SELECT ... FOR UPDATE SKIP LOCKED`), and a run that dies mid-request leaves it open for the
next run, which redoes it (erasure and export are idempotent).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronTriggerTimetable, dag, task
from encore_common import DEFAULT_ARGS, encore


@dag(
    dag_id="privacy_requests",
    schedule=CronTriggerTimetable("17 * * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["encore", "privacy", "lake"],
    doc_md=__doc__,
    default_args=DEFAULT_ARGS,
    dagrun_timeout=timedelta(minutes=55),
)
def privacy_requests() -> None:
    @task.bash(execution_timeout=timedelta(minutes=50))
    def process() -> str:
        """Erase or export every open request, oldest due first; fail on any failure or
        lateness."""
        return encore("privacy", "process")

    process()


privacy_requests()
