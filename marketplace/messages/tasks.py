"""Celery jobs of the messages room."""

from __future__ import annotations
