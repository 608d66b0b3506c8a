"""Inspection plans (issue #17): the buyer's plan for a produced lot, its lab booking, shipment, receipt and the
due date. See docs/verification.md and the state machine in ``models.py``.

Rules decided here:

* Only a member of the production booking's buyer organisation plans (scope ``bookings:write``), for a machine
  booking that is confirmed, in progress or completed; one open inspection per lot (409 ``inspection_open``).
* The lab must be a published lab service of another organisation than the factory (the factory's own lab is
  not independent: 422 ``lab_not_independent``) and than the buyer (a buyer cannot book its own listing).
* The lab booking is placed through the ordinary placement (``bookings.service.place``): an ordinary held
  booking of the buyer with ``samples`` = the plan's sample size, dropped off on the first day the lab accepts
  them on or after the production booking's end day (site time) plus ``transit_days``, trying up to
  ``DROP_OFF_SEARCH_DAYS`` days; it is paid and accepted like any booking.
* The factory records the shipment once the production booking is in progress or completed; the lab records
  receipt of a shipped lot; the buyer may move the due date later while the inspection is open.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from listings.models import Asset, AssetKind, AssetStatus
from marketplace.bookings import service as bookings
from marketplace.bookings.models import Booking, BookingStatus
from marketplace.bookings.repository import BookingRepository
from marketplace.bookings.rules import field_error
from marketplace.bookings.schemas import BookingCreate
from marketplace.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from marketplace.core.principal import Principal
from marketplace.inspection import notices, sampling
from marketplace.inspection.models import OPEN_STATUSES, Inspection, InspectionReport, InspectionStatus
from marketplace.inspection.plan_repository import PlanRepository
from marketplace.inspection.repository import InspectionRepository
from marketplace.inspection.schemas import (
    CharacteristicOut,
    InspectionCreate,
    InspectionOut,
    PlanOut,
    ShipmentIn,
)
from marketplace.notifications.service import notify_org

PLANNABLE = (BookingStatus.confirmed, BookingStatus.in_progress, BookingStatus.completed)
SHIPPABLE = (BookingStatus.in_progress, BookingStatus.completed)
DROP_OFF_SEARCH_DAYS = 31  # the first possible day and the 30 after it
MAX_EXTENSION_DAYS = 365

_TEMPLATES_LOADED = notices.INSPECTION_TEMPLATES  # importing notices registers the notification texts


class InspectionOpen(Conflict):
    """This lot already has an open inspection."""

    code = "inspection_open"


class LabNotIndependent(Unprocessable):
    """The lab belongs to the factory that made the lot: its verdict would not be independent."""

    code = "lab_not_independent"


class LabUnavailable(Conflict):
    """The lab has no day with room for the samples in the search window."""

    code = "lab_unavailable"


class InvalidInspectionState(Conflict):
    code = "invalid_inspection_state"

    def __init__(self, detail: str, *, current: str) -> None:
        super().__init__(detail, extra={"current_status": current})


def utc_now() -> datetime:
    return datetime.now(UTC)


def _today() -> date:
    return utc_now().date()


# ---------------------------------------------------------------------------------------------------------------
# Planning


async def create_plan(
    session: AsyncSession, *, principal: Principal, booking_id: uuid.UUID, body: InspectionCreate, deps: bookings.Deps
) -> Inspection:
    """Plan the inspection of a produced lot and place its lab booking, in the caller's transaction."""
    if not principal.has_scope("bookings:write"):
        raise Forbidden("This API key lacks the 'bookings:write' scope.")
    production, role = await bookings.get_for(
        session=session, principal=principal, booking_id=booking_id, for_update=True
    )
    if role != "buyer":
        raise Forbidden("Only the buyer of the booking plans its inspection.")
    if production.kind != AssetKind.machine:
        raise Unprocessable("Inspections are planned for machine (production) bookings, not lab bookings.")
    if production.status not in PLANNABLE:
        raise Conflict(
            f"An inspection can be planned while the booking is confirmed, in progress or completed, not "
            f"{production.status}.",
            extra={"current_status": production.status},
        )
    if await InspectionRepository(session).open_for_production(production.id) is not None:
        raise InspectionOpen("This lot already has an open inspection.")
    plan = sampling.single_sampling_plan(
        lot_size=body.lot_size, inspection_level=body.sampling.inspection_level, aql=str(body.sampling.aql)
    )
    lab = await _lab_asset(session, body.lab_asset_id, production)
    capacity = lab.daily_sample_capacity or 0
    if plan.sample_size > capacity:
        raise field_error(
            "lot_size",
            f"the plan inspects {plan.sample_size} parts but this lab takes at most {capacity} samples a day.",
        )
    lab_booking = await _place_lab_booking(
        session, principal=principal, production=production, lab=lab, samples=plan.sample_size, body=body, deps=deps
    )
    if lab_booking.payment_method == "invoice":
        # Ordering the inspection is the buyer's commitment to the lab's invoice: the request goes to the lab at
        # once instead of waiting as a hold that would expire in minutes. A card booking is paid by the card flow.
        lab_booking = await bookings.act(
            session=session, principal=principal, booking_id=lab_booking.id, action="pay", deps=deps
        )
    inspection = Inspection(
        production_booking_id=production.id,
        lab_booking_id=lab_booking.id,
        buyer_org_id=production.buyer_org_id,
        supplier_org_id=production.supplier_org_id,
        lab_org_id=lab.org_id,
        created_by=principal.user_id,
        characteristics=[c.stored() for c in body.characteristics],
        sampling_standard=body.sampling.standard,
        inspection_level=plan.inspection_level,
        aql=str(plan.aql),
        lot_size=plan.lot_size,
        code_letter=plan.code_letter,
        sample_size=plan.sample_size,
        accept_number=plan.accept,
        reject_number=plan.reject,
        require_accreditation=body.require_accreditation,
        transit_days=body.transit_days,
        status=InspectionStatus.planned,
        due_date=lab_booking.due_date or lab_booking.drop_off_date or _today(),
    )
    await PlanRepository(session).add(inspection)
    await notify(session, inspection, kind="inspection.planned", to=("factory",), lab_booking=lab_booking)
    return inspection


