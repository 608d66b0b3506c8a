"""SME (buyer) pages: post a request, ranked matches with explanations, book, pay, and follow bookings
(timeline, cancel with the refund shown first, confirm, dispute, review)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from listings.models import AssetKind
from listings.repository import ListingsPageQueries, ListingsRepository
from marketplace.bookings import service as bookings
from marketplace.bookings.models import Booking
from marketplace.bookings.repository import BookingRepository
from marketplace.bookings.schemas import BookingCreate, ReviewIn
from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError
from marketplace.core.principal import Principal
from marketplace.orgs.models import Organisation
from marketplace.orgs.repository import OrgRepository
from marketplace.requests import service as requests_service
from marketplace.requests.repository import RequestRepository
from marketplace.requests.schemas import RequestCreate
from marketplace.web import i18n
from marketplace.web.core import (
    BookingAction,
    CsrfChecked,
    SignedIn,
    WebError,
    form_errors,
    locale_of,
    member_org,
    parse_money_input,
    redirect,
    render,
)
from marketplace.web.public import taxonomy_choices
from payments import invoices
from payments.errors import PaymentsError
from payments.repository import PaymentsRepository

router = APIRouter(include_in_schema=False)

CERTIFICATES = ("ISO 9001", "IATF 16949", "AS9100", "ISO 13485", "ISO 14001", "ISO/IEC 17025", "CMA")


async def _buyer_org(session: SessionDep, user: Principal, org_id: uuid.UUID) -> Organisation:
    return await member_org(session, user, org_id, role="buyer")


async def _buyer_orgs(session: SessionDep, user: Principal) -> list[Organisation]:
    """The signed-in person's buyer organisations (one query), to book for."""
    return [o for o in await OrgRepository(session).by_ids(user.org_ids) if "buyer" in o.roles]


def _deps(request: Request) -> bookings.Deps:
    deps: bookings.Deps = request.app.state.booking_deps
    return deps


@router.get("/buyer/{org_id}", response_class=HTMLResponse)
async def home(request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn) -> HTMLResponse:
    org = await _buyer_org(session, user, org_id)
    reqs = await RequestRepository(session).page([org_id], status=None, after=None, limit=50)
    rows = await BookingRepository(session).list_for_org([org_id], role="buyer", status=None, after=None, limit=100)
    titles = await ListingsPageQueries(session).titles([b.asset_id for b in rows])
    return render(request, "buyer/home.html", {"org": org, "requests": reqs, "rows": rows, "titles": titles}, user=user)


# -- requests and matches --------------------------------------------------------------------------


@router.get("/buyer/{org_id}/requests/new", response_class=HTMLResponse)
async def new_request(request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn) -> HTMLResponse:
    org = await _buyer_org(session, user, org_id)
    return _request_form(request, user, org)


def _request_form(
    request: Request, user: Principal, org: Organisation, *, form: Any = None, errors: dict[str, str] | None = None
) -> HTMLResponse:
    """The request form, empty or as posted with its errors (422)."""
    ctx = {"org": org, "form": form or {}, "errors": errors or {}, "certificates": CERTIFICATES}
    return render(
        request,
        "buyer/request_form.html",
        {**ctx, **taxonomy_choices(locale_of(request))},
        status=200 if errors is None else 422,
        user=user,
    )


