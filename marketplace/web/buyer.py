"""SME (buyer) pages: post a request, ranked matches with explanations, book, pay, and follow bookings
(timeline, cancel with the refund shown first, confirm, dispute, review)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from listings.models import AssetKind
from listings.repository import ListingsPageQueries, ListingsRepository
from marketplace.billing.invoice_repository import BookingPageRepository
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
from marketplace.web import form_errors as web_form_errors
from marketplace.web import i18n, inspection_views, instalment_views, voucher_views
from marketplace.web.core import (
    BookingAction,
    CsrfChecked,
    FieldError,
    SignedIn,
    WebError,
    form_errors,
    locale_of,
    member_org,
    parse_money_input,
    parse_number,
    redirect,
    render,
    viewer_tz,
)
from marketplace.web.form_errors import FormInvalid, validated
from marketplace.web.form_errors_service import error_code, errors_from_url, message_from_code
from marketplace.web.invoices_state import BOOKING_NOTICES, PAYMENT_STATE, cancel_terms, labeller, payment_summary
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


# Where the request form shows each field of RequestCreate.
_REQUEST_FIELDS = {
    "process_code": "process_code",
    "kind": "process_code",
    "material": "material",
    "quantity": "quantity",
    "duration_minutes": "hours",
    "samples": "samples",
    "part_envelope_mm": "part_x",
    "tolerance_mm": "tolerance_mm",
    "required_certificates": "certificates",
    "earliest_start": "earliest",
    "deadline": "deadline",
    "location": "latitude",
    "location.latitude": "latitude",
    "location.longitude": "longitude",
    "max_distance_km": "max_distance_km",
    "region_prefixes": "region",
    "budget_max": "budget",
    "budget": "budget",
    "currency": "currency",
    "part_x": "part_x",
    "part_y": "part_y",
    "part_z": "part_z",
    "latitude": "latitude",
    "longitude": "longitude",
    "hours": "hours",
    "earliest": "earliest",
}


def _request_payload(
    form: Any, org_id: uuid.UUID, *, tz_name: str, locale: str = "en"
) -> tuple[dict[str, Any], dict[str, str]]:
    """The form → RequestCreate's shape, and the fields found malformed on the way (a number, date or amount,
    left out of the shape), in ``locale``. Empty optional fields are "not given", never an error."""
    errors: dict[str, str] = {}
    gettext = i18n.translations(locale).gettext

    def num(name: str, *, integer: bool = False) -> float | None:
        try:
            return parse_number(form.get(name), field=name, locale=locale, integer=integer)
        except FieldError as exc:
            errors.setdefault(exc.field, exc.message)
            return None

    tz = i18n.zone(tz_name, "Asia/Shanghai")
    kind = "lab_service" if str(form.get("process_code", "")).startswith("testing.") else "machine"

    def local_midnight(name: str) -> str | None:
        day = str(form.get(name) or "").strip()
        if not day:
            return None
        try:
            return datetime.combine(date.fromisoformat(day), time(0), tz).isoformat()
        except ValueError:
            errors.setdefault(name, gettext(web_form_errors.DATE))
            return None

    payload: dict[str, Any] = {
        "kind": kind,
        "process_code": form.get("process_code") or "",
        "material": form.get("material") or None,
        "quantity": int(num("quantity", integer=True) or 1),
        "currency": str(form.get("currency") or "CNY").strip().upper(),
        "required_certificates": list(form.getlist("certificates")),
        "buyer_org_id": str(org_id),
        "region_prefixes": [r.strip() for r in str(form.get("region") or "").split(",") if r.strip()],
        # Negotiation settings: open to every matching factory or invited ones only, cascade, NDA.
        "audience": "invited" if form.get("audience") == "invited" else "open",
        "auto_cascade": bool(form.get("auto_cascade")),
        "nda_required": bool(form.get("nda_required")),
    }
    for key, name in (("earliest_start", "earliest"), ("deadline", "deadline")):
        if (value := local_midnight(name)) is not None:
            payload[key] = value  # left out when empty: "This field is required."
    try:
        budget = parse_money_input(form.get("budget"), payload["currency"], field="budget", locale=locale)
    except FieldError as exc:
        errors.setdefault(exc.field, exc.message)
        budget = None
    if budget is not None:
        payload["budget_max"] = budget
    if kind == "machine":
        hours = num("hours")
        if hours is not None and hours <= 0:
            errors.setdefault("hours", gettext(web_form_errors.POSITIVE))
        payload["duration_minutes"] = round(hours * 60) if hours and hours > 0 else None
        dims = [num("part_x"), num("part_y"), num("part_z")]
        if any(d is not None for d in dims):
            payload["part_envelope_mm"] = {"x": dims[0], "y": dims[1], "z": dims[2]}
        if (tolerance := num("tolerance_mm")) is not None:
            payload["tolerance_mm"] = tolerance
    else:
        samples = num("samples", integer=True)
        payload["samples"] = int(samples) if samples is not None else None
    lat, lon = num("latitude"), num("longitude")
    if (lat is None) != (lon is None) and not errors.keys() & {"latitude", "longitude"}:
        missing = "longitude" if lon is None else "latitude"
        errors[missing] = gettext(web_form_errors.BOTH_COORDINATES)
    if lat is not None and lon is not None:
        payload["location"] = {"latitude": lat, "longitude": lon}
    if (distance := num("max_distance_km")) is not None:
        payload["max_distance_km"] = distance
    return payload, errors


def _request_errors(exc: Exception, *, locale: str, currency: str) -> dict[str, str]:
    errors = form_errors(exc, locale=locale, currency=currency, aliases=_REQUEST_FIELDS)
    return web_form_errors.placed(errors, set(_REQUEST_FIELDS.values()))


@router.post("/buyer/{org_id}/requests/new", response_class=HTMLResponse)
async def create_request(
    request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    org = await _buyer_org(session, user, org_id)
    form = await request.form()
    locale = locale_of(request)
    currency = str(form.get("currency") or "CNY").strip().upper()
    try:
        payload, found = _request_payload(form, org_id, tz_name=viewer_tz(request), locale=locale)
        data = validated(
            RequestCreate, payload, errors=found, locale=locale, currency=currency, aliases=_REQUEST_FIELDS
        )
        created = await requests_service.create(session, user, data)
    except (ValidationError, AppError, ValueError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        errors = _request_errors(exc, locale=locale, currency=currency)
        org = await _buyer_org(session, user, org_id)  # reloaded: the rollback expired it
        return _request_form(request, user, org, form=form, errors=errors)
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
    booked = await BookingPageRepository(session).of_request(request_id, buyer_org_id=org_id)
    booked_titles = await ListingsPageQueries(session).titles([b.asset_id for b in booked])
    # Each slot is shown in its site's zone, named.
    site_zones = await ListingsPageQueries(session).site_zones([m.site_id for m in result.items]) if result else {}
    return render(
        request,
        "buyer/matches.html",
        {
            "org": org,
            "req": row,
            "result": result,
            "titles": titles,
            "site_zones": site_zones,
            "booked": booked,
            "booked_titles": booked_titles,
            "error": _url_error(request),
        },
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
    vouchers = await voucher_views.voucher_choices(session, user, buyers=buyers, asset_id=asset_id)
    return render(
        request,
        "buyer/book.html",
        {"asset": asset, "site": site, "buyers": buyers, "errors": {}, "form": {}, "vouchers": vouchers},
        user=user,
    )


# Where the book form shows each field of BookingCreate.
_BOOK_FIELDS = {
    "start": "start",
    "end": "start",
    "hours": "hours",
    "drop_off_date": "drop_off_date",
    "samples": "samples",
    "buyer_org_id": "buyer",
    "buyer": "buyer",
    "quality_documents": "quality_documents",
    "voucher_id": "voucher_id",
}


def _booking_payload(form: Any, asset: Any, *, tz: Any, locale: str) -> dict[str, Any]:
    """The book form → BookingCreate's shape; a missing or malformed time or number raises FormInvalid."""
    gettext = i18n.translations(locale).gettext
    errors: dict[str, str] = {}
    payload: dict[str, Any] = {
        "asset_id": str(asset.id),
        "buyer_org_id": form.get("buyer_org_id") or None,
        "request_id": form.get("request_id") or None,
        **voucher_views.voucher_field(form),  # "pay part with an innovation voucher" (issue #18)
    }
    if asset.kind == AssetKind.machine:
        # Quality documents ordered with the machine time (checkboxes of the documents the listing offers).
        payload["quality_documents"] = [str(kind) for kind in form.getlist("quality_documents")]
        if form.get("start_utc") and form.get("end_utc"):  # a slot chosen on the matches page
            payload["start"], payload["end"] = form.get("start_utc"), form.get("end_utc")
            return payload
        raw = str(form.get("start") or "").strip()  # typed in the site's local time
        try:
            hours = parse_number(form.get("hours"), field="hours", locale=locale)
        except FieldError as exc:
            errors[exc.field], hours = exc.message, None
        if hours is not None and hours <= 0:
            errors["hours"] = gettext(web_form_errors.POSITIVE)
        start = None
        try:
            start = datetime.fromisoformat(raw).replace(tzinfo=tz) if raw else None
        except ValueError:
            errors["start"] = gettext(web_form_errors.DATETIME)
        if not raw:
            errors["start"] = gettext(web_form_errors.REQUIRED)
        if errors:
            raise FormInvalid(errors)
        if start is not None:
            end = start + timedelta(hours=hours or (asset.min_booking_minutes or 60) / 60)
            payload["start"], payload["end"] = start.isoformat(), end.isoformat()
    else:
        payload["drop_off_date"] = form.get("drop_off_date") or None
        payload["samples"] = form.get("samples") or None
        missing = [name for name in ("drop_off_date", "samples") if payload[name] is None]
        if missing:
            raise FormInvalid(dict.fromkeys(missing, gettext(web_form_errors.REQUIRED)))
    return payload


