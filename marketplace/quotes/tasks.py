"""Celery jobs of the quotes room: the expiry timer of one quote and the sweep that catches lost timers.

Both are idempotent (the outbox relay delivers at least once): the quote row is locked and its status and
``valid_until`` re-checked before it expires."""

from __future__ import annotations

import uuid

from marketplace.core.celery import celery
from marketplace.core.tasks import run_in_unit_of_work
from marketplace.quotes import service


@celery.task(name="quotes.expire_one", acks_late=True)
def expire_one(quote_id: str) -> bool:
    """Expire one quote at its latest version's valid_until (no-op if it moved on or was countered)."""
    return run_in_unit_of_work(lambda s: service.expire_one(s, uuid.UUID(quote_id)))


@celery.task(name="quotes.sweep", acks_late=True)
def sweep() -> int:
    """Expire every open quote past its validity (beat, every minute)."""
    return run_in_unit_of_work(service.sweep)
