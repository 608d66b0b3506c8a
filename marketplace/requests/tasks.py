"""Request jobs run by Celery: notifications on new requests and new capacity, and the expiry sweep.
Every task is idempotent and acknowledged late."""

from __future__ import annotations

import uuid

from marketplace.celery_app import celery
from marketplace.requests import service
from marketplace.tasks import run_in_unit_of_work


@celery.task(name="requests.notify_suppliers", acks_late=True)
def notify_suppliers(request_id: str) -> int:
    """Tell the suppliers of the best-matching listings about a newly posted request (once)."""
    return run_in_unit_of_work(lambda s: service.notify_suppliers(s, uuid.UUID(request_id)))


@celery.task(name="requests.notify_buyers", acks_late=True)
def notify_buyers(asset_id: str) -> int:
    """Tell buyers with matching open requests that a listing was published."""
    return run_in_unit_of_work(lambda s: service.notify_buyers(s, uuid.UUID(asset_id)))


@celery.task(name="requests.expire", acks_late=True)
def expire() -> int:
    """Open requests whose deadline passed become expired."""
    return run_in_unit_of_work(service.expire_due)