def _matches_page(form: Any) -> str | None:
    """The matches page a booking from it returns to on failure (ids checked: never a free path)."""
    if not form.get("from_matches"):
        return None
    try:
        org_id, request_id = uuid.UUID(str(form.get("buyer_org_id"))), uuid.UUID(str(form.get("request_id")))
    except ValueError:
        return None
    return f"/buyer/{org_id}/requests/{request_id}"


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
    locale, currency = locale_of(request), asset.currency  # read now: a rollback below expires the row
    try:
        payload = _booking_payload(form, asset, tz=tz, locale=locale)
        data = BookingCreate.model_validate(payload)
        booking = await bookings.create(session=session, principal=user, data=data, deps=_deps(request))
    except (ValidationError, AppError, PaymentsError, ValueError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        errors = voucher_views.booking_errors(exc, locale=locale) or web_form_errors.placed(
            form_errors(exc, locale=locale, currency=currency, aliases=_BOOK_FIELDS), _BOOK_FIELDS.values()
        )
        back = _matches_page(form)
        if back is not None:  # booked from the matches page: back there, the error as a code (never free text)
            return redirect(f"{back}?error={error_code(exc)}")
        asset = await ListingsRepository(session).get_asset(asset_id)  # reloaded: the rollback expired them
        if asset is None:
            raise WebError(404, "not_found") from None
        site = await ListingsRepository(session).get_site(asset.site_id)
        buyers = await _buyer_orgs(session, user)
        vouchers = await voucher_views.voucher_choices(session, user, buyers=buyers, asset_id=asset_id)
        return render(
            request,
            "buyer/book.html",
            {"asset": asset, "site": site, "buyers": buyers, "errors": errors, "form": form, "vouchers": vouchers},
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
    summary = await payment_summary(session, booking, view)
    refund_now = bookings.refund_if_cancelled_now(booking, "buyer")
    locale, notice = locale_of(request), request.query_params.get("notice", "")
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
            "refund_now": refund_now,
            "summary": summary,
            "cancel": cancel_terms(booking, summary, refund_now),
            "payment_state": labeller(locale, PAYMENT_STATE),
            "my_review": await BookingPageRepository(session).review_by(booking.id, author_org_id=org_id),
            "notice": labeller(locale, BOOKING_NOTICES)(notice) if notice in BOOKING_NOTICES else None,
            "error": _url_error(request),
            "errors": _url_errors(request),
            "now": datetime.now(UTC),
            "stripe_key": request.app.state.settings.stripe_publishable_key,
            "insp": await inspection_views.section(session, booking, locale=locale),  # make + verify (#17)
            "insp_errors": inspection_views.section_errors(request),
            "voucher": await voucher_views.booking_split(session, booking),  # issue #18
            "schedule": await instalment_views.booking_schedule(session, booking, locale=locale),  # deposits
        },
        user=user,
    )


