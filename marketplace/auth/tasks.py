"""Background jobs of the identity room."""

from __future__ import annotations

from marketplace.core.celery import celery
from marketplace.core.settings import get_settings
from marketplace.core.tasks import run_in_unit_of_work


@celery.task(name="auth.send_email_link", acks_late=True)
def send_email_link(user_id: str, purpose: str, token: str) -> bool:
    """Mail a verification or password-reset link (see marketplace.auth.service.deliver_email_link)."""
    import uuid

    from marketplace.auth import service as auth_service

    settings = get_settings()
    return run_in_unit_of_work(
        lambda session: auth_service.deliver_email_link(
            session, settings, user_id=uuid.UUID(user_id), purpose=purpose, token=token
        )
    )
