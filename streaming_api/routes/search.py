"""``GET /api/v1/search``: songs, artists and albums by full text, forgiving typos."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/search", tags=["search"])