async def _lab_asset(session: AsyncSession, asset_id: uuid.UUID, production: Booking) -> Asset:
    asset = await session.get(Asset, asset_id)
    if asset is None or asset.kind != AssetKind.lab_service or asset.status != AssetStatus.published:
        raise field_error("lab_asset_id", "not a published lab service listing.")
    if asset.org_id == production.supplier_org_id:
        raise LabNotIndependent(
            "lab_asset_id: the lab belongs to the factory that made the lot; choose an independent lab.",
            extra={"fields": [{"field": "lab_asset_id", "message": "the factory's own lab is not independent"}]},
        )
    if asset.org_id == production.buyer_org_id:
        raise field_error("lab_asset_id", "this is your own organisation's lab; choose an independent lab.")
    return asset


def first_drop_off_day(production: Booking, transit_days: int, *, today: date) -> date:
    """The production booking's end day in its site's time zone plus the transit days, not before yesterday
    (UTC: no time zone's today is earlier), so that an old booking's plan starts at today's first open day."""
    end = production.end_at or utc_now()
    end_day = end.astimezone(ZoneInfo(production.site_timezone)).date()
    return max(end_day + timedelta(days=transit_days), today - timedelta(days=1))


async def _place_lab_booking(
    session: AsyncSession,
    *,
    principal: Principal,
    production: Booking,
    lab: Asset,
    samples: int,
    body: InspectionCreate,
    deps: bookings.Deps,
) -> Booking:
    """The lab booking, on the first day from ``first_drop_off_day`` that the lab is open and has room."""
    first = first_drop_off_day(production, body.transit_days, today=_today())
    last_error: Exception | None = None
    for offset in range(DROP_OFF_SEARCH_DAYS):
        day = first + timedelta(days=offset)
        data = BookingCreate(asset_id=lab.id, drop_off_date=day, samples=samples, buyer_org_id=production.buyer_org_id)
        try:
            placed, _events = await bookings.place(session=session, principal=principal, data=data, deps=deps)
        except (bookings.NotBookable, bookings.CapacityUnavailable) as exc:  # closed, past, full: the next day
            last_error = exc
            continue
        except NotFound:  # the lab's organisation is not verified (place hides the listing)
            raise field_error("lab_asset_id", "not a published lab service listing.") from None
        return placed
    raise LabUnavailable(
        f"The lab has no day with room for {samples} samples between {first} and "
        f"{first + timedelta(days=DROP_OFF_SEARCH_DAYS - 1)}.",
        extra={"reason": str(getattr(last_error, "detail", "") or "")},
    )


# ---------------------------------------------------------------------------------------------------------------
# Reading


