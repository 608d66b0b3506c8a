"""Routes of the lab's report (issue #17): the lab submits measured values, everybody concerned reads the
computed verdict. See docs/verification.md."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

import marketplace.inspection.gate  # noqa: F401  (registers the booking hooks wherever the API runs)
from marketplace.auth.deps import AdminPrincipal, CurrentPrincipal, OptionalIdempotencyDep
from marketplace.bookings import actions
from marketplace.bookings.endpoints import booking_out
from marketplace.bookings.repository import BookingRepository
from marketplace.bookings.rules import Deps
from marketplace.bookings.schemas import BookingOut
from marketplace.core.db import SessionDep
from marketplace.core.errors import error_responses
from marketplace.inspection import reports
from marketplace.inspection.report_schemas import ReportIn, ReportOut, ReworkIn

router = APIRouter(tags=["inspection"])


def _deps(request: Request) -> Deps:
    built: Deps = request.app.state.booking_deps
    return built


@router.post(
    "/bookings/{lab_booking_id}/report",
    status_code=status.HTTP_201_CREATED,
    response_model=ReportOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="The lab's report: measured values in, conformity and the lot's verdict computed",
    description="Only the lab of the inspection, once it recorded the samples' receipt (else 409 "
    "`inspection_not_received`; a second report: 409 `report_exists`). Exactly the plan's sample size of units, "
    "each characteristic of the plan measured once per unit, in its unit (length also in mm, µm or in). The lab "
    "booking is completed; an accepted lot settles the production booking, a rejected one opens a dispute on it, "
    "unless the buyer required accreditation and the lab's did not cover the test (then the buyer decides).",
)
async def submit_report(
    lab_booking_id: uuid.UUID,
    body: ReportIn,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    idem: OptionalIdempotencyDep,
) -> ReportOut | JSONResponse:
    report, inspection = await reports.submit(
        session, principal=principal, lab_booking_id=lab_booking_id, body=body, deps=_deps(request)
    )
    out = reports.report_out(report, inspection)
    if idem is not None:
        return await idem.respond(out, 201)
    return out


@router.get(
    "/bookings/{lab_booking_id}/report",
    response_model=ReportOut,
    responses=error_responses(401, 403, 404, 422),
    summary="The report of a lab booking's inspection (buyer, factory, lab or admin)",
)
async def booking_report(lab_booking_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> ReportOut:
    return await reports.read(session, principal=principal, lab_booking_id=lab_booking_id)


@router.get(
    "/inspections/{inspection_id}/report",
    response_model=ReportOut,
    responses=error_responses(401, 403, 404, 422),
    summary="The report of an inspection (buyer, factory, lab or admin)",
)
async def inspection_report(inspection_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> ReportOut:
    return await reports.read(session, principal=principal, inspection_id=inspection_id)


@router.post(
    "/admin/bookings/{booking_id}/rework",
    response_model=BookingOut,
    responses=error_responses(401, 403, 404, 409, 422),
    tags=["admin"],
    summary="Send a disputed lot back for rework: in progress again, the money stays held (audited)",
    description="The admin's third remedy for a disputed booking besides a full or partial refund "
    "(`/admin/bookings/{id}/resolve`): the factory makes the lot again and completes the booking again; the buyer "
    "may order a new inspection. Only from `disputed` (else 409 `invalid_transition`).",
)
async def rework(
    booking_id: uuid.UUID,
    data: ReworkIn,
    request: Request,
    session: SessionDep,
    admin: AdminPrincipal,
    idem: OptionalIdempotencyDep,
) -> BookingOut | JSONResponse:
    booking = await actions.act(
        session=session, principal=admin, booking_id=booking_id, action="rework", deps=_deps(request), reason=data.note
    )
    out = booking_out(booking, "admin", await BookingRepository(session).events(booking.id))
    if idem is not None:
        return await idem.respond(out)
    return out