def _request_payload(form: Any, org_id: uuid.UUID, *, tz_name: str, locale: str = "en") -> dict[str, Any]:
    def num(name: str) -> float | None:
        raw = str(form.get(name) or "").strip()
        return float(raw) if raw else None

    tz = i18n.zone(tz_name, "Asia/Shanghai")
    kind = "lab_service" if str(form.get("process_code", "")).startswith("testing.") else "machine"
    start_day, end_day = str(form.get("earliest") or ""), str(form.get("deadline") or "")

    def local_midnight(day: str) -> str | None:
        return datetime.combine(date.fromisoformat(day), time(0), tz).isoformat() if day else None

    payload: dict[str, Any] = {
        "kind": kind,
        "process_code": form.get("process_code") or "",
        "material": form.get("material") or None,
        "quantity": int(num("quantity") or 1),
        "currency": (form.get("currency") or "CNY").upper(),
        "required_certificates": list(form.getlist("certificates")),
        "buyer_org_id": str(org_id),
        "earliest_start": datetime.combine(date.fromisoformat(start_day), time(0), tz).isoformat()
        if start_day
        else None,
        "deadline": datetime.combine(date.fromisoformat(end_day), time(0), tz).isoformat() if end_day else None,
        "region_prefixes": [r.strip() for r in str(form.get("region") or "").split(",") if r.strip()],
        # Negotiation settings: open to every matching factory or invited ones only, cascade, NDA.
        "audience": "invited" if form.get("audience") == "invited" else "open",
        "auto_cascade": bool(form.get("auto_cascade")),
        "nda_required": bool(form.get("nda_required")),
    }
    budget = parse_money_input(form.get("budget"), payload["currency"], field="budget", locale=locale)
    if budget is not None:
        payload["budget_max"] = budget
    if kind == "machine":
        hours = num("hours")
        payload["duration_minutes"] = round(hours * 60) if hours else None
        dims = [num("part_x"), num("part_y"), num("part_z")]
        if all(d for d in dims):
            payload["part_envelope_mm"] = {"x": dims[0], "y": dims[1], "z": dims[2]}
        if num("tolerance_mm"):
            payload["tolerance_mm"] = num("tolerance_mm")
    else:
        payload["samples"] = int(num("samples") or 0) or None
    lat, lon = num("latitude"), num("longitude")
    if lat is not None and lon is not None:
        payload["location"] = {"latitude": lat, "longitude": lon}
        if num("max_distance_km"):
            payload["max_distance_km"] = num("max_distance_km")
    return payload


