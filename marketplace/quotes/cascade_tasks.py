"""Celery jobs of the cascade: lapsed quote requests pass to the next-ranked match."""

from __future__ import annotations
