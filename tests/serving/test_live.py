"""The service as it runs: ``encore serve`` in its own process, following the registry under
load, and a listener's session carried from the event API through the ingestion job to the
next answer."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient

from encore import keys, services
from encore.settings import Settings
from encore.tokens import issue_token
from models.synthetic import generate
from models.training import train
from pipelines.ingest import control
from tests.pipelines.ingest.conftest import ingest_settings  # noqa: F401 (a fixture)
from tests.serving.world import ALS, World, build_world, serving_settings

pytestmark = pytest.mark.integration
DEV = {"ENCORE_DEVELOPMENT": "true"}


def service_headers(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.api.service_token.get_secret_value()}"}


def test_a_new_champion_swaps_in_under_load_without_a_failed_request(
    platform: Settings, tmp_path: Path
) -> None:
    settings = serving_settings(platform, str(tmp_path / "lake"), registry_poll_s=1)
    settings = settings.model_copy(update={"home": tmp_path / "home"})
    (tmp_path / "home").mkdir()
    world = build_world(settings)
    users = list(world.listeners)[:50]
    results: list[tuple[int, str | None]] = []
    failures: list[str] = []
    stop = threading.Event()

    with services.running(settings, "serving", env=DEV) as serving:
        base = serving.address(settings)

        def load() -> None:
            with httpx.Client(headers=service_headers(settings), timeout=10) as client:
                i = 0
                while not stop.is_set():
                    user = users[i % len(users)]
                    i += 1
                    try:
                        answer = client.get(
                            f"{base}/api/v1/recommendations/for-you",
                            params={"user_id": user, "limit": 20},
                        )
                    except httpx.HTTPError as error:
                        failures.append(repr(error))
                        continue
                    body = answer.json() if answer.status_code == 200 else {}
                    version = (body.get("model") or {}).get("version")
                    if answer.status_code != 200 or len(body["items"]) != 20:
                        failures.append(f"{answer.status_code}: {answer.text[:200]}")
                    results.append((answer.status_code, version))

        threads = [threading.Thread(target=load) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(2)
            other = generate(users=200, items=300, genres=6, tags=60, seed=12)
            train(settings, "als", other, params=ALS, registered_name=settings.serving.model_name)
            uri = settings.mlflow.effective_tracking_uri
            MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(
                settings.serving.model_name, "champion", "2"
            )
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not any(v == "2" for _, v in results[-20:]):
                time.sleep(0.5)
            time.sleep(2)  # and a little more traffic on the new version
        finally:
            stop.set()
            for thread in threads:
                thread.join()

    versions = Counter(version for _, version in results)
    assert failures == []
    assert versions["1"] > 0 and versions["2"] > 0, versions
    assert set(versions) == {"1", "2"}
    # once the new version answered, the old one never did again (one swap, whole)
    first_new = next(i for i, (_, v) in enumerate(results) if v == "2")
    late_old = [i for i, (_, v) in enumerate(results[first_new:]) if v == "1"]
    assert len(late_old) <= 3  # requests already in flight on the other threads


def test_plays_posted_now_change_the_next_answer(ingest_settings: Settings) -> None:  # noqa: F811
    settings = serving_settings(ingest_settings, ingest_settings.lake.root)
    world: World = build_world(settings)
    user = next(u for u, row in world.listeners.items() if row["allow_explicit"])
    control.start(settings)
    try:
        with (
            services.running(settings, "api", env=DEV) as api,
            services.running(settings, "serving", env=DEV) as serving,
        ):
            listener = {"Authorization": f"Bearer {issue_token(settings, user)}"}
            url = f"{serving.address(settings)}/api/v1/recommendations/for-you"
            with httpx.Client(headers=listener, timeout=30) as client:
                before = client.get(url, params={"limit": 10}).json()
                jazz = [s for s, row in world.songs.items() if row["genre"] == "jazz"][:5]
                start = datetime.now(UTC) - timedelta(minutes=12)
                events = [
                    {
                        "event_id": str(uuid.uuid4()),
                        "user_id": user,
                        "song_id": song,
                        "event_type": "complete",
                        "start_time": (start + timedelta(minutes=2 * i)).isoformat(),
                        "end_time": (start + timedelta(minutes=2 * i + 2)).isoformat(),
                        "ms_played": 120_000,
                        "device_type": "mobile",
                        "country_code": "US",
                    }
                    for i, song in enumerate(jazz)
                ]
                posted = client.post(
                    f"{api.address(settings)}/api/v1/playback-events", json={"events": events}
                )
                assert posted.status_code == 202, posted.text
                redis = __import__("redis").Redis.from_url(settings.redis.effective_url)
                deadline = time.monotonic() + 180
                wanted = {e["event_id"] for e in events}
                while time.monotonic() < deadline:
                    seen = {p.event_id for p in keys.read_recent_plays(redis, user, 50)}
                    if wanted <= seen:
                        break
                    time.sleep(0.5)
                assert wanted <= seen, "the ingestion job did not write the plays to Redis"
                after = client.get(url, params={"limit": 10}).json()
    finally:
        control.stop(settings, timeout_s=10)

    jazz_count = lambda body: sum(i["genre"] == "jazz" for i in body["items"])  # noqa: E731
    assert jazz_count(after) > jazz_count(before)
    assert any("session" in item["sources"] for item in after["items"])
    assert not {item["song_id"] for item in after["items"]} & set(jazz)
    assert after["degraded"] == []
