"""Celery jobs of the quotes room."""

from __future__ import annotations