def _url_errors(request: Request) -> dict[str, str]:
    """The errors of an action the previous request refused, from its code (``?error=reason_required``), keyed
    by the id of the field on the booking page (``dispute-reason``; the review form's ``rating``, ``comment``)."""
    prefixes = {"dispute": "dispute-", "review": ""}
    return errors_from_url(request.query_params, locale=locale_of(request), prefixes=prefixes)


def _url_error(request: Request) -> str | None:
    """The same as one sentence, for pages that show a single message."""
    return message_from_code(request.query_params.get("error"), locale=locale_of(request))


@router.post("/buyer/{org_id}/bookings/{booking_id}/{action}")
async def booking_action(act: BookingAction, session: SessionDep, user: SignedIn, _csrf: CsrfChecked) -> Response:
    await _buyer_org(session, user, act.org_id)
    page = f"/buyer/{act.org_id}/bookings/{act.booking_id}"
    try:
        if act.action == "review":
            rating = act.field("rating") or "0"
            data = ReviewIn(rating=int(rating) if rating.isdigit() else 0, comment=act.field("comment") or "")
            await bookings.review(session=session, principal=user, booking_id=act.booking_id, data=data)
        elif act.action in ("pay", "cancel", "confirm", "dispute"):
            await act.perform(session, user)
        else:
            raise WebError(404, "not_found")
    except (AppError, PaymentsError, ValidationError, ValueError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        return redirect(f"{page}?error={error_code(exc)}&form={act.action}")  # a code: never free text
    return redirect(f"{page}?notice=reviewed" if act.action == "review" else page)


async def booking_rows(session: SessionDep, org_id: uuid.UUID) -> list[Booking]:
    return await BookingRepository(session).list_for_org([org_id], role="buyer", status=None, after=None, limit=100)
