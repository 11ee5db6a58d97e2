"""Playlists: ``/api/v1/playlists``, owner-only writes, ``If-Match`` versions."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/playlists", tags=["playlists"])
