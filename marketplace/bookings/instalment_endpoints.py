"""The payment schedule's API (issue #18): the supplier marks a milestone of a booking reached, which invoices
it. A separate module because ``bookings/endpoints.py`` is at its size limit; mounted in ``marketplace.app``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from marketplace.auth.deps import CurrentPrincipal, OptionalIdempotencyDep
from marketplace.bookings import instalments
from marketplace.bookings.endpoints import _respond, deps
from marketplace.bookings.schemas import BookingOut
from marketplace.core.db import SessionDep
from marketplace.core.errors import error_responses

router = APIRouter(tags=["bookings"])


@router.post(
    "/bookings/{booking_id}/milestones/{n}/reached",
    response_model=BookingOut,
    responses=error_responses(401, 403, 404, 409),
    summary="Supplier marks a payment milestone reached: it is invoiced (on the timeline)",
    description="Milestones come from the accepted quote's `milestones` and are reached in order. Only the next "
    "milestone not yet invoiced of a confirmed or in-progress booking: anything else answers 409 "
    "`milestone_not_due`. The first instalment is invoiced on confirmation and the last on completion, by "
    "themselves.",
)
async def milestone_reached(
    booking_id: uuid.UUID,
    n: Annotated[int, Path(ge=1, le=6)],
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    idem: OptionalIdempotencyDep,
) -> BookingOut | JSONResponse:
    booking = await instalments.milestone_reached(
        session=session, principal=principal, booking_id=booking_id, n=n, deps=deps(request)
    )
    return await _respond(session, booking, role=instalments.role_of(principal, booking), idem=idem)
