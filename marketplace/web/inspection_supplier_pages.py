"""The factory's and the lab's side of make + verify (issue #17), on one page per booking
(``/factory/{org}/bookings/{booking}/inspection``): on a production booking the ordered quality documents
(upload, or have the platform issue the certificate of conformance) and the inspection's shipment; on a lab
booking the plan, the receipt of the samples and the report form (measurements in a grid or pasted as CSV:
the platform computes the verdict). Every action calls the same service as the API."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from listings.repository import ListingsPageQueries, ListingsRepository
from marketplace.bookings.models import Booking
from marketplace.bookings.repository import BookingRepository
from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError
from marketplace.core.principal import Principal
from marketplace.core.text import Line, Text
from marketplace.documents.endpoints import get_storage
from marketplace.inspection import plans, quality, reports
from marketplace.inspection.models import Inspection
from marketplace.inspection.report_schemas import ReportIn
from marketplace.inspection.repository import InspectionRepository
from marketplace.inspection.schemas import ShipmentIn
from marketplace.web import form_errors as web_form_errors
from marketplace.web import i18n, inspection_forms
from marketplace.web.core import CsrfChecked, FieldError, SignedIn, WebError, form_errors, locale_of, redirect, render
from marketplace.web.document_uploads import ACCEPT, store_scan
from marketplace.web.factory import supplier_org
from marketplace.web.form_errors_service import error_code, errors_from_url
from marketplace.web.inspection_views import section

router = APIRouter(prefix="/factory/{org_id}", include_in_schema=False)

KINDS = ("coc", "fai", "material_cert")
REPORT_FIELDS = {
    "tested_on": "tested_on",
    "test_standard": "test_standard",
    "instrument": "instrument",
    "operator": "operator",
    "signed_document_id": "signed_document",
    "signed_document": "signed_document",
    "units": "csv",
    "csv": "csv",
}


async def _own_booking(session: AsyncSession, user: Principal, *, org_id: uuid.UUID, booking_id: uuid.UUID) -> Booking:
    """A booking of this supplier organisation (a factory's production booking or a lab's booking)."""
    await supplier_org(session, user, org_id)
    booking = await BookingRepository(session).get(booking_id)
    if booking is None or booking.supplier_org_id != org_id:
        raise WebError(404, "not_found")
    return booking


async def _page(
    request: Request,
    session: AsyncSession,
    user: Principal,
    *,
    org_id: uuid.UUID,
    booking: Booking,
    errors: dict[str, str] | None = None,
    form: Any = None,
) -> HTMLResponse:
    locale = locale_of(request)
    org = await supplier_org(session, user, org_id)
    data = await section(session, booking, locale=locale)
    lab_inspection: Inspection | None = None
    if booking.kind == "lab_service":
        lab_inspection = await InspectionRepository(session).by_lab_booking(booking.id)
    lab_asset = await ListingsRepository(session).get_asset(booking.asset_id)
    titles = await ListingsPageQueries(session).titles([booking.asset_id])
    url_errors = errors_from_url(request.query_params, locale=locale, prefixes={"ship": "ship-", "coc": "coc-"})
    return render(
        request,
        "inspection_supplier.html",
        {
            "org": org,
            "b": booking,
            "title": titles.get(booking.asset_id, ""),
            **data,
            "lab_inspection": lab_inspection,
            "test_standard": (lab_asset.test_standard if lab_asset else None) or "",
            "grid_limit": inspection_forms.GRID_LIMIT,
            "kinds": KINDS,
            "accept": ACCEPT,
            "errors": {**url_errors, **(errors or {})},
            "form": form or {},
            "upload_kind": str((form or {}).get("kind") or ""),
        },
        status=422 if errors else 200,
        user=user,
    )


@router.get("/bookings/{booking_id}/inspection", response_class=HTMLResponse)
async def page(
    request: Request, org_id: uuid.UUID, booking_id: uuid.UUID, session: SessionDep, user: SignedIn
) -> HTMLResponse:
    booking = await _own_booking(session, user, org_id=org_id, booking_id=booking_id)
    return await _page(request, session, user, org_id=org_id, booking=booking)


def _back(org_id: uuid.UUID, booking_id: uuid.UUID, *, error: str | None = None, form: str = "") -> Response:
    base = f"/factory/{org_id}/bookings/{booking_id}/inspection"
    return redirect(f"{base}?error={error}&form={form}" if error else base)


# -- the factory: quality documents and shipment -------------------------------------------------------------


@router.post("/bookings/{booking_id}/inspection/quality/{kind}", response_class=HTMLResponse)
async def supply_document(
    request: Request, org_id: uuid.UUID, booking_id: uuid.UUID, kind: Line, session: SessionDep, user: SignedIn,
    _csrf: CsrfChecked,
) -> Response:  # fmt: skip
    """Upload an ordered quality document (PDF, JPEG or PNG) and attach it to the booking."""
    booking = await _own_booking(session, user, org_id=org_id, booking_id=booking_id)
    if kind not in KINDS:
        raise WebError(404, "not_found")
    form = await request.form()
    field = f"file-{kind}"
    try:
        doc = await store_scan(request, session, user, org_id=org_id, upload=form.get("file"), field=field)
        await quality.supply(session, principal=user, booking_id=booking_id, kind=kind, document_id=doc.id)
    except (FieldError, AppError, ValueError) as exc:
        await session.rollback()
        errors = form_errors(exc, locale=locale_of(request))
        errors = {field: next(iter(errors.values()))} if errors else {}
        booking = await _own_booking(session, user, org_id=org_id, booking_id=booking_id)
        return await _page(request, session, user, org_id=org_id, booking=booking, errors=errors, form=form)
    return _back(org_id, booking.id)


@router.post("/bookings/{booking_id}/inspection/coc", response_class=HTMLResponse)
async def issue_coc(
    request: Request,
    org_id: uuid.UUID,
    booking_id: uuid.UUID,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
    statement: Annotated[Text, Form()] = "",
) -> Response:
    """The platform generates the bilingual certificate of conformance with the factory's statement."""
    await _own_booking(session, user, org_id=org_id, booking_id=booking_id)
    if not statement.strip():
        return _back(org_id, booking_id, error="required.statement", form="coc")
    try:
        await quality.issue_coc(
            session, principal=user, booking_id=booking_id, statement=statement.strip(), storage=get_storage(request)
        )
    except (AppError, ValueError) as exc:
        await session.rollback()
        return _back(org_id, booking_id, error=error_code(exc), form="coc")
    return _back(org_id, booking_id)


