"""Routes of the inspection room (issue #17): the buyer's inspection plan and its lab booking, the factory's
shipment, the lab's receipt and the buyer's extension of the due date. See docs/verification.md."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

import marketplace.inspection.gate  # noqa: F401  (registers the booking hooks wherever the API runs)
from marketplace.auth.deps import CurrentPrincipal, OptionalIdempotencyDep
from marketplace.bookings import service as bookings
from marketplace.core.db import SessionDep
from marketplace.core.errors import error_responses
from marketplace.inspection import plans
from marketplace.inspection.schemas import ExtendIn, InspectionCreate, InspectionOut, ShipmentIn

router = APIRouter(tags=["inspection"])


def _deps(request: Request) -> bookings.Deps:
    built: bookings.Deps = request.app.state.booking_deps
    return built


@router.post(
    "/bookings/{booking_id}/inspection",
    status_code=status.HTTP_201_CREATED,
    response_model=InspectionOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Plan an independent inspection of a produced lot and book its lab (the buyer; Idempotency-Key optional)",
)
async def plan_inspection(
    booking_id: uuid.UUID,
    body: InspectionCreate,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    idem: OptionalIdempotencyDep,
) -> InspectionOut | JSONResponse:
    inspection = await plans.create_plan(
        session, principal=principal, booking_id=booking_id, body=body, deps=_deps(request)
    )
    out = await plans.describe(session, inspection)
    if idem is not None:
        return await idem.respond(out, 201)
    return out


@router.get(
    "/bookings/{booking_id}/inspection",
    response_model=InspectionOut,
    responses=error_responses(401, 403, 404, 422),
    summary="The inspection of a lab booking, or the latest inspection of a production booking",
)
async def booking_inspection(booking_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> InspectionOut:
    inspection = await plans.of_booking(session, principal=principal, booking_id=booking_id)
    return await plans.describe(session, inspection)


@router.get(
    "/inspections/{inspection_id}",
    response_model=InspectionOut,
    responses=error_responses(401, 403, 404, 422),
    summary="An inspection (buyer, factory, lab or admin)",
)
async def get_inspection(inspection_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> InspectionOut:
    inspection = await plans.get_visible(session, principal=principal, inspection_id=inspection_id)
    return await plans.describe(session, inspection)


@router.post(
    "/inspections/{inspection_id}/shipment",
    response_model=InspectionOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Record the sample lot's shipment to the lab (the factory)",
)
async def ship_samples(
    inspection_id: uuid.UUID, body: ShipmentIn, session: SessionDep, principal: CurrentPrincipal
) -> InspectionOut:
    inspection = await plans.ship(session, principal=principal, inspection_id=inspection_id, body=body)
    return await plans.describe(session, inspection)


@router.post(
    "/inspections/{inspection_id}/receipt",
    response_model=InspectionOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Record receipt of the shipped samples (the lab)",
)
async def receive_samples(inspection_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> InspectionOut:
    inspection = await plans.receive(session, principal=principal, inspection_id=inspection_id)
    return await plans.describe(session, inspection)


@router.post(
    "/inspections/{inspection_id}/extend",
    response_model=InspectionOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Move the results' due date later (the buyer, while the inspection is open)",
)
async def extend_due_date(
    inspection_id: uuid.UUID, body: ExtendIn, session: SessionDep, principal: CurrentPrincipal
) -> InspectionOut:
    inspection = await plans.extend(session, principal=principal, inspection_id=inspection_id, due_date=body.due_date)
    return await plans.describe(session, inspection)