def _role(principal: Principal, inspection: Inspection) -> str | None:
    if principal.can_act_for(inspection.buyer_org_id):
        return "buyer"
    if principal.can_act_for(inspection.supplier_org_id):
        return "factory"
    if principal.can_act_for(inspection.lab_org_id):
        return "lab"
    if principal.is_platform_admin:
        return "admin"
    return None


def _check_read(principal: Principal, inspection: Inspection | None) -> Inspection:
    role = _role(principal, inspection) if inspection is not None else None
    if inspection is None or role is None:
        raise NotFound("Inspection not found.")
    if role != "admin" and not principal.has_scope("bookings:read"):
        raise Forbidden("This API key lacks the 'bookings:read' scope.")
    return inspection


async def get_visible(session: AsyncSession, *, principal: Principal, inspection_id: uuid.UUID) -> Inspection:
    """The inspection, for a member of the buyer, the factory or the lab, or an admin; 404 for anyone else."""
    return _check_read(principal, await InspectionRepository(session).get(inspection_id))


async def of_booking(session: AsyncSession, *, principal: Principal, booking_id: uuid.UUID) -> Inspection:
    """The inspection of a lab booking, or the latest inspection of a production booking."""
    booking = await BookingRepository(session).get(booking_id)
    if booking is None:
        raise NotFound("Inspection not found.")
    repo = InspectionRepository(session)
    if booking.kind == AssetKind.lab_service:
        return _check_read(principal, await repo.by_lab_booking(booking.id))
    found = await repo.of_production(booking.id)
    return _check_read(principal, found[-1] if found else None)


async def describe(session: AsyncSession, inspection: Inspection) -> InspectionOut:
    """The API view, with the lab booking's listing and drop-off day and the report's id (if any)."""
    lab_booking = await BookingRepository(session).get(inspection.lab_booking_id)
    report = await InspectionRepository(session).report_of(inspection.id)
    return inspection_out(inspection, report=report, lab_booking=lab_booking)


def inspection_out(
    inspection: Inspection, *, report: InspectionReport | None = None, lab_booking: Booking | None = None
) -> InspectionOut:
    """The inspection as the API shows it (pure: the caller loads the report and the lab booking)."""
    return InspectionOut(
        id=inspection.id,
        production_booking_id=inspection.production_booking_id,
        lab_booking_id=inspection.lab_booking_id,
        lab_asset_id=lab_booking.asset_id if lab_booking is not None else None,
        buyer_org_id=inspection.buyer_org_id,
        supplier_org_id=inspection.supplier_org_id,
        lab_org_id=inspection.lab_org_id,
        status=inspection.status,
        plan=PlanOut(
            standard=inspection.sampling_standard,
            inspection_level=inspection.inspection_level,
            aql=inspection.aql,
            lot_size=inspection.lot_size,
            code_letter=inspection.code_letter,
            sample_size=inspection.sample_size,
            accept_number=inspection.accept_number,
            reject_number=inspection.reject_number,
        ),
        characteristics=[CharacteristicOut.model_validate(c) for c in inspection.characteristics],
        require_accreditation=inspection.require_accreditation,
        transit_days=inspection.transit_days,
        drop_off_date=lab_booking.drop_off_date if lab_booking is not None else None,
        due_date=inspection.due_date,
        overdue=inspection.status in OPEN_STATUSES and inspection.due_date < _today(),
        tracking_reference=inspection.tracking_reference,
        carrier=inspection.carrier,
        shipped_at=inspection.shipped_at,
        received_at=inspection.received_at,
        verdict=inspection.verdict,
        gates_payment=inspection.gates_payment,
        report_id=report.id if report is not None else None,
        created_at=inspection.created_at,
        updated_at=inspection.updated_at,
    )


# ---------------------------------------------------------------------------------------------------------------
# Shipment, receipt, due date


async def _for_party(
    session: AsyncSession, *, principal: Principal, inspection_id: uuid.UUID, party: str
) -> Inspection:
    """The inspection, locked, for a member of ``party``'s organisation acting with ``bookings:write``:
    404 for strangers, 403 for the other parties and admins."""
    inspection = _check_read(principal, await InspectionRepository(session).get(inspection_id, for_update=True))
    org_id = {"buyer": inspection.buyer_org_id, "factory": inspection.supplier_org_id, "lab": inspection.lab_org_id}[
        party
    ]
    if not principal.can_act_for(org_id):
        raise Forbidden(f"Only the {party} may do this.")
    if not principal.has_scope("bookings:write"):
        raise Forbidden("This API key lacks the 'bookings:write' scope.")
    return inspection


