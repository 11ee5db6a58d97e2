"""The API's OpenAPI schema tells the truth: schemathesis fuzzes a real ``encore api`` with
every check, as the service and as a listener, and finds no failure.

The error answers are documented once (``streaming_api.errors.ErrorBody``,
``ERROR_RESPONSES``); these tests check the schema names them on every route, then let
schemathesis (``--checks all --continue-on-failure``, a fixed seed, a bounded number of
examples per operation) compare every answer with the schema.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from encore import services
from encore.settings import Settings
from streaming_api.app import create_app
from streaming_api.catalog.load import load_catalog
from streaming_api.media.ingest import ingest_folder
from streaming_api.media.samples import write_catalog_masters
from tests.conftest import free_port
from tests.streaming_api.conftest import create_topic, with_topic

pytestmark = pytest.mark.integration

SEED = 20261130
LISTENER_COUNTRY = "US"  # the fuzzed song is licensed there: its stream answers 200
MAX_EXAMPLES = 25
RATES = {
    "login_rate_per_ip": "100000/minute",
    "login_rate_per_user": "100000/minute",
    "register_rate_per_ip": "100000/minute",
    "register_rate_per_user": "100000/minute",
}
# What schemathesis is told beyond `--checks all`, and why. One operation, two status lists:
CONFIG = """
# POST /api/v1/playback-events is all-or-nothing and ties each event to the request's arrival
# and to the caller: start_time within [arrival - 30 d, arrival + 5 min], end_time >= start_time
# and not after arrival + 5 min, ms_played <= the wall time between them, unique event_ids in
# a batch, and (listener token) user_id equal to the caller. JSON Schema cannot express these
# cross-field and clock rules, so a schema-valid body is rightly refused with 422 (or 403):
# 422 joins the statuses "positive data acceptance" takes. The batch limit (maxItems) is
# answered 413 like the byte limit (both documented): 413 joins "negative data rejection".
# Every check still runs on every operation; test_app.py tests that valid events get 202.
[[operations]]
include-path = "/api/v1/playback-events"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "422", "5xx"]
checks.negative_data_rejection.expected-statuses = ["400", "401", "403", "413", "422", "5xx"]

# Playlists: a schema-valid edit is rightly refused when its If-Match version is stale (412),
# when it names songs that do not exist or positions past the end (422), or when the
# playlist id is not the caller's (404): none of that is in a JSON Schema. A missing
# If-Match is 428 Precondition Required (RFC 6585), the status `st explain ST203` names.
[[operations]]
include-path-regex = "^/api/v1/playlists"
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "401", "403", "404", "412", "422", "5xx"]
checks.missing_required_header.expected-statuses = [
    "400", "401", "403", "406", "415", "422", "428"]

# A stream is refused with 451 when the song is not licensed in the listener's country, which
# is account state (the fuzz itself clears it through PATCH /api/v1/me), not request data.
[[operations]]
include-path = "/api/v1/songs/{song_id}/stream"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "451", "5xx"]
"""


def api_settings(platform: Settings) -> Settings:
    topic = f"test-openapi-{uuid.uuid4().hex[:8]}"
    create_topic(platform, topic)
    settings = with_topic(platform, topic, **RATES)
    return settings.model_copy(
        update={"api": settings.api.model_copy(update={"port": free_port()})}
    )


def test_the_schema_documents_every_error_answer(platform: Settings) -> None:
    schema = TestClient(create_app(with_topic(platform, "unused"))).get("/openapi.json").json()
    assert set(schema["components"]["schemas"]["ErrorBody"]["required"]) == {"detail"}
    error = {"$ref": "#/components/schemas/ErrorBody"}
    expected = {
        ("/api/v1/playback-events", "post"): {"202", "401", "403", "413", "422", "503"},
        ("/api/v1/auth/register", "post"): {"201", "409", "413", "422", "429", "503"},
        ("/api/v1/auth/token", "post"): {"200", "401", "413", "422", "429", "503"},
        ("/api/v1/health/ready", "get"): {"200", "503"},
    }
    for (path, method), statuses in expected.items():
        responses = schema["paths"][path][method]["responses"]
        assert set(responses) == statuses, (path, set(responses))
        for status in statuses - {"200", "201", "202"}:
            content = responses[status]["content"]["application/json"]["schema"]
            if path != "/api/v1/health/ready":
                assert content == error, (path, status, content)
    assert (
        "Retry-After"
        in schema["paths"]["/api/v1/auth/token"]["post"]["responses"]["429"]["headers"]
    )


def catalog_ids(settings: Settings, masters: Path) -> dict[str, str]:
    """Path parameters naming real rows: a small catalog and one song with media, so that
    the read and stream routes answer 200 with real data, not only 404s, under the fuzz."""
    load_catalog(settings, artists=20, songs_per_artist=5, seed=11)
    write_catalog_masters(settings, masters, 1, 3)
    assert ingest_folder(settings, masters).ok
    with psycopg.connect(settings.postgres.effective_dsn) as connection:
        song, artist, album = connection.execute(
            "SELECT song_id, artist_id, album_id FROM songs"
            " WHERE hls_manifest IS NOT NULL AND %s = ANY(territories) LIMIT 1",
            (LISTENER_COUNTRY,),
        ).fetchone()
    return {"path.song_id": song, "path.artist_id": artist, "path.album_id": album}


@pytest.fixture(scope="module")
def api(
    platform: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Settings, dict[str, str]]]:
    settings = api_settings(platform)
    ids = catalog_ids(settings, tmp_path_factory.mktemp("masters"))
    instance = f"api-openapi-{uuid.uuid4().hex[:6]}"
    with services.running(
        settings, "api", instance=instance, env={"ENCORE_DEVELOPMENT": "true"}
    ) as service:
        yield service.address(settings), settings, ids


def listener_token(base: str) -> str:
    credentials = {"username": f"fuzz-{uuid.uuid4().hex[:8]}", "password": "long enough pw"}
    registration = {**credentials, "country": LISTENER_COUNTRY}
    assert httpx.post(f"{base}/api/v1/auth/register", json=registration).status_code == 201
    answer = httpx.post(f"{base}/api/v1/auth/token", data=credentials)
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


@pytest.mark.parametrize("caller", ["service", "listener"])
def test_schemathesis_finds_no_failure(
    api: tuple[str, Settings, dict[str, str]], caller: str, tmp_path: Path
) -> None:
    base, settings, ids = api
    token = (
        settings.api.service_token.get_secret_value()
        if caller == "service"
        else listener_token(base)
    )
    config = tmp_path / "schemathesis.toml"
    parameters = "\n".join(f'"{name}" = "{value}"' for name, value in ids.items())
    config.write_text(f"[parameters]\n{parameters}\n{CONFIG}")
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{base}/openapi.json",
        "--checks",
        "all",
        "--continue-on-failure",
        "--seed",
        str(SEED),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-database",
        "none",
        "--workers",
        "2",
        "--header",
        f"Authorization: Bearer {token}",
    ]
    run = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-20000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", output)
    assert counts and counts[1] == counts[2], output[-5000:]
