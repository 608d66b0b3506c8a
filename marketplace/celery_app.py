"""The Celery application (broker and results on Redis).

Configured from settings at import time when ``MARKETPLACE_REDIS_URL`` is set (worker, beat and API
processes started by ``marketplace run`` or docker compose always set it); ``configure`` is called
explicitly by the CLI after it has started the embedded Redis.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import Celery

from marketplace.settings import Settings, get_settings

TASK_MODULES = [
    "marketplace.tasks",
    "marketplace.bookings.tasks",
    "marketplace.requests.tasks",
    "marketplace.payments_tasks",
    "marketplace.analytics.tasks",
    "marketplace.orgs.tasks",
]

celery = Celery("marketplace", include=TASK_MODULES)


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
        "analytics-rollup-previous-month": {
            "task": "analytics.rollup_previous_month",
            "schedule": timedelta(days=1),
        },
    }


def kombu_url(redis_url: str) -> str:
    """redis-py speaks ``unix://``; kombu wants ``redis+socket://`` for a Unix socket."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url[len("unix://") :]
    return redis_url


def configure(redis_url: str, settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    url = kombu_url(redis_url)
    celery.conf.update(
        broker_url=url,
        result_backend=url,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
        # A task is acknowledged only after it ran, so a crashed worker's task is redelivered;
        # every task is therefore idempotent.
        task_acks_late=True,
        # Redis redelivers a message a killed worker held once it is this old. No message carries a countdown
        # or ETA (due times live in the outbox rows and the booking columns), so this only has to exceed the
        # longest task; the sweeps make timers independent of it.
        broker_transport_options={
            "visibility_timeout": settings.celery_visibility_timeout_seconds,
            "socket_connect_timeout": 5,
        },
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        result_expires=timedelta(days=1),
        broker_connection_retry_on_startup=True,
        task_default_queue=settings.celery_queue,
        beat_schedule=beat_schedule(settings),
        worker_hijack_root_logger=False,
    )
    return celery


_settings = get_settings()
if _settings.redis_url:
    configure(_settings.redis_url)
