"""The Celery application (broker and results on Redis).

Configured from settings at import time when ``MARKETPLACE_REDIS_URL`` is set (worker, beat and API
processes started by ``marketplace run`` or docker compose always set it); ``configure`` is called
explicitly by the CLI after it has started the embedded Redis.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import Celery

from marketplace.core import celery as core_celery
from marketplace.core.settings import Settings, get_settings

TASK_MODULES = [
    "marketplace.core.tasks",
    "marketplace.auth.tasks",
    "marketplace.bookings.tasks",
    "marketplace.requests.tasks",
    "marketplace.billing.tasks",
    "marketplace.analytics.tasks",
    "marketplace.orgs.tasks",
    "marketplace.documents.tasks",
    "marketplace.quotes.tasks",
    "marketplace.quotes.cascade_tasks",
    "marketplace.messages.tasks",
    "marketplace.inspection.tasks",
    "marketplace.inspection.pdf_tasks",
    "marketplace.vouchers.tasks",
]

celery = core_celery.celery
# The worker imports these at start-up; the API process never needs to.
celery.conf.include = TASK_MODULES


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Beat's periodic tasks. The booking sweep acts on the due times stored in PostgreSQL, so a timer whose
    outbox message was lost with a killed worker fires at most ``booking_sweep_seconds`` late."""
    return {
        "purge-expired-idempotency-keys": {
            "task": "marketplace.purge_idempotency_keys",
            "schedule": timedelta(hours=1),
        },
        "booking-timers": {
            "task": "bookings.sweep",
            "schedule": timedelta(seconds=settings.booking_sweep_seconds),
        },
        "expire-requests": {
            "task": "requests.expire",
            "schedule": timedelta(minutes=5),
        },
        "payments-process-pending-stripe-events": {
            "task": "payments.sweep_stripe_events",
            "schedule": timedelta(minutes=5),
        },
        "payments-flag-overdue-invoices": {
            "task": "payments.flag_overdue_invoices",
            "schedule": timedelta(hours=1),
        },
        "refresh-listing-next-free-slots": {
            "task": "listings.refresh_next_free",
            "schedule": timedelta(minutes=10),
        },
        "quotes-expire-and-cascade": {
            "task": "quotes.sweep",
            "schedule": timedelta(minutes=1),
        },
        "quotes-cascade-lapsed-invitations": {
            "task": "quotes.cascade_sweep",
            "schedule": timedelta(minutes=5),
        },
        "messages-unread-digest": {
            "task": "messages.digest",
            "schedule": timedelta(minutes=max(1, settings.message_digest_minutes // 4)),
        },
        "documents-retention": {
            "task": "documents.retention",
            "schedule": timedelta(hours=6),
        },
        "inspection-overdue-sweep": {
            "task": "inspection.sweep",
            "schedule": timedelta(hours=1),
        },
        "vouchers-monthly-claims": {  # builds last month's claims once; later runs find them built
            "task": "vouchers.build_claims",
            "schedule": timedelta(hours=6),
        },
        "analytics-rollup-previous-month": {
            "task": "analytics.rollup_previous_month",
            "schedule": timedelta(days=1),
        },
    }


def configure(redis_url: str, settings: Settings | None = None) -> Celery:
    """Point the Celery instance at Redis and give it every room's tasks and beat's schedule."""
    settings = settings or get_settings()
    app = core_celery.configure(redis_url, settings)
    app.conf.update(beat_schedule=beat_schedule(settings))
    return app


_settings = get_settings()
if _settings.redis_url:
    configure(_settings.redis_url)