@router.post("/inspections/{inspection_id}/shipment")
async def ship(
    org_id: uuid.UUID,
    inspection_id: uuid.UUID,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
    tracking_reference: Annotated[Line, Form()] = "",
    carrier: Annotated[Line, Form()] = "",
) -> Response:
    """The factory records that the sample lot left for the lab."""
    await supplier_org(session, user, org_id)
    row = await InspectionRepository(session).get(inspection_id)
    if row is None or row.supplier_org_id != org_id:
        raise WebError(404, "not_found")
    booking_id = row.production_booking_id
    try:
        body = ShipmentIn(tracking_reference=tracking_reference, carrier=carrier.strip() or None)
    except ValidationError:
        return _back(org_id, booking_id, error="required.tracking_reference", form="ship")
    try:
        await plans.ship(session, principal=user, inspection_id=inspection_id, body=body)
    except (AppError, ValueError) as exc:
        await session.rollback()
        return _back(org_id, booking_id, error=error_code(exc), form="ship")
    return _back(org_id, booking_id)


# -- the lab: receipt and report -------------------------------------------------------------------------------


@router.post("/inspections/{inspection_id}/receipt")
async def receive(
    org_id: uuid.UUID, inspection_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    await supplier_org(session, user, org_id)
    row = await InspectionRepository(session).get(inspection_id)
    if row is None or row.lab_org_id != org_id:
        raise WebError(404, "not_found")
    booking_id = row.lab_booking_id
    try:
        await plans.receive(session, principal=user, inspection_id=inspection_id)
    except (AppError, ValueError) as exc:
        await session.rollback()
        return _back(org_id, booking_id, error=error_code(exc), form="receive")
    return _back(org_id, booking_id)


@router.post("/bookings/{booking_id}/inspection/report", response_class=HTMLResponse)
async def report(
    request: Request, org_id: uuid.UUID, booking_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    """The lab's measurements → the platform's verdict (never typed by the lab)."""
    booking = await _own_booking(session, user, org_id=org_id, booking_id=booking_id)
    inspection = await InspectionRepository(session).by_lab_booking(booking_id)
    if inspection is None:
        raise WebError(404, "not_found")
    form = await request.form()
    locale = locale_of(request)
    gettext = i18n.translations(locale).gettext
    try:
        units, found = inspection_forms.report_units(
            form, characteristics=inspection.characteristics, sample_size=inspection.sample_size, locale=locale
        )
        payload: dict[str, Any] = {
            name: str(form.get(name) or "").strip() or None
            for name in ("tested_on", "test_standard", "instrument", "operator")
        }
        payload["units"] = units
        if payload["tested_on"] is not None:
            try:
                date.fromisoformat(payload["tested_on"])
            except ValueError:
                found["tested_on"] = gettext(web_form_errors.DATE)
        try:
            doc = await store_scan(request, session, user, org_id=org_id, upload=form.get("signed_document"),
                                   field="signed_document")  # fmt: skip
            payload["signed_document_id"] = str(doc.id)
        except FieldError as exc:
            found[exc.field] = exc.message
        data = web_form_errors.validated(ReportIn, payload, errors=found, locale=locale, aliases=REPORT_FIELDS)
        await reports.submit(
            session, principal=user, lab_booking_id=booking_id, body=data, deps=request.app.state.booking_deps
        )
    except (AppError, ValueError) as exc:
        await session.rollback()
        errors = web_form_errors.placed(form_errors(exc, locale=locale, aliases=REPORT_FIELDS), _report_fields(form))
        booking = await _own_booking(session, user, org_id=org_id, booking_id=booking_id)
        return await _page(request, session, user, org_id=org_id, booking=booking, errors=errors, form=form)
    return _back(org_id, booking_id)


def _report_fields(form: Any) -> set[str]:
    grid = {key for key in form if key.startswith(("m", "s")) and key[1:2].isdigit()}
    return set(REPORT_FIELDS.values()) | grid
