"""A booking's payment schedule (issue #18): a deposit on confirmation and the balance on completion, or the
accepted quote's milestones. Snapshotted at placement (invoice gateway only: a card authorisation holds the
whole amount); each instalment is invoiced when it falls due. NULL ``instalments``: one invoice when booked.

The supplier marks a middle milestone reached (``milestone_reached``): it is invoiced and the timeline says so
(action ``milestone``, the status unchanged)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.bookings import policy
from marketplace.bookings.models import Booking, BookingStatus
from marketplace.bookings.repository import BookingRepository
from marketplace.bookings.rules import Deps, cancel_refund, get_for, invoiced_amount, money, now, record, role_of
from marketplace.core.errors import Conflict, Forbidden
from marketplace.core.principal import Principal

__all__ = [
    "MilestoneNotDue",
    "cancel_refund",
    "due_milestones",
    "invoiced_amount",
    "milestone_reached",
    "role_of",
    "schedule",
]

CONFIRMATION, MILESTONE, COMPLETION = "confirmation", "milestone", "completion"


class MilestoneNotDue(Conflict):
    """That instalment is not a milestone waiting to be invoiced (or the booking is not under way)."""

    code = "milestone_not_due"


def schedule(
    amount: int, *, deposit_percent: int | None, milestones: Sequence[dict[str, Any]] | None
) -> list[dict[str, Any]] | None:
    """The schedule of a booking of ``amount``: the quote's milestones if any, else the listing's deposit, else
    None. Every amount but the last is round half up of amount x percent / 100; the last is the rest."""
    if milestones:
        parts = [(str(m["label"]), int(m["percent"])) for m in milestones]
    elif deposit_percent:
        parts = [("deposit", deposit_percent), ("balance", 100 - deposit_percent)]
    else:
        return None
    items: list[dict[str, Any]] = []
    for n, (label, percent) in enumerate(parts, start=1):
        last = n == len(parts)
        share = amount - sum(i["amount"] for i in items) if last else policy.round_half_up_div(amount * percent, 100)
        due = CONFIRMATION if n == 1 else COMPLETION if last else MILESTONE
        items.append({"n": n, "label": label, "percent": percent, "amount": share, "due": due, "invoiced": False})
    return items


async def invoice_due(session: AsyncSession, booking: Booking, *, deps: Deps, due: Sequence[str]) -> None:
    """Invoice every instalment not yet invoiced whose ``due`` is in ``due`` (``accept``: confirmation;
    ``complete``: milestone and completion)."""
    if not booking.instalments:
        return
    items = [dict(i) for i in booking.instalments]
    m = money(booking)
    for item in items:
        if not item["invoiced"] and item["due"] in due:
            await deps.payments.on_instalment_due(session, m, n=int(item["n"]))
            item["invoiced"] = True
    booking.instalments = items  # a new list: JSONB changes are seen by assignment only


def due_milestones(booking: Booking) -> list[dict[str, Any]]:
    """The milestones the supplier may mark reached now (in order: only the first not yet invoiced)."""
    if booking.status not in (BookingStatus.confirmed, BookingStatus.in_progress):
        return []
    pending = [i for i in booking.instalments or () if not i["invoiced"]]
    return pending[:1] if pending and pending[0]["due"] == MILESTONE else []


async def milestone_reached(
    *, session: AsyncSession, principal: Principal, booking_id: uuid.UUID, n: int, deps: Deps
) -> Booking:
    """The supplier (or an admin) marks milestone ``n`` reached: it is invoiced, on the timeline. Milestones are
    reached in order; anything else (no such milestone, invoiced already, a deposit or balance, a booking not
    confirmed or in progress) answers 409 ``milestone_not_due``. The buyer: 403; a stranger: 404."""
    booking, role = await get_for(session=session, principal=principal, booking_id=booking_id, for_update=True)
    if role == "buyer":
        raise Forbidden("Only the supplier marks a milestone reached.")
    if role == "supplier" and not principal.has_scope("bookings:write"):
        raise Forbidden("This API key lacks the 'bookings:write' scope.")
    principal.require_verified_email()
    due = due_milestones(booking)
    if not due or int(due[0]["n"]) != n:
        raise MilestoneNotDue(
            f"Instalment {n} is not a milestone that can be invoiced now.",
            extra={"current_status": booking.status, "due": [int(i["n"]) for i in due]},
        )
    label = str(due[0]["label"])
    items = [dict(i) for i in booking.instalments or ()]
    await deps.payments.on_instalment_due(session, money(booking), n=n)
    for item in items:
        if int(item["n"]) == n:
            item["invoiced"] = True
    booking.instalments = items
    booking.updated_at = now()
    await session.flush()
    await record(
        BookingRepository(session),
        booking_id=booking.id,
        before=booking.status,
        after=booking.status,
        action="milestone",
        actor_kind=role,
        actor_user_id=principal.user_id,
        reason=label,
    )
    return booking
