"""Streaming: ``/api/v1/songs/{id}/stream`` and the token-checked HLS playback routes."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["streaming"])
