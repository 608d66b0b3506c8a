"""Factory pages for sites and listings: the site form, the listing wizard (machine or lab service), submit
and archive, and the weekly availability editor with its closed or extra-open days."""

from __future__ import annotations

import uuid
from datetime import date, time, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import TypeAdapter, ValidationError

from listings import service as listings
from listings.availability import local_to_utc
from listings.errors import ListingsError
from listings.models import Asset, Site
from listings.repository import ListingsRepository
from listings.schemas import AssetCreate, AssetUpdate, AvailabilityIn, SiteCreate
from marketplace.core.db import SessionDep
from marketplace.core.principal import Principal
from marketplace.core.text import Line
from marketplace.orgs.models import Organisation
from marketplace.web import form_errors as web_form_errors
from marketplace.web import i18n
from marketplace.web.core import (
    CsrfChecked,
    FieldError,
    SignedIn,
    WebError,
    field_errors,
    form_errors,
    locale_of,
    parse_money_input,
    parse_number,
    redirect,
    render,
)
from marketplace.web.factory import blocked_time, listings_config, owned_asset, supplier_org
from marketplace.web.form_errors import N_, placed, validated
from marketplace.web.form_errors_service import error_code
from marketplace.web.i18n import zone
from marketplace.web.public import taxonomy_choices
from marketplace.web.quality_labels import QUALITY_DOCUMENT_LABELS

router = APIRouter(prefix="/factory/{org_id}", include_in_schema=False)

WEEKDAYS = range(7)

# -- sites and listings ----------------------------------------------------------------------------


@router.get("/sites/new", response_class=HTMLResponse)
async def new_site(request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn) -> HTMLResponse:
    org = await supplier_org(session, user, org_id)
    return render(request, "factory/site_form.html", {"org": org, "form": {}, "errors": {}}, user=user)


