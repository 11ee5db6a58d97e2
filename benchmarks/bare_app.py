"""The serving benchmark's baseline: a bare FastAPI endpoint answering a fixed list.

Same framework, server (uvicorn), worker count and route shape as the recommendation
service, no work behind it: what the machine gives a for-you request before any
recommending happens. ``bench_serving.py`` runs it as
``uvicorn bare_app:create_app --factory`` with ``BARE_SONGS`` naming the songs to return.
"""

from __future__ import annotations

import os

from fastapi import FastAPI


def create_app() -> FastAPI:
    songs = os.environ.get("BARE_SONGS", "").split(",")
    answer = {"items": [{"song_id": song, "score": 1.0} for song in songs if song]}
    app = FastAPI(title="bare")

    @app.get("/api/v1/recommendations/for-you")
    def for_you(limit: int = 20, user_id: str | None = None) -> dict:
        return answer

    return app
