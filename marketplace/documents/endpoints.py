"""Routes of the documents room."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["documents"])