@router.post("/sites/new", response_class=HTMLResponse)
async def create_site(
    request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    org = await supplier_org(session, user, org_id)
    form = {k: str(v) for k, v in (await request.form()).items() if isinstance(v, str)}
    locale = locale_of(request)
    try:
        payload, found = _site_payload(form, org_id=org_id, locale=locale)
        data = validated(SiteCreate, payload, errors=found, locale=locale)
        await listings.create_site(session, user, data)
    except (ValidationError, ListingsError, ValueError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        org = await supplier_org(session, user, org_id)  # reloaded: the rollback expired it
        errors = placed(field_errors(exc, locale=locale), SITE_FIELDS)
        return render(
            request, "factory/site_form.html", {"org": org, "form": form, "errors": errors}, status=422, user=user
        )
    return redirect(f"/factory/{org_id}/assets/new")


SITE_FIELDS = ("name", "address", "country", "region_code", "latitude", "longitude", "timezone")


def _site_payload(form: dict[str, str], *, org_id: uuid.UUID, locale: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The site form → SiteCreate's shape and the fields found wrong on the way: empty fields are left out
    (Pydantic says "required"), coordinates are parsed here so that a malformed one is named beside its field."""
    payload: dict[str, Any] = {k: form[k].strip() for k in SITE_FIELDS if form.get(k, "").strip()}
    errors: dict[str, str] = {}
    for name in ("latitude", "longitude"):
        try:
            value = parse_number(form.get(name), field=name, locale=locale)
        except FieldError as exc:
            errors[exc.field] = exc.message
            value = None
        if value is not None:
            payload[name] = value
    return {**payload, "org_id": org_id}, errors


@router.get("/assets/new", response_class=HTMLResponse)
async def new_asset(
    request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn, kind: Line = "machine"
) -> Response:
    org = await supplier_org(session, user, org_id)
    sites = await ListingsRepository(session).sites_of_org(org_id)
    if not sites:
        return redirect(f"/factory/{org_id}/sites/new")
    return _asset_form(
        request, user, org, sites=sites, kind="lab_service" if kind == "lab_service" else "machine", asset=None
    )


def _asset_form(
    request: Request,
    user: Principal,
    org: Organisation,
    *,
    sites: list[Site],
    kind: str,
    asset: Asset | None,
    form: Any = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    """The listing form, empty (new), filled from ``asset`` (edit), or as posted with its errors (422)."""
    return render(
        request,
        "factory/asset_form.html",
        {
            "org": org,
            "sites": sites,
            "kind": kind,
            "form": form or {},
            "errors": errors or {},
            "asset": asset,
            "quality_document_labels": QUALITY_DOCUMENT_LABELS,
            **taxonomy_choices(locale_of(request)),
        },
        status=200 if errors is None else 422,
        user=user,
    )


# Where the listing form shows each field of AssetCreate/AssetUpdate.
ASSET_FIELDS = {
    "site_id": "site_id",
    "title": "title",
    "description": "description",
    "process_codes": "process_codes",
    "materials": "materials",
    "currency": "currency",
    "deposit_percent": "deposit_percent",
    "envelope_mm": "env_x",
    "envelope_mm.x": "env_x",
    "envelope_mm.y": "env_y",
    "envelope_mm.z": "env_z",
    "env_x": "env_x",
    "env_y": "env_y",
    "env_z": "env_z",
    # The quality documents' prices (machines): one field each, ``qd_<kind>``.
    "quality_documents": "qd_coc",
    **{f"quality_documents.{kind}": f"qd_{kind}" for kind in QUALITY_DOCUMENT_LABELS},
    **{f"qd_{kind}": f"qd_{kind}" for kind in QUALITY_DOCUMENT_LABELS},
    **{
        name: name
        for name in (
            "tolerance_mm",
            "max_part_mass_kg",
            "hourly_rate",
            "setup_fee",
            "min_booking_minutes",
            "slot_minutes",
            "buffer_minutes",
            "setup_minutes",
            "test_standard",
            "price_per_sample",
            "turnaround_days",
            "daily_sample_capacity",
            "sample_requirements",
        )
    },
}


def _asset_payload(
    form: Any, kind: str, partial: bool = False, *, locale: str = "en", currency: str = "CNY"
) -> tuple[dict[str, Any], dict[str, str]]:
    """Form fields → the API's JSON shape (money entered in major units: yuan, euros, yen; stored in the
    currency's minor units, exactly), and the fields found malformed on the way (in ``locale``). ``currency``
    applies when the form has no currency field."""
    chosen = str(form.get("currency") or currency).strip().upper()
    errors: dict[str, str] = {}

    def money(name: str) -> int | None:
        try:
            return parse_money_input(form.get(name), chosen, field=name, locale=locale)
        except FieldError as exc:
            errors.setdefault(exc.field, exc.message)
            return None

    def number(name: str, *, integer: bool = False) -> float | None:
        try:
            return parse_number(form.get(name), field=name, locale=locale, integer=integer)
        except FieldError as exc:
            errors.setdefault(exc.field, exc.message)
            return None

    payload: dict[str, Any] = {
        "site_id": form.get("site_id") or None,
        "title": form.get("title"),
        "description": form.get("description", ""),
        "process_codes": list(form.getlist("process_codes")),
        "materials": list(form.getlist("materials")),
        "currency": chosen,
        # A deposit paid on confirmation (issue #18 item 4); empty: none.
        "deposit_percent": None if (deposit := number("deposit_percent", integer=True)) is None else int(deposit),
    }
    if kind == "machine":
        payload.update(
            {
                "envelope_mm": {"x": number("env_x"), "y": number("env_y"), "z": number("env_z")},
                "tolerance_mm": number("tolerance_mm"),
                "max_part_mass_kg": number("max_part_mass_kg"),
                "hourly_rate": money("hourly_rate"),
                "setup_fee": money("setup_fee") or 0,
                "min_booking_minutes": int(number("min_booking_minutes", integer=True) or 60),
                "slot_minutes": int(number("slot_minutes", integer=True) or 30),
                "buffer_minutes": int(number("buffer_minutes", integer=True) or 0),
                "setup_minutes": int(number("setup_minutes", integer=True) or 0),
                "operator_included": bool(form.get("operator_included")),
                # An empty price does not offer the document (so emptying every price withdraws the offer).
                "quality_documents": {
                    kind: price for kind in QUALITY_DOCUMENT_LABELS if (price := money(f"qd_{kind}")) is not None
                },
            }
        )
    else:
        payload.update(
            {
                "test_standard": form.get("test_standard"),
                "accredited": bool(form.get("accredited")),
                "price_per_sample": money("price_per_sample"),
                "turnaround_days": int(number("turnaround_days", integer=True) or 0),
                "daily_sample_capacity": int(number("daily_sample_capacity", integer=True) or 0),
                "sample_requirements": form.get("sample_requirements", ""),
            }
        )
    if not partial:
        payload["kind"] = kind
    return payload, errors


@router.post("/assets/new", response_class=HTMLResponse)
async def create_asset(
    request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    org = await supplier_org(session, user, org_id)
    form = await request.form()
    kind = "lab_service" if form.get("kind") == "lab_service" else "machine"
    locale = locale_of(request)
    try:
        payload, found = _asset_payload(form, kind, locale=locale)
        adapter = TypeAdapter(AssetCreate)  # type: ignore[var-annotated]
        data = validated(
            adapter, payload, errors=found, locale=locale, currency=payload["currency"], aliases=ASSET_FIELDS
        )
        asset = await listings.create_asset(
            session, user, data, config=listings_config(request), blocked=blocked_time()
        )
    except (ValidationError, ListingsError, ValueError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        org = await supplier_org(session, user, org_id)  # reloaded: the rollback expired it
        sites = await ListingsRepository(session).sites_of_org(org_id)
        errors = placed(field_errors(exc, locale=locale, aliases=ASSET_FIELDS), ASSET_FIELDS.values())
        return _asset_form(request, user, org, sites=sites, kind=kind, asset=None, form=form, errors=errors)
    return redirect(f"/factory/{org_id}/assets/{asset.id}/availability?created=1")


async def _site_of(session: SessionDep, asset: Asset) -> Site:
    site = await ListingsRepository(session).get_site(asset.site_id)
    if site is None:  # the foreign key makes this impossible; a friendly page rather than a crash if it happens
        raise WebError(404, "not_found")
    return site


@router.get("/assets/{asset_id}/edit", response_class=HTMLResponse)
async def edit_asset(
    request: Request, org_id: uuid.UUID, asset_id: uuid.UUID, session: SessionDep, user: SignedIn
) -> HTMLResponse:
    org = await supplier_org(session, user, org_id)
    asset = await owned_asset(session, org_id, asset_id)
    sites = await ListingsRepository(session).sites_of_org(org_id)
    return _asset_form(request, user, org, sites=sites, kind=asset.kind, asset=asset)


@router.post("/assets/{asset_id}/edit", response_class=HTMLResponse)
async def update_asset(
    request: Request, org_id: uuid.UUID, asset_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    org = await supplier_org(session, user, org_id)
    asset = await owned_asset(session, org_id, asset_id)
    form = await request.form()
    locale, currency = locale_of(request), asset.currency
    try:
        fields, found = _asset_payload(form, asset.kind, partial=True, locale=locale, currency=currency)
        payload = {k: v for k, v in fields.items() if v not in (None, "")}
        if "deposit_percent" in form and payload.get("deposit_percent") is None and asset.deposit_percent:
            payload["deposit_percent"] = None  # the field emptied: no deposit any more
        data = validated(AssetUpdate, payload, errors=found, locale=locale, currency=currency, aliases=ASSET_FIELDS)
        await listings.update_asset(
            session, user, asset_id, data=data, config=listings_config(request), blocked=blocked_time()
        )
    except (ValidationError, ListingsError, ValueError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        org = await supplier_org(session, user, org_id)  # reloaded: the rollback expired them
        asset = await owned_asset(session, org_id, asset_id)
        sites = await ListingsRepository(session).sites_of_org(org_id)
        errors = placed(
            field_errors(exc, locale=locale, currency=currency, aliases=ASSET_FIELDS), ASSET_FIELDS.values()
        )
        return _asset_form(request, user, org, sites=sites, kind=asset.kind, asset=asset, form=form, errors=errors)
    return redirect(f"/factory/{org_id}?notice=saved")


@router.post("/assets/{asset_id}/submit")
async def submit_asset(
    org_id: uuid.UUID, asset_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    return await _asset_action(session, user, org_id=org_id, asset_id=asset_id, action="submit")


@router.post("/assets/{asset_id}/archive")
async def archive_asset(
    org_id: uuid.UUID, asset_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    return await _asset_action(session, user, org_id=org_id, asset_id=asset_id, action="archive")


async def _asset_action(
    session: SessionDep, user: Principal, *, org_id: uuid.UUID, asset_id: uuid.UUID, action: str
) -> Response:
    await supplier_org(session, user, org_id)
    await owned_asset(session, org_id, asset_id)
    try:
        await listings.owner_transition(session, user, asset_id, action=action)
    except ListingsError as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        return redirect(f"/factory/{org_id}?error={error_code(exc)}")  # a code, never free text
    return redirect(f"/factory/{org_id}?notice={action}")


# -- availability ----------------------------------------------------------------------------------

# Messages of the availability editor's own checks (each beside its row).
_BOTH_SHIFT_ENDS = N_("Enter both the start and the end of the shift.")
_BOTH_DAYS = N_("Enter both the first and the last day.")
_LAST_BEFORE_FIRST = N_("The last day cannot be before the first day.")


def _availability_form(
    request: Request,
    user: Principal,
    org: Organisation,
    *,
    asset: Asset,
    current: dict[str, Any],
    exc_rows: list[dict[str, Any]] | None = None,
    created: int = 0,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    """The availability editor, as stored, or as posted with its errors (422): every posted exception row is
    shown again (``exc_<n>`` errors beside row n), none is dropped."""
    return render(
        request,
        "factory/availability.html",
        {
            "org": org,
            "asset": asset,
            "plan": current,  # not "current": base.html has a macro of that name
            "exc_rows": exc_rows or [],
            "errors": errors or {},
            "created": created,
            "weekdays": WEEKDAYS,
        },
        status=200 if errors is None else 422,
        user=user,
    )


@router.get("/assets/{asset_id}/availability", response_class=HTMLResponse)
async def availability(
    request: Request, org_id: uuid.UUID, asset_id: uuid.UUID, session: SessionDep, user: SignedIn, created: int = 0
) -> HTMLResponse:
    org = await supplier_org(session, user, org_id)
    asset = await owned_asset(session, org_id, asset_id)
    current = await listings.get_availability(session, user, asset_id)
    tz = zone(current["timezone"])
    # Exceptions are stored as instants; the editor shows them as whole local days, end inclusive.
    exc_rows = [
        {
            "first": e.start.astimezone(tz).date().isoformat(),
            "last": (e.end.astimezone(tz) - timedelta(seconds=1)).date().isoformat(),
            "available": e.available,
        }
        for e in current["exceptions"]
    ]
    return _availability_form(request, user, org, asset=asset, current=current, exc_rows=exc_rows, created=created)


def _weekly_rows(form: Any, errors: dict[str, str], aliases: dict[str, str], *, gettext: Any) -> list[dict[str, Any]]:
    """The weekly shifts as posted; a shift with only one end is an error beside it (``d<day>_s<n>``)."""
    weekly: list[dict[str, Any]] = []
    for day in WEEKDAYS:
        for shift in (1, 2):
            key = f"d{day}_s{shift}"
            start, end = str(form.get(f"{key}_start") or ""), str(form.get(f"{key}_end") or "")
            if start and end:
                for part in ("", ".start", ".end", ".weekday"):
                    aliases[f"weekly.{len(weekly)}{part}"] = key
                weekly.append({"weekday": day, "start": start, "end": end})
            elif start or end:
                errors[key] = gettext(_BOTH_SHIFT_ENDS)
    return weekly


def _exception_rows(
    form: Any, errors: dict[str, str], aliases: dict[str, str], *, site: Site, gettext: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The posted exception rows (to show again) and the valid ones as instants; a row that ends before it
    starts, is half filled or has a malformed day is an error beside it (``exc_<n>``), never dropped."""
    rows: list[dict[str, Any]] = []
    exceptions: list[dict[str, Any]] = []
    tz = zone(site.timezone)
    starts, ends, kinds = form.getlist("exc_start"), form.getlist("exc_end"), form.getlist("exc_available")
    for i, (s, e) in enumerate(zip(starts, ends, strict=False)):
        first, last = str(s or "").strip(), str(e or "").strip()
        available = (str(kinds[i]) if i < len(kinds) else "closed") == "open"
        if not first and not last:
            continue  # the empty row for a new exception
        key = f"exc_{len(rows)}"
        rows.append({"first": first, "last": last, "available": available})
        if not first or not last:
            errors[key] = gettext(_BOTH_DAYS)
            continue
        try:
            lo_day, hi_day = date.fromisoformat(first), date.fromisoformat(last)
        except ValueError:
            errors[key] = gettext(web_form_errors.DATE)
            continue
        if hi_day < lo_day:
            errors[key] = gettext(_LAST_BEFORE_FIRST)
            continue
        # Dates are entered as whole local days at the site: [start day 00:00, end day + 1 00:00).
        lo = local_to_utc(lo_day, time(0), tz)
        hi = local_to_utc(hi_day + timedelta(days=1), time(0), tz)
        for part in ("", ".start", ".end", ".available", ".note"):
            aliases[f"exceptions.{len(exceptions)}{part}"] = key
        exceptions.append({"start": lo.isoformat(), "end": hi.isoformat(), "available": available})
    return rows, exceptions


@router.post("/assets/{asset_id}/availability", response_class=HTMLResponse)
async def save_availability(
    request: Request, org_id: uuid.UUID, asset_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    org = await supplier_org(session, user, org_id)
    asset = await owned_asset(session, org_id, asset_id)
    form = await request.form()
    site = await _site_of(session, asset)
    locale = locale_of(request)
    gettext = i18n.translations(locale).gettext
    found: dict[str, str] = {}
    aliases: dict[str, str] = {}
    weekly = _weekly_rows(form, found, aliases, gettext=gettext)
    rows, exceptions = _exception_rows(form, found, aliases, site=site, gettext=gettext)
    try:
        payload = {"weekly": weekly, "exceptions": exceptions}
        data = validated(AvailabilityIn, payload, errors=found, locale=locale, aliases=aliases)
        await listings.set_availability(
            session, user, asset_id, data=data, config=listings_config(request), blocked=blocked_time()
        )
    except (ValidationError, ListingsError, ValueError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        org = await supplier_org(session, user, org_id)  # reloaded: the rollback expired them
        asset = await owned_asset(session, org_id, asset_id)
        site = await _site_of(session, asset)
        current = {"timezone": site.timezone, "weekly": weekly, "exceptions": []}
        errors = form_errors(exc, locale=locale, aliases=aliases)
        return _availability_form(request, user, org, asset=asset, current=current, exc_rows=rows, errors=errors)
    return redirect(f"/factory/{org_id}?notice=saved")
