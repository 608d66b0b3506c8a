"""Reviews of a settled booking, and the public scorecard of an organisation."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.analytics.conformance import scorecard_fields
from marketplace.bookings.models import BookingStatus, Review
from marketplace.bookings.repository import BookingRepository
from marketplace.bookings.rules import get_for
from marketplace.bookings.schemas import ReviewIn
from marketplace.core.errors import Conflict, Forbidden
from marketplace.core.principal import Principal


async def review(*, session: AsyncSession, principal: Principal, booking_id: uuid.UUID, data: ReviewIn) -> Review:
    booking, role = await get_for(session=session, principal=principal, booking_id=booking_id)
    if role not in ("buyer", "supplier"):
        raise Forbidden("Only the buyer and the supplier review a booking.")
    if booking.status not in (BookingStatus.settled, BookingStatus.resolved):
        raise Conflict("Reviews open once the booking is settled.", extra={"current_status": booking.status})
    author, subject = (
        (booking.buyer_org_id, booking.supplier_org_id)
        if role == "buyer"
        else (booking.supplier_org_id, booking.buyer_org_id)
    )
    try:
        async with session.begin_nested():
            return await BookingRepository(session).add_review(
                Review(
                    booking_id=booking.id,
                    author_org_id=author,
                    subject_org_id=subject,
                    author_user_id=principal.user_id,
                    rating=data.rating,
                    comment=data.comment,
                )
            )
    except IntegrityError:
        raise Conflict("You already reviewed this booking.") from None


def supplier_scorecard(stats: dict[str, Any]) -> dict[str, Any]:
    completed, decided = stats["completed"], stats["decided"]
    return {
        "completed_bookings": completed,
        "on_time_rate": round(stats["on_time"] / completed, 4) if completed else None,
        "acceptance_rate": round(1 - stats["declined"] / decided, 4) if decided else None,
        "cancellation_rate": round(stats["cancelled_by_supplier"] / decided, 4) if decided else None,
        "average_rating": round(stats["rating_sum"] / stats["rating_count"], 2) if stats["rating_count"] else None,
        "ratings": stats["rating_count"],
    }


async def scorecard(*, session: AsyncSession, org_id: uuid.UUID) -> dict[str, Any]:
    repo = BookingRepository(session)
    supplier = (await repo.supplier_stats([org_id]))[org_id]
    buyer = await repo.buyer_stats(org_id)
    total = buyer["total"]
    count, avg = await repo.buyer_rating(org_id)
    return {
        "org_id": org_id,
        "as_supplier": {**supplier_scorecard(supplier), **await scorecard_fields(session, org_id)},
        "as_buyer": {
            "bookings": total,
            "cancellation_rate": round(buyer["cancelled_by_buyer"] / total, 4) if total else None,
            "payment_punctuality": round(buyer["paid"] / (buyer["paid"] + buyer["expired_unpaid"]), 4)
            if buyer["paid"] + buyer["expired_unpaid"]
            else None,
            "average_rating": round(float(avg), 2) if avg is not None else None,
            "ratings": int(count),
        },
    }
