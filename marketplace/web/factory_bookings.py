"""Factory page of incoming bookings: accept, decline, start, complete, cancel, and release the machine
time a finished job no longer needs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from listings.models import AssetKind
from listings.repository import ListingsRepository
from marketplace.billing.invoice_repository import InvoiceListRepository
from marketplace.bookings import service as bookings
from marketplace.bookings.models import Booking
from marketplace.bookings.repository import BookingPageQueries
from marketplace.bookings.transitions import RELEASABLE
from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError
from marketplace.orgs.repository import OrgRepository
from marketplace.web import instalment_views
from marketplace.web.core import BookingAction, CsrfChecked, SignedIn, WebError, locale_of, redirect, render
from marketplace.web.factory import supplier_org
from marketplace.web.form_errors_service import error_code, message_from_code
from marketplace.web.inspection_page_repository import InspectionPageRepository
from marketplace.web.invoices_state import PAYMENT_STATE, labeller, payment_state

router = APIRouter(prefix="/factory/{org_id}", include_in_schema=False)


@router.get("/bookings", response_class=HTMLResponse)
async def incoming(request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn) -> HTMLResponse:
    org = await supplier_org(session, user, org_id)
    rows = await BookingPageQueries(session).of_supplier(org_id, 200)
    titles = {
        a.id: a.title for a in await ListingsRepository(session).assets_of_org(org_id, None, after=None, limit=1000)
    }
    buyers = await OrgRepository(session).names(b.buyer_org_id for b in rows)
    money_repo = InvoiceListRepository(session)
    invoices = await money_repo.of_bookings([b.id for b in rows])
    balances = await money_repo.balances(list(invoices))
    states = {bid: payment_state(inv, balances.get(bid, {})) for bid, inv in invoices.items()}
    return render(
        request,
        "factory/bookings.html",
        {
            "org": org,
            "rows": rows,
            "titles": titles,
            "buyers": buyers,
            "invoices": invoices,
            "payment_states": states,
            "payment_state": labeller(locale_of(request), PAYMENT_STATE),
            "error": message_from_code(request.query_params.get("error"), locale=locale_of(request)),
            "now": datetime.now(UTC),
            "starts_at": bookings.starts_at,
            "release_window": _release_window,
            # Bookings with ordered quality documents or an inspection (make + verify, #17): a link to their page.
            "inspection_pages": await InspectionPageRepository(session).with_pages([b.id for b in rows]),
            # Bookings paid in instalments (deposit, milestones): their schedules, with the milestone buttons.
            "schedules": await instalment_views.schedules(session, rows, locale=locale_of(request)),
        },
        user=user,
    )


def _release_window(b: Booking) -> tuple[datetime, datetime] | None:
    """The machine time a release would give back (from the completion, or the period's start if later, to
    the period's end), or None when there is nothing the supplier may release."""
    period = b.period
    if (
        b.kind != AssetKind.machine
        or b.status not in RELEASABLE
        or b.completed_at is None
        or period is None
        or period.isempty
        or period.upper <= b.completed_at
    ):
        return None
    return max(period.lower, b.completed_at), period.upper


@router.post("/bookings/{booking_id}/{action}")
async def booking_action(
    request: Request, act: BookingAction, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    await supplier_org(session, user, act.org_id)
    if act.action not in ("accept", "decline", "start", "complete", "cancel", "release"):
        raise WebError(404, "not_found")
    try:
        await act.perform(session, user)
    except AppError as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        return redirect(f"/factory/{act.org_id}/bookings?error={error_code(exc)}")  # a code: never free text
    return redirect(f"/factory/{act.org_id}/bookings")