async def ship(
    session: AsyncSession, *, principal: Principal, inspection_id: uuid.UUID, body: ShipmentIn
) -> Inspection:
    """The factory records that the sample lot left for the lab (planned → shipped)."""
    inspection = await _for_party(session, principal=principal, inspection_id=inspection_id, party="factory")
    if inspection.status != InspectionStatus.planned:
        raise InvalidInspectionState(
            f"The samples can be shipped while the inspection is planned, not {inspection.status}.",
            current=inspection.status,
        )
    production = await BookingRepository(session).get(inspection.production_booking_id)
    if production is None or production.status not in SHIPPABLE:
        raise Conflict(
            "The samples are shipped once the production booking is in progress or completed.",
            extra={"current_status": production.status if production else None},
        )
    now = utc_now()
    inspection.status = InspectionStatus.shipped
    inspection.tracking_reference = body.tracking_reference
    inspection.carrier = body.carrier
    inspection.shipped_at = now
    inspection.updated_at = now
    await session.flush()
    await notify(session, inspection, kind="inspection.shipped", to=("lab", "buyer"))
    return inspection


async def receive(session: AsyncSession, *, principal: Principal, inspection_id: uuid.UUID) -> Inspection:
    """The lab records receipt of the shipped sample lot (shipped → received)."""
    inspection = await _for_party(session, principal=principal, inspection_id=inspection_id, party="lab")
    if inspection.status != InspectionStatus.shipped:
        raise InvalidInspectionState(
            f"Receipt can be recorded once the samples are shipped; the inspection is {inspection.status}.",
            current=inspection.status,
        )
    now = utc_now()
    inspection.status = InspectionStatus.received
    inspection.received_at = now
    inspection.updated_at = now
    await session.flush()
    await notify(session, inspection, kind="inspection.received", to=("buyer", "factory"))
    return inspection


async def extend(
    session: AsyncSession, *, principal: Principal, inspection_id: uuid.UUID, due_date: date
) -> Inspection:
    """The buyer moves the due date later while the inspection is open (the overdue notice may come again)."""
    inspection = await _for_party(session, principal=principal, inspection_id=inspection_id, party="buyer")
    if inspection.status not in OPEN_STATUSES:
        raise InvalidInspectionState(
            f"Only an open inspection's due date can be extended; this one is {inspection.status}.",
            current=inspection.status,
        )
    if due_date <= inspection.due_date:
        raise field_error("due_date", f"must be later than the current due date ({inspection.due_date}).")
    if due_date > inspection.due_date + timedelta(days=MAX_EXTENSION_DAYS):
        raise field_error("due_date", f"at most {MAX_EXTENSION_DAYS} days after the current due date.")
    inspection.due_date = due_date
    inspection.overdue_notified_at = None
    inspection.updated_at = utc_now()
    await session.flush()
    await notify(session, inspection, kind="inspection.extended", to=("lab", "factory"))
    return inspection


# ---------------------------------------------------------------------------------------------------------------
# Notices


async def notify(
    session: AsyncSession,
    inspection: Inspection,
    *,
    kind: str,
    to: tuple[str, ...],
    lab_booking: Booking | None = None,
) -> None:
    """Tell the named parties (buyer, factory, lab); each notice links the booking that party is part of."""
    if lab_booking is None:
        lab_booking = await BookingRepository(session).get(inspection.lab_booking_id)
    data: dict[str, Any] = {
        "inspection_id": str(inspection.id),
        "production_booking_id": str(inspection.production_booking_id),
        "lab_booking_id": str(inspection.lab_booking_id),
        "sample_size": inspection.sample_size,
        "drop_off_date": str(lab_booking.drop_off_date) if lab_booking and lab_booking.drop_off_date else "",
        "due_date": str(inspection.due_date),
        "tracking_reference": inspection.tracking_reference or "",
        "carrier": inspection.carrier or "",
    }
    orgs = {
        "buyer": (inspection.buyer_org_id, inspection.production_booking_id),
        "factory": (inspection.supplier_org_id, inspection.production_booking_id),
        "lab": (inspection.lab_org_id, inspection.lab_booking_id),
    }
    for party in to:
        org_id, booking_id = orgs[party]
        await notify_org(session, org_id, kind=kind, data={**data, "booking_id": str(booking_id)})
