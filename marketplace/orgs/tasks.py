"""Background jobs of organisations: invitation e-mails."""

from __future__ import annotations

import uuid

from marketplace.core.celery import celery
from marketplace.core.settings import get_settings
from marketplace.core.tasks import run_in_unit_of_work
from marketplace.orgs import service


@celery.task(name="orgs.send_invitation", acks_late=True, autoretry_for=(OSError,), retry_backoff=10, max_retries=8)
def send_invitation(invitation_id: str) -> bool:
    settings = get_settings()
    return run_in_unit_of_work(
        lambda s: service.send_invitation_email(s, settings=settings, invitation_id=uuid.UUID(invitation_id))
    )
