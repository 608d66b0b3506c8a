"""Routes of the quotes room."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["quotes"])