@router.post("/buyer/{org_id}/requests/new", response_class=HTMLResponse)
async def create_request(
    request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    org = await _buyer_org(session, user, org_id)
    form = await request.form()
    try:
        payload = _request_payload(form, org_id, tz_name=request.cookies.get("tz") or "", locale=locale_of(request))
        data = RequestCreate.model_validate(payload)
        created = await requests_service.create(session, user, data)
    except (ValidationError, AppError, ValueError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        org = await _buyer_org(session, user, org_id)  # reloaded: the rollback expired it
        return _request_form(request, user, org, form=form, errors=form_errors(exc))
    return redirect(f"/buyer/{org_id}/requests/{created.id}")


@router.get("/buyer/{org_id}/requests/{request_id}", response_class=HTMLResponse)
async def matches(
    request: Request, org_id: uuid.UUID, request_id: uuid.UUID, session: SessionDep, user: SignedIn
) -> HTMLResponse:
    org = await _buyer_org(session, user, org_id)
    try:
        row = await requests_service.get(session, user, request_id)
    except AppError:
        raise WebError(404, "not_found") from None
    result = (
        await requests_service.matches_for(session, user, request_id, limit=10, explain_rejections=True)
        if row.status == "open"
        else None
    )
    titles = await ListingsPageQueries(session).titles([m.asset_id for m in result.items]) if result else {}
    return render(
        request,
        "buyer/matches.html",
        {"org": org, "req": row, "result": result, "titles": titles, "error": request.query_params.get("error")},
        user=user,
    )


# -- booking ---------------------------------------------------------------------------------------


@router.get("/book/{asset_id}", response_class=HTMLResponse)
async def book_page(request: Request, asset_id: uuid.UUID, session: SessionDep, user: SignedIn) -> HTMLResponse:
    asset = await ListingsRepository(session).get_asset(asset_id)
    if asset is None or asset.status != "published":
        raise WebError(404, "not_found")
    site = await ListingsRepository(session).get_site(asset.site_id)
    buyers = await _buyer_orgs(session, user)
    return render(
        request,
        "buyer/book.html",
        {"asset": asset, "site": site, "buyers": buyers, "errors": {}, "form": {}},
        user=user,
    )


@router.post("/book/{asset_id}", response_class=HTMLResponse)
async def book(
    request: Request, asset_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    form = await request.form()
    asset = await ListingsRepository(session).get_asset(asset_id)
    if asset is None:
        raise WebError(404, "not_found")
    site = await ListingsRepository(session).get_site(asset.site_id)
    if site is None:
        raise WebError(404, "not_found")
    tz = i18n.zone(site.timezone)
    try:
        payload: dict[str, Any] = {
            "asset_id": str(asset_id),
            "buyer_org_id": form.get("buyer_org_id") or None,
            "request_id": form.get("request_id") or None,
        }
        if asset.kind == AssetKind.machine:
            if form.get("start_utc") and form.get("end_utc"):  # a slot chosen on the matches page
                payload["start"], payload["end"] = form.get("start_utc"), form.get("end_utc")
            else:  # typed in the site's local time
                start = datetime.fromisoformat(str(form.get("start"))).replace(tzinfo=tz)
                hours = float(str(form.get("hours") or "0"))
                payload["start"], payload["end"] = start.isoformat(), (start + timedelta(hours=hours)).isoformat()
        else:
            payload["drop_off_date"] = form.get("drop_off_date")
            payload["samples"] = form.get("samples")
        data = BookingCreate.model_validate(payload)
        booking = await bookings.create(session=session, principal=user, data=data, deps=_deps(request))
    except (ValidationError, AppError, PaymentsError, ValueError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        errors = form_errors(exc)
        if form.get("from_matches"):
            return redirect(
                f"/buyer/{form.get('buyer_org_id')}/requests/{form.get('request_id')}"
                f"?error={quote(next(iter(errors.values())))}"
            )
        asset = await ListingsRepository(session).get_asset(asset_id)  # reloaded: the rollback expired them
        if asset is None:
            raise WebError(404, "not_found") from None
        site = await ListingsRepository(session).get_site(asset.site_id)
        buyers = await _buyer_orgs(session, user)
        return render(
            request,
            "buyer/book.html",
            {"asset": asset, "site": site, "buyers": buyers, "errors": errors, "form": form},
            status=422,
            user=user,
        )
    return redirect(f"/buyer/{booking.buyer_org_id}/bookings/{booking.id}")


@router.get("/buyer/{org_id}/bookings/{booking_id}", response_class=HTMLResponse)
async def booking_page(
    request: Request, org_id: uuid.UUID, booking_id: uuid.UUID, session: SessionDep, user: SignedIn
) -> HTMLResponse:
    org = await _buyer_org(session, user, org_id)
    try:
        booking, _role = await bookings.get_for(session=session, principal=user, booking_id=booking_id)
    except AppError:
        raise WebError(404, "not_found") from None
    if booking.buyer_org_id != org_id:
        raise WebError(404, "not_found")
    events = await BookingRepository(session).events(booking.id)
    asset = await ListingsRepository(session).get_asset(booking.asset_id)
    invoice = await PaymentsRepository(session).invoice_for_booking(booking.id)
    if booking.payment_method == "stripe":
        from payments import stripe_gateway

        view = await stripe_gateway.view(session, booking.id, amount=booking.amount, currency=booking.currency)
    else:
        view = await invoices.view(session, booking.id, amount=booking.amount, currency=booking.currency)
    return render(
        request,
        "buyer/booking.html",
        {
            "org": org,
            "b": booking,
            "events": events,
            "asset": asset,
            "invoice": invoice,
            "payment": view,
            "refund_now": bookings.refund_if_cancelled_now(booking, "buyer"),
            "error": request.query_params.get("error"),
            "now": datetime.now(UTC),
            "stripe_key": request.app.state.settings.stripe_publishable_key,
        },
        user=user,
    )


@router.post("/buyer/{org_id}/bookings/{booking_id}/{action}")
async def booking_action(act: BookingAction, session: SessionDep, user: SignedIn, _csrf: CsrfChecked) -> Response:
    await _buyer_org(session, user, act.org_id)
    page = f"/buyer/{act.org_id}/bookings/{act.booking_id}"
    try:
        if act.action == "review":
            data = ReviewIn(rating=int(act.field("rating") or 0), comment=act.field("comment") or "")
            await bookings.review(session=session, principal=user, booking_id=act.booking_id, data=data)
        elif act.action in ("pay", "cancel", "confirm", "dispute"):
            await act.perform(session, user)
        else:
            raise WebError(404, "not_found")
    except (AppError, PaymentsError, ValidationError, ValueError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        message = next(iter(form_errors(exc).values()))
        return redirect(f"{page}?error={quote(message)}")
    return redirect(page)


@router.get("/buyer/{org_id}/invoices/{invoice_id}", response_class=HTMLResponse)
async def invoice_page(org_id: uuid.UUID, invoice_id: uuid.UUID, session: SessionDep, user: SignedIn) -> HTMLResponse:
    await _buyer_org(session, user, org_id)
    invoice = await PaymentsRepository(session).invoice(invoice_id)
    if invoice is None or invoice.buyer_org_id != org_id:
        raise WebError(404, "not_found")
    return HTMLResponse(invoices.render_html(await invoices.invoice_document(session, invoice)))


async def booking_rows(session: SessionDep, org_id: uuid.UUID) -> list[Booking]:
    return await BookingRepository(session).list_for_org([org_id], role="buyer", status=None, after=None, limit=100)
