"""Celery jobs of the messages room: the unread-messages e-mail digest ("messages.digest", on beat).

A user gets one e-mail, in the user's locale, when the user's organisations' threads hold messages from the other
side that are unread, older than ``settings.message_digest_minutes`` and newer than the user's last digest. The
digest mark (one row per user, locked while a digest is prepared) makes a redelivered or concurrent sweep send
nothing twice."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.core.celery import celery
from marketplace.core.settings import Settings
from marketplace.core.sqltypes import utcnow
from marketplace.core.tasks import run_with_sessionmaker
from marketplace.messages import notices
from marketplace.messages.repository import MessageRepository
from marketplace.notifications.service import render, send_email

log = logging.getLogger(__name__)


def _cutoff(settings: Settings, now: datetime) -> datetime:
    return now - timedelta(minutes=settings.message_digest_minutes)


async def digest_user(session: AsyncSession, settings: Settings, *, user_id: uuid.UUID, now: datetime) -> bool:
    """Send the user's digest if something is due; the caller commits. Returns whether an e-mail went out."""
    repo = MessageRepository(session)
    await repo.lock_digest_mark(user_id)
    rows = await repo.digest_threads(user_id, _cutoff(settings, now))
    user = await repo.user(user_id)
    if not rows or user is None or not user.is_active:
        return False
    own = await repo.user_org_ids(user_id)
    locale = user.locale
    lines = []
    for row in rows:
        t = row.thread
        if t.buyer_org_id in own:
            other = row.supplier_name
        elif notices.buyer_hidden(t, own):
            other = render("messages.digest.a_buyer", locale, {})[1]
        else:
            other = row.buyer_name
        kind = "messages.digest.booking" if t.booking_id else "messages.digest.request"
        _, line = render(kind, locale, {"other": other, "date": t.created_at.date().isoformat(), "count": row.unread})
        lines.append(line)
    total = sum(r.unread for r in rows)
    subject, body = render(
        "messages.digest", locale, {"name": user.full_name, "total": total, "lines": "\n".join(lines)}
    )
    await repo.set_digest_mark(user_id, now)
    await session.flush()
    send_email(settings, to=user.email, subject=subject, body=body)
    return True


async def digest_all(session: AsyncSession, settings: Settings, *, now: datetime | None = None) -> int:
    """Every due digest in one unit of work (tests, the CLI); the task below commits user by user."""
    now = now or utcnow()
    sent = 0
    for user_id in await MessageRepository(session).digest_users(_cutoff(settings, now)):
        sent += await digest_user(session, settings, user_id=user_id, now=now)
    return sent


async def run_digest(maker: async_sessionmaker[AsyncSession], settings: Settings, *, now: datetime) -> int:
    """One short unit of work per user, so one failing address does not hold back (or resend) the others."""
    async with maker() as session:
        users = await MessageRepository(session).digest_users(_cutoff(settings, now))
    sent = 0
    for user_id in users:
        try:
            async with maker() as session:
                sent += await digest_user(session, settings, user_id=user_id, now=now)
                await session.commit()
        except Exception:
            log.exception("message digest for user %s failed", user_id)
    return sent


@celery.task(name="messages.digest", acks_late=True)
def digest() -> int:
    """Mail the due unread-message digests; see :func:`digest_user`."""

    return run_with_sessionmaker(lambda maker, settings: run_digest(maker, settings, now=utcnow()))
