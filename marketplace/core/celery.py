"""The Celery instance every room's tasks register on (broker and results on Redis).

The composition root (``marketplace.celery_app``) adds the task modules and beat's schedule; rooms import
only this module, so no room imports the root.
"""

from __future__ import annotations

from datetime import timedelta

from celery import Celery

from marketplace.core.settings import Settings, get_settings

celery = Celery("marketplace")


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
        worker_hijack_root_logger=False,
    )
    return celery
