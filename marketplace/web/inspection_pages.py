"""Web pages of make + verify (issue #17): the buyer's side (order an independent inspection of a produced lot,
follow it, extend its due date) and the admin's (the inspection behind a dispute, the rework remedy). The
factory's and the lab's side are in ``inspection_supplier_pages``. Every action calls the same service as the
API (``marketplace.inspection.plans``); a refusal comes back beside its field in the page's language."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from listings.repository import ListingsPageQueries, ListingsRepository
from marketplace.bookings import service as bookings
from marketplace.bookings.models import Booking
from marketplace.bookings.repository import BookingRepository
from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError
from marketplace.core.principal import Principal
from marketplace.core.text import Line, Text
from marketplace.inspection import plans
from marketplace.inspection.repository import InspectionRepository
from marketplace.inspection.schemas import InspectionCreate
from marketplace.web import form_errors as web_form_errors
from marketplace.web import i18n, inspection_forms, inspection_supplier_pages
from marketplace.web.admin_queues import require_admin
from marketplace.web.core import CsrfChecked, SignedIn, WebError, form_errors, locale_of, member_org, redirect, render
from marketplace.web.form_errors_service import error_code, message_from_code
from marketplace.web.inspection_page_repository import InspectionPageRepository
from marketplace.web.inspection_views import ORDERABLE, section
from payments.errors import PaymentsError

router = APIRouter(include_in_schema=False)
router.include_router(inspection_supplier_pages.router)

# -- buyer: order an inspection -------------------------------------------------------------------------------


async def _buyer_booking(
    session: AsyncSession, user: Principal, *, org_id: uuid.UUID, booking_id: uuid.UUID
) -> Booking:
    await member_org(session, user, org_id, role="buyer")
    try:
        booking, _role = await bookings.get_for(session=session, principal=user, booking_id=booking_id)
    except AppError:
        raise WebError(404, "not_found") from None
    if booking.buyer_org_id != org_id or booking.kind != "machine":
        raise WebError(404, "not_found")
    return booking


async def _order_form(
    request: Request,
    session: AsyncSession,
    user: Principal,
    *,
    org_id: uuid.UUID,
    booking: Booking,
    form: Any = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    labs = await InspectionPageRepository(session).lab_choices()
    asset = await ListingsRepository(session).get_asset(booking.asset_id)
    form = form or {}
    chosen = str(form.get("lab_asset_id") or request.query_params.get("lab") or "")
    return render(
        request,
        "inspection_order.html",
        {
            "org_id": org_id,
            "b": booking,
            "asset": asset,
            "labs": labs,
            "chosen_lab": chosen,
            "form": form,
            "rows": inspection_forms.row_count(form),
            "levels": inspection_forms.LEVELS,
            "aqls": inspection_forms.AQLS,
            "default_aql": inspection_forms.DEFAULT_AQL,
            "units": inspection_forms.UNITS,
            "errors": errors or {},
            "orderable": booking.status in ORDERABLE,
        },
        status=422 if errors else 200,
        user=user,
    )


@router.get("/buyer/{org_id}/bookings/{booking_id}/inspection/new", response_class=HTMLResponse)
async def order_page(
    request: Request, org_id: uuid.UUID, booking_id: uuid.UUID, session: SessionDep, user: SignedIn
) -> HTMLResponse:
    booking = await _buyer_booking(session, user, org_id=org_id, booking_id=booking_id)
    return await _order_form(request, session, user, org_id=org_id, booking=booking)


@router.post("/buyer/{org_id}/bookings/{booking_id}/inspection/new", response_class=HTMLResponse)
async def order(
    request: Request, org_id: uuid.UUID, booking_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    booking = await _buyer_booking(session, user, org_id=org_id, booking_id=booking_id)
    form = await request.form()
    if form.get("add_row"):  # "add a row": the same form with one more row, nothing checked or saved
        return await _order_form(request, session, user, org_id=org_id, booking=booking, form=form)
    locale, rows = locale_of(request), inspection_forms.row_count(form)
    aliases = inspection_forms.order_aliases(rows)
    payload, found = inspection_forms.order_payload(form, locale=locale)
    try:
        try:
            data = InspectionCreate.model_validate(payload)
        except ValidationError as exc:
            schema = web_form_errors.validation_errors(exc, locale=locale, aliases=aliases)
            raise web_form_errors.FormInvalid(inspection_forms.remap_row_errors(schema, form, found=found)) from None
        if found:
            raise web_form_errors.FormInvalid(found)
        await plans.create_plan(
            session, principal=user, booking_id=booking_id, body=data, deps=request.app.state.booking_deps
        )
    except (AppError, PaymentsError, ValueError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work (the lab booking)
        errors = web_form_errors.placed(
            form_errors(exc, locale=locale, aliases=aliases), inspection_forms.order_fields(rows)
        )
        # Reloaded: the rollback expired it.
        booking = await _buyer_booking(session, user, org_id=org_id, booking_id=booking_id)
        return await _order_form(request, session, user, org_id=org_id, booking=booking, form=form, errors=errors)
    return redirect(f"/buyer/{org_id}/bookings/{booking_id}?notice=inspection_ordered#inspection")


@router.post("/buyer/{org_id}/bookings/{booking_id}/inspection/{inspection_id}/extend")
async def extend(
    org_id: uuid.UUID,
    booking_id: uuid.UUID,
    inspection_id: uuid.UUID,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
    due_date: Annotated[Line, Form()] = "",
) -> Response:
    await _buyer_booking(session, user, org_id=org_id, booking_id=booking_id)
    page = f"/buyer/{org_id}/bookings/{booking_id}"
    row = await InspectionRepository(session).get(inspection_id)
    if row is None or row.production_booking_id != booking_id:
        raise WebError(404, "not_found")
    try:
        day = date.fromisoformat(due_date.strip())
    except ValueError:
        return redirect(f"{page}?error=due_date_invalid&form=extend#inspection")
    try:
        await plans.extend(session, principal=user, inspection_id=inspection_id, due_date=day)
    except (AppError, ValueError) as exc:
        await session.rollback()
        return redirect(f"{page}?error={error_code(exc)}&form=extend#inspection")
    return redirect(f"{page}#inspection")


# -- admin: the inspection behind a dispute, and the rework remedy --------------------------------------------


async def _admin_page(
    request: Request,
    session: AsyncSession,
    user: Principal,
    *,
    booking_id: uuid.UUID,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    booking = await BookingRepository(session).get(booking_id)
    if booking is None:
        raise WebError(404, "not_found")
    locale = locale_of(request)
    notice = request.query_params.get("notice")
    titles = await ListingsPageQueries(session).titles([booking.asset_id])
    return render(
        request,
        "inspection_admin.html",
        {
            "b": booking,
            "title": titles.get(booking.asset_id, ""),
            **await section(session, booking, locale=locale),
            "error": error,
            "notice": i18n.translations(locale).gettext(REWORK_NOTICE) if notice == "rework" else None,
        },
        status=status,
        user=user,
    )


REWORK_NOTICE = inspection_forms.N_("The factory reworks the lot: the booking is in progress again.")
REWORK_REFUSED = inspection_forms.N_("The rework could not be ordered: the booking is no longer disputed.")


@router.get("/admin/bookings/{booking_id}/inspection", response_class=HTMLResponse)
async def admin_inspection(
    request: Request, booking_id: uuid.UUID, session: SessionDep, user: SignedIn
) -> HTMLResponse:
    require_admin(user)
    return await _admin_page(request, session, user, booking_id=booking_id)


@router.post("/admin/bookings/{booking_id}/rework", response_class=HTMLResponse)
async def rework(
    request: Request,
    booking_id: uuid.UUID,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
    note: Annotated[Text, Form()] = "",
) -> Response:
    """The admin's third remedy: the factory makes the lot again (the money stays held)."""
    require_admin(user)
    try:
        await bookings.act(
            session=session,
            principal=user,
            booking_id=booking_id,
            action="rework",
            deps=request.app.state.booking_deps,
            reason=note.strip() or None,
        )
    except (AppError, ValueError):
        await session.rollback()
        message = i18n.translations(locale_of(request)).gettext(REWORK_REFUSED)
        return await _admin_page(request, session, user, booking_id=booking_id, error=message, status=409)
    return redirect(f"/admin/bookings/{booking_id}/inspection?notice=rework")


def url_error(request: Request) -> str | None:
    return message_from_code(request.query_params.get("error"), locale=locale_of(request))
