"""Catalog reads: ``/api/v1/songs/{id}``, ``/artists/{id}``, ``/albums/{id}``, top songs."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["catalog"])
