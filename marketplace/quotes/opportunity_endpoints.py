"""Routes of the factories' job board (opportunities) and of quote requests (invitations)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["opportunities"])
