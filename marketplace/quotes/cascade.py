"""The cascade: a request with auto-cascade on is offered to its top-ranked match; when that factory declines
or lets the quote request lapse, the next-ranked listing of an organisation not yet asked is invited and the
buyer is told; when no match is left, the buyer is told once.

Every step runs under the request's row lock and the ``(request_id, supplier_org_id)`` unique constraint, so
a redelivered job (or the sweep racing the delayed lapse job) invites nobody twice."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.notifications.service import notify_org
from marketplace.quotes.invitation_models import QuoteInvitation
from marketplace.quotes.invitation_repository import InvitationRepository
from marketplace.quotes.invitations import create_invitation, process_names, ranked
from marketplace.requests.models import RequestStatus
from marketplace.requests.repository import RequestRepository


def _now() -> datetime:
    return datetime.now(UTC)


async def advance(session: AsyncSession, request_id: uuid.UUID) -> QuoteInvitation | None:
    """Invite the next-ranked factory of an open auto-cascade request when no invitation is pending and no
    invited factory quoted; returns the new invitation (``None``: nothing to do, or the matches are exhausted)."""
    request = await RequestRepository(session).get(request_id, for_update=True)
    now = _now()
    if request is None or request.status != RequestStatus.open or not request.auto_cascade or request.deadline <= now:
        return None
    repo = InvitationRepository(session)
    if await repo.holds_cascade(request.id, now):
        return None
    asked = await repo.org_ids(request.id)
    items = await ranked(session, request, now=now)
    for pos, match in enumerate(items):
        if match.org_id in asked:
            continue
        added = await create_invitation(session, request=request, match=match, rank=pos + 1, via="cascade")
        if added is None:  # pragma: no cover - the row lock serialises deliveries; the constraint is the backstop
            asked.add(match.org_id)
            continue
        if asked:
            data = {"request_id": str(request.id), "rank": pos + 1, **process_names(request.process_code)}
            await notify_org(session, request.buyer_org_id, kind="request.cascaded", data=data)
        return added
    if asked and await repo.mark_exhausted(request.id):
        data = {"request_id": str(request.id), **process_names(request.process_code)}
        await notify_org(session, request.buyer_org_id, kind="request.cascade_exhausted", data=data)
    return None


async def lapse_one(session: AsyncSession, invitation_id: uuid.UUID) -> bool:
    """The delayed job of one invitation: lapse it if it is still unanswered at its ``respond_by``, then
    cascade. Idempotent (an answered or already lapsed invitation is left alone)."""
    repo = InvitationRepository(session)
    await repo.withdraw_closed(_now())  # an invitation of a request that closed meanwhile is withdrawn, not lapsed
    request_id = await repo.lapse(invitation_id, _now())
    if request_id is None:
        return False
    await advance(session, request_id)
    return True


async def sweep(session: AsyncSession) -> int:
    """The beat job: withdraw invitations of closed requests, lapse overdue ones and cascade their requests,
    and restart any auto-cascade request left with nothing pending (a lost job). Returns the invitations made."""
    repo = InvitationRepository(session)
    now = _now()
    await repo.withdraw_closed(now)
    lapsed = await repo.lapse_due(now)
    stalled = await repo.stalled_cascades(now)
    made = 0
    for request_id in sorted(set(lapsed) | set(stalled)):
        if await advance(session, request_id) is not None:
            made += 1
    return made
