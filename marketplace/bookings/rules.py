"""What every part of the booking rules shares: the errors, the collaborators (``Deps``), the booking as the
payments domain sees it, who the caller is to a booking, and the timeline record."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from listings import availability as av
from listings import service as listings
from listings.models import Asset
from marketplace.bookings import policy
from marketplace.bookings.models import Booking, BookingEvent, BookingStatus
from marketplace.bookings.repository import BookingRepository
from marketplace.bookings.transitions import target
from marketplace.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from marketplace.core.principal import Principal
from marketplace.core.settings import Settings
from payments.port import BookingMoney, BookingTerms, PaymentGateway


class SlotUnavailable(Conflict):
    """That time overlaps another booking of this machine."""

    code = "slot_unavailable"


class CapacityUnavailable(Conflict):
    """Not enough sample capacity left on that day."""

    code = "capacity_unavailable"


class TryAgain(Conflict):
    """The lab day is busy with other bookings right now; retry in a moment."""

    code = "try_again"


class OwnAsset(Forbidden):
    """An organisation cannot book its own asset."""

    code = "own_asset"


class NotBookable(Unprocessable):
    code = "not_bookable"


class NothingToRelease(Conflict):
    """No booked time is left after the completion time (already released, or completed at or after the end)."""

    code = "nothing_to_release"


class NotReleasable(Conflict):
    """A lab booking keeps its samples: lab capacity is daily intake."""

    code = "not_releasable"


def field_error(field: str, message: str) -> Unprocessable:
    """A 422 ``validation_error`` naming the field, in the shape of the request validation handler's."""
    return Unprocessable(f"{field}: {message}", extra={"fields": [{"field": field, "message": message}]})


@dataclass(frozen=True)
class Deps:
    """What the booking rules need from the rest of the shell."""

    settings: Settings
    payments: PaymentGateway
    listings_config: listings.ListingsConfig


def now() -> datetime:
    return datetime.now(UTC)


def money(b: Booking, asset: Asset | None = None) -> BookingMoney:
    """The booking as the payments domain sees it; with its ``asset`` at hand, also the terms an invoice
    describes (so the gateway need not read the booking back)."""
    terms = (
        BookingTerms(
            title=asset.title,
            kind=b.kind,
            unit_price=b.unit_price,
            setup_fee=b.setup_fee,
            start_at=b.start_at,
            end_at=b.end_at,
            samples=b.samples,
            drop_off_date=b.drop_off_date,
        )
        if asset is not None
        else None
    )
    return BookingMoney(
        booking_id=b.id,
        buyer_org_id=b.buyer_org_id,
        supplier_org_id=b.supplier_org_id,
        amount=b.amount,
        currency=b.currency,
        commission_rate_bp=b.commission_rate_bp,
        terms=terms,
        # Only a voucher paid in advance splits the bill; an after-use one is reimbursed to the buyer later.
        subsidy=b.voucher_share if b.voucher_payer_org_id is not None else 0,
        subsidy_payer_org_id=b.voucher_payer_org_id,
        instalments=tuple((int(i["n"]), str(i["label"]), int(i["amount"])) for i in b.instalments or ()),
    )


def invoiced_amount(booking: Booking) -> int:
    """What has been invoiced of the booking (all of it for an unscheduled one: invoiced when booked)."""
    if not booking.instalments:
        return booking.amount
    return sum(int(i["amount"]) for i in booking.instalments if i["invoiced"])


def cancel_refund(booking: Booking, percent: int) -> int:
    """The refund of a cancellation after ``pay`` at the policy band's ``percent``. With a payment schedule
    (issue #18) the band applies to what was invoiced (the deposit): what was never invoiced is not owed, so
    refunded in full, and the kept amount is the forfeited part of the deposit."""
    invoiced = invoiced_amount(booking)
    return booking.amount - invoiced + policy.refund_amount(invoiced, percent)


def starts_at(b: Booking) -> datetime:
    """When the work starts: the booked start, or the drop-off day's midnight in the site's zone."""
    if b.start_at is not None:
        return b.start_at
    if b.drop_off_date is None:  # ck_bookings_shape makes this impossible for a stored booking
        raise NotBookable("The booking has neither a start nor a drop-off day.")
    return datetime.combine(b.drop_off_date, time(0), ZoneInfo(b.site_timezone))


class BookingsBlockedTime:
    """Booked time as the listings domain sees it (free slots, search, next free slot)."""

    async def machine_blocked(
        self, session: AsyncSession, asset_ids: Any, *, start: datetime, end: datetime
    ) -> dict[uuid.UUID, list[av.Interval]]:
        return await BookingRepository(session).blocked_periods(list(asset_ids), start=start, end=end, now=now())

    async def lab_booked(
        self, session: AsyncSession, asset_ids: Sequence[uuid.UUID], *, start: date, end: date
    ) -> dict[uuid.UUID, dict[date, int]]:
        return await BookingRepository(session).lab_samples_by_day(asset_ids, first=start, last=end, now=now())


def role_of(principal: Principal, booking: Booking) -> str | None:
    if principal.can_act_for(booking.buyer_org_id):
        return "buyer"
    if principal.can_act_for(booking.supplier_org_id):
        return "supplier"
    if principal.is_platform_admin:
        return "admin"
    return None


async def get_for(
    *, session: AsyncSession, principal: Principal, booking_id: uuid.UUID, for_update: bool = False
) -> tuple[Booking, str]:
    """The booking and the caller's role in it; 404 when the caller has none (no existence leak)."""
    booking = await BookingRepository(session).get(booking_id, for_update=for_update)
    role = role_of(principal, booking) if booking else None
    if booking is None or role is None:
        raise NotFound("Booking not found.")
    if role in ("buyer", "supplier") and not principal.has_scope("bookings:read"):
        raise Forbidden("This API key lacks the 'bookings:read' scope.")
    return booking, role


def refund_if_cancelled_now(booking: Booking, role: str) -> int | None:
    """What cancelling now would refund (shown before the person confirms)."""
    try:
        target(booking.status, "cancel")
    except Conflict:
        return None
    if booking.status == BookingStatus.held:
        return 0
    percent = policy.refund_percent(booking.cancellation_policy, start=starts_at(booking), now=now(), by=role)
    return cancel_refund(booking, percent)


async def record(
    repo: BookingRepository,
    *,
    booking_id: uuid.UUID,
    before: str | None,
    after: str,
    action: str,
    actor_kind: str,
    actor_user_id: uuid.UUID | None,
    reason: str | None,
) -> BookingEvent:
    """Append one event to the booking's timeline."""
    event = BookingEvent(
        created_at=now(),  # given: a default factory costs a signature inspection per call
        booking_id=booking_id,
        from_status=before,
        to_status=after,
        action=action,
        actor_kind=actor_kind,
        actor_user_id=actor_user_id,
        reason=reason,
    )
    await repo.add_event(event)
    return event
