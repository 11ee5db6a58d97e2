"""One contract, one strictness: what the API refuses, the ingestion job rejects, and why.

A corpus of bad records is posted to the real API (422 expected, naming the field) and
parsed by the job's parse function with the same arrival (a rejection naming the same
field, with the same reason); a corpus of good records is accepted by both. The same records
go through the real Flink job in ``test_time_bounds.py``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from encore.settings import Settings
from pipelines.ingest.parse import parse_record
from streaming_api.app import create_app
from tests.pipelines.ingest.producing import bad_corpus, good_corpus
from tests.streaming_api.conftest import create_topic, with_topic
from tests.topics import read_all

pytestmark = pytest.mark.integration

URL = "/api/v1/playback-events"
# case names only at collection: the records are made when a test runs, since their times
# are relative to their arrival (a record made at collection could age into validity by the
# time a long session reaches it)
BAD_CASES = [(case, field) for case, _, field in bad_corpus(datetime.now(UTC))]


@pytest.fixture(scope="module")
def api(platform: Settings) -> Iterator[tuple[TestClient, Settings]]:
    topic = f"test-strict-{uuid.uuid4().hex[:8]}"
    create_topic(platform, topic)
    settings = with_topic(platform, topic)
    with TestClient(create_app(settings)) as client:
        yield client, settings


def post(api: tuple[TestClient, Settings], value: bytes):
    client, settings = api
    headers = {
        "Authorization": f"Bearer {settings.api.service_token.get_secret_value()}",
        "Content-Type": "application/json",
    }
    return client.post(URL, content=value, headers=headers)


def same_arrival(reason: str) -> str:
    """The reason without the arrival time it quotes (the API's is the request's)."""
    return re.sub(r"its arrival \S+", "its arrival T", reason)


def job_problems(reason: str) -> list[tuple[str, str]]:
    """The job's rejection reason as (field, reason) pairs."""
    pairs = (part.split(": ", 1) for part in reason.split("; "))
    return [(field, same_arrival(text)) for field, text in pairs]


@pytest.mark.parametrize(("case", "field"), BAD_CASES, ids=[case for case, _ in BAD_CASES])
def test_a_bad_record_is_refused_by_both_for_the_same_field(
    api: tuple[TestClient, Settings], case: str, field: str
) -> None:
    now = datetime.now(UTC)
    value = next(v for name, v, _ in bad_corpus(now) if name == case)
    answer = post(api, value)
    assert answer.status_code == 422, (case, answer.text)
    api_problems = [(e["field"], same_arrival(e["reason"])) for e in answer.json()["errors"]]
    assert field in {f for f, _ in api_problems}, (case, api_problems)

    parsed = parse_record(value, now)
    assert parsed.event_id is None and parsed.reason is not None, case
    assert job_problems(parsed.reason) == api_problems, case
    # the same record in a batch is refused too, named by its index
    batch = b'{"events": [' + good_corpus(now)[0][1] + b", " + value + b"]}"
    answer = post(api, batch)
    assert answer.status_code == 422, case
    assert {(e["index"], e["field"]) for e in answer.json()["errors"]} >= {(1, field)}


def test_good_records_are_accepted_by_both(api: tuple[TestClient, Settings]) -> None:
    sent, now = [], datetime.now(UTC)
    for case, value in good_corpus(now):
        answer = post(api, value)
        assert answer.status_code == 202, (case, answer.text)
        sent.extend(answer.json()["event_ids"])
        parsed = parse_record(value, now)
        assert parsed.reason is None, (case, parsed.reason)
    on_topic = read_all(api[1])  # every partition to its end offset
    assert sorted(json.loads(r.value)["event_id"] for r in on_topic) == sorted(sent)
