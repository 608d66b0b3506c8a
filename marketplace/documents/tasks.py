"""Celery jobs of the documents room."""

from __future__ import annotations
