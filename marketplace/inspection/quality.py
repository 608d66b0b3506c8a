"""Quality documents ordered with machine time (issue #17): a certificate of conformance, a first-article
inspection report, a material certificate (EN 10204 3.1), each at the listing's price when booked
(``listings.quality_documents``; the rows are written by ``marketplace.bookings.placement``).

The factory supplies each ordered document (one of its uploads, or the platform-generated CoC) while the booking
is confirmed, in progress, completed or disputed; the document is attached to the booking, so the buyer can
download it, and the buyer is told. A booking with an ordered document not supplied cannot be completed: the
guard registered here on ``marketplace.bookings.hooks`` answers 409 ``quality_documents_missing``.

Who may do what: the buyer, the supplier and a platform admin of the booking read its documents (anyone else:
404, as for the booking); only the supplier supplies (the buyer or an admin: 403), with an API key holding
``bookings:write``.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from listings.repository import ListingsRepository
from marketplace.bookings import hooks
from marketplace.bookings.models import Booking, BookingStatus
from marketplace.bookings.rules import field_error, get_for
from marketplace.core.errors import Conflict, Forbidden, NotFound
from marketplace.core.principal import Principal
from marketplace.core.sqltypes import utcnow
from marketplace.documents import service as documents
from marketplace.documents.storage import Storage
from marketplace.inspection import quality_notices
from marketplace.inspection.models import BookingQualityDocument
from marketplace.inspection.quality_repository import QualityRepository

# While the factory may supply documents: the work is agreed and not yet closed (a dispute may turn on them).
SUPPLY_STATUSES = frozenset(
    {BookingStatus.confirmed, BookingStatus.in_progress, BookingStatus.completed, BookingStatus.disputed}
)


class QualityDocumentsMissing(Conflict):
    """Supply the ordered quality documents before completing the booking."""

    code = "quality_documents_missing"

    def __init__(self, missing: list[str]) -> None:
        super().__init__(
            f"Supply the ordered quality documents before completing: {', '.join(missing)}.",
            extra={"missing": missing},
        )


class NotSupplyable(Conflict):
    """Quality documents are supplied while the booking is confirmed, in progress, completed or disputed."""

    code = "invalid_transition"


async def ordered(session: AsyncSession, booking_id: uuid.UUID) -> list[BookingQualityDocument]:
    """The quality documents ordered with a booking (none for a lab booking), oldest first."""
    return await QualityRepository(session).ordered(booking_id)


async def of_booking(
    session: AsyncSession, *, principal: Principal, booking_id: uuid.UUID
) -> tuple[Booking, list[BookingQualityDocument]]:
    """The booking's ordered documents for one of its parties or an admin (anyone else: 404)."""
    booking, _role = await get_for(session=session, principal=principal, booking_id=booking_id)
    return booking, await ordered(session, booking.id)


async def _supplier_row(
    session: AsyncSession, *, principal: Principal, booking_id: uuid.UUID, kind: str
) -> tuple[Booking, BookingQualityDocument]:
    """The booking (locked) and its ordered ``kind``, for the booking's supplier while it may supply."""
    booking, role = await get_for(session=session, principal=principal, booking_id=booking_id, for_update=True)
    if role != "supplier":
        raise Forbidden("Only the factory of this booking supplies its quality documents.")
    if not principal.has_scope("bookings:write"):
        raise Forbidden("This API key lacks the 'bookings:write' scope.")
    row = await QualityRepository(session).ordered_one(booking.id, kind)
    if row is None:
        raise NotFound(f"No {kind} was ordered with this booking.")
    if booking.status not in SUPPLY_STATUSES:
        raise NotSupplyable(
            f"Quality documents cannot be supplied while the booking is {booking.status}.",
            extra={"current_status": booking.status},
        )
    return booking, row


async def _supplied(
    session: AsyncSession,
    *,
    booking: Booking,
    row: BookingQualityDocument,
    document_id: uuid.UUID,
    user_id: uuid.UUID | None,
) -> BookingQualityDocument:
    """Record the document on the ordered row and tell the buyer."""
    row.document_id = document_id
    row.provided_at = utcnow()
    row.provided_by = user_id
    session.add(row)
    await session.flush()
    asset = await ListingsRepository(session).get_asset(booking.asset_id)
    when = f"{booking.start_at:%Y-%m-%d %H:%M} UTC" if booking.start_at else ""
    await quality_notices.document_supplied(
        session,
        buyer_org_id=booking.buyer_org_id,
        booking_id=booking.id,
        kind=row.kind,
        title=asset.title if asset is not None else "",
        when=when,
    )
    return row


async def supply(
    session: AsyncSession, *, principal: Principal, booking_id: uuid.UUID, kind: str, document_id: uuid.UUID
) -> BookingQualityDocument:
    """The factory supplies an ordered document: one of its own uploads (not deleted), attached to the booking
    so that the buyer can download it. Supplying again replaces the document."""
    booking, row = await _supplier_row(session, principal=principal, booking_id=booking_id, kind=kind)
    doc = await QualityRepository(session).document(document_id)
    if doc is None or doc.deleted_at is not None or doc.org_id != booking.supplier_org_id:
        raise field_error("document_id", "no such document of the factory's organisation (upload it to /documents)")
    await documents.attach(
        session, principal=principal, document_ids=[doc.id], target_kind="booking", target_id=booking.id
    )
    return await _supplied(session, booking=booking, row=row, document_id=doc.id, user_id=principal.user_id)


async def issue_coc(
    session: AsyncSession, *, principal: Principal, booking_id: uuid.UUID, statement: str | None, storage: Storage
) -> BookingQualityDocument:
    """The platform generates the ordered certificate of conformance (a bilingual PDF with its content hash and
    a QR code to the public verify page, ``marketplace.inspection.verifiable``) and supplies it."""
    from marketplace.inspection import verifiable  # the PDF toolchain loads only when a CoC is issued

    booking, row = await _supplier_row(session, principal=principal, booking_id=booking_id, kind="coc")
    doc = await verifiable.issue_coc(
        session, booking=booking, statement=statement, user_id=principal.user_id, storage=storage
    )
    return await _supplied(session, booking=booking, row=row, document_id=doc.id, user_id=principal.user_id)


async def documents_supplied(session: AsyncSession, booking: Booking) -> None:
    """Before ``complete``: every ordered document must be supplied (and not deleted since)."""
    if booking.kind != "machine":
        return
    missing = await QualityRepository(session).missing(booking.id)
    if missing:
        raise QualityDocumentsMissing(missing)


hooks.register_before_complete(documents_supplied)
