"""Deposits and milestones on the web (issue #18 item 4): a booking's payment schedule as its pages show it (each
instalment in words, its amount, when it is due, its invoice and that invoice's state), the milestone rows of the
quote and counter forms, and the factory's "Milestone reached — invoice it" button (the same service as the
API's ``POST /bookings/{id}/milestones/{n}/reached``)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.bookings import instalments
from marketplace.bookings.models import Booking
from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError
from marketplace.web import i18n
from marketplace.web.core import N_, CsrfChecked, SignedIn, WebError, redirect
from marketplace.web.factory import supplier_org
from marketplace.web.form_errors_service import error_code
from marketplace.web.instalment_page_repository import InstalmentPageRepository
from marketplace.web.invoice_lines import instalment_label
from marketplace.web.invoices_state import INVOICE_STATUS
from payments.errors import PaymentsError
from payments.models import Invoice

router = APIRouter(prefix="/factory/{org_id}", include_in_schema=False)

# When an instalment is invoiced.
DUE_LABELS = {
    "confirmation": N_("when the factory confirms the booking"),
    "milestone": N_("when the factory reports the milestone reached"),
    "completion": N_("when the work is completed"),
}
NOT_INVOICED = N_("not invoiced yet")
MAX_MILESTONES = 6


@dataclass(frozen=True)
class InstalmentRow:
    """One line of a booking's payment schedule, worded for the page."""

    n: int
    name: str
    percent: int
    amount: int
    due: str  # the code (data-due); ``when`` is the words
    when: str
    invoiced: bool
    invoice: Invoice | None
    state: str  # the invoice's state in words, or "not invoiced yet"
    reachable: bool  # a milestone the factory may report reached now


def schedule_rows(booking: Booking, invoices: Mapping[int, Invoice], *, locale: str) -> list[InstalmentRow] | None:
    """The booking's schedule (None for a booking paid in one invoice), with each instalment's invoice."""
    items = getattr(booking, "instalments", None)
    if not items:
        return None
    gettext = i18n.translations(locale).gettext
    open_work = booking.status in ("confirmed", "in_progress")
    rows: list[InstalmentRow] = []
    for item in items:
        n = int(item.get("n") or 0)
        invoice = invoices.get(n)
        due = str(item.get("due") or "")
        invoiced = bool(item.get("invoiced")) or invoice is not None
        state = gettext(INVOICE_STATUS.get(invoice.status, NOT_INVOICED)) if invoice else gettext(NOT_INVOICED)
        rows.append(
            InstalmentRow(
                n=n,
                name=instalment_label(item.get("label"), gettext),
                percent=int(item.get("percent") or 0),
                amount=int(item.get("amount") or 0),
                due=due,
                when=gettext(DUE_LABELS[due]) if due in DUE_LABELS else "–",
                invoiced=invoiced,
                invoice=invoice,
                state=state,
                reachable=open_work and due == "milestone" and not invoiced,
            )
        )
    return rows


async def booking_schedule(session: AsyncSession, booking: Booking, *, locale: str) -> list[InstalmentRow] | None:
    """One booking's schedule for its page (no query for a booking without one)."""
    if not getattr(booking, "instalments", None):
        return None
    invoices = await InstalmentPageRepository(session).instalment_invoices([booking.id])
    return schedule_rows(booking, invoices.get(booking.id, {}), locale=locale)


async def schedules(
    session: AsyncSession, bookings: list[Booking], *, locale: str
) -> dict[uuid.UUID, list[InstalmentRow]]:
    """The schedules of the scheduled bookings among ``bookings`` (one query), by booking id."""
    scheduled = [b for b in bookings if getattr(b, "instalments", None)]
    if not scheduled:
        return {}
    invoices = await InstalmentPageRepository(session).instalment_invoices([b.id for b in scheduled])
    out: dict[uuid.UUID, list[InstalmentRow]] = {}
    for b in scheduled:
        rows = schedule_rows(b, invoices.get(b.id, {}), locale=locale)
        if rows:
            out[b.id] = rows
    return out


# -- the milestone rows of the quote and counter forms ------------------------------------------------------


def milestone_fields() -> dict[str, str]:
    """Where the quote form shows each error of ``milestones`` (row ``i``: ``ms<i>_label``, ``ms<i>_percent``)."""
    fields = {"milestones": "milestones"}
    for i in range(MAX_MILESTONES):
        fields[f"milestones.{i}"] = f"ms{i}_label"
        fields[f"milestones.{i}.label"] = f"ms{i}_label"
        fields[f"milestones.{i}.percent"] = f"ms{i}_percent"
        fields[f"ms{i}_label"] = f"ms{i}_label"
        fields[f"ms{i}_percent"] = f"ms{i}_percent"
    return fields


def milestones_payload(form: Any) -> list[dict[str, Any]] | None:
    """The filled milestone rows of a form (empty rows skipped), None when there are none. A percent is passed
    on as typed: the schema says what is wrong with it, beside its field."""
    rows: list[dict[str, Any]] = []
    for i in range(MAX_MILESTONES):
        label = str(form.get(f"ms{i}_label") or "").strip()
        percent = str(form.get(f"ms{i}_percent") or "").strip().rstrip("%").strip()
        if label or percent:
            rows.append({"label": label, "percent": percent or None})
    return rows or None


def milestone_inputs(form: Any, current: Any = None) -> list[dict[str, str]]:
    """The six rows of a milestone form: as posted, else from ``current`` (a version's milestones), else empty."""
    rows: list[dict[str, str]] = []
    given = list(current or [])
    for i in range(MAX_MILESTONES):
        if form:
            rows.append(
                {"label": str(form.get(f"ms{i}_label") or ""), "percent": str(form.get(f"ms{i}_percent") or "")}
            )
        elif i < len(given):
            item = given[i] if isinstance(given[i], Mapping) else getattr(given[i], "__dict__", {})
            rows.append({"label": str(item.get("label") or ""), "percent": str(item.get("percent") or "")})
        else:
            rows.append({"label": "", "percent": ""})
    return rows


# -- the factory reports a milestone reached ----------------------------------------------------------------


@router.post("/bookings/{booking_id}/milestones/{n}/reached")
async def milestone_reached(
    request: Request,
    org_id: uuid.UUID,
    booking_id: uuid.UUID,
    n: int,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
) -> Response:
    await supplier_org(session, user, org_id)
    booking = await InstalmentPageRepository(session).booking(booking_id)
    if booking is None or booking.supplier_org_id != org_id:
        raise WebError(404, "not_found")
    try:
        await _reach(request, session, user, booking_id=booking_id, n=n)
    except (AppError, PaymentsError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        return redirect(f"/factory/{org_id}/bookings?error={error_code(exc)}#booking-{booking_id}")
    return redirect(f"/factory/{org_id}/bookings#booking-{booking_id}")


async def _reach(request: Request, session: AsyncSession, user: Any, *, booking_id: uuid.UUID, n: int) -> None:
    await instalments.milestone_reached(
        session=session, principal=user, booking_id=booking_id, n=n, deps=request.app.state.booking_deps
    )
