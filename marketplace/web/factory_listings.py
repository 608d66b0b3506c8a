"""Factory pages for sites and listings: the site form, the listing wizard (machine or lab service), submit
and archive, and the weekly availability editor with its closed or extra-open days."""

from __future__ import annotations

import uuid
from datetime import date, time, timedelta
from typing import Any
from urllib.parse import quote

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
from marketplace.web.core import (
    CsrfChecked,
    SignedIn,
    WebError,
    field_errors,
    form_errors,
    locale_of,
    parse_money_input,
    redirect,
    render,
)
from marketplace.web.factory import blocked_time, listings_config, owned_asset, supplier_org
from marketplace.web.i18n import zone
from marketplace.web.public import taxonomy_choices

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
    form = dict(await request.form())
    try:
        data = SiteCreate.model_validate(
            {
                **{
                    k: form.get(k)
                    for k in ("name", "address", "country", "region_code", "latitude", "longitude", "timezone")
                },
                "org_id": org_id,
            }
        )
        await listings.create_site(session, user, data)
    except (ValidationError, ListingsError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        org = await supplier_org(session, user, org_id)  # reloaded: the rollback expired it
        return render(
            request,
            "factory/site_form.html",
            {"org": org, "form": form, "errors": field_errors(exc)},
            status=422,
            user=user,
        )
    return redirect(f"/factory/{org_id}/assets/new")


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
            **taxonomy_choices(locale_of(request)),
        },
        status=200 if errors is None else 422,
        user=user,
    )


def _asset_payload(
    form: Any, kind: str, partial: bool = False, *, locale: str = "en", currency: str = "CNY"
) -> dict[str, Any]:
    """Form fields → the API's JSON shape (money entered in major units: yuan, euros, yen; stored in the
    currency's minor units, exactly). ``currency`` applies when the form has no currency field."""
    chosen = str(form.get("currency") or currency).strip().upper()

    def money(name: str) -> int | None:
        return parse_money_input(form.get(name), chosen, field=name, locale=locale)

    def number(name: str) -> float | None:
        raw = str(form.get(name) or "").strip()
        return float(raw) if raw else None

    payload: dict[str, Any] = {
        "site_id": form.get("site_id") or None,
        "title": form.get("title"),
        "description": form.get("description", ""),
        "process_codes": list(form.getlist("process_codes")),
        "materials": list(form.getlist("materials")),
        "currency": chosen,
    }
    if kind == "machine":
        payload.update(
            {
                "envelope_mm": {"x": number("env_x"), "y": number("env_y"), "z": number("env_z")},
                "tolerance_mm": number("tolerance_mm"),
                "max_part_mass_kg": number("max_part_mass_kg"),
                "hourly_rate": money("hourly_rate"),
                "setup_fee": money("setup_fee") or 0,
                "min_booking_minutes": int(number("min_booking_minutes") or 60),
                "slot_minutes": int(number("slot_minutes") or 30),
                "buffer_minutes": int(number("buffer_minutes") or 0),
                "setup_minutes": int(number("setup_minutes") or 0),
                "operator_included": bool(form.get("operator_included")),
            }
        )
    else:
        payload.update(
            {
                "test_standard": form.get("test_standard"),
                "accredited": bool(form.get("accredited")),
                "price_per_sample": money("price_per_sample"),
                "turnaround_days": int(number("turnaround_days") or 0),
                "daily_sample_capacity": int(number("daily_sample_capacity") or 0),
                "sample_requirements": form.get("sample_requirements", ""),
            }
        )
    if not partial:
        payload["kind"] = kind
    return payload


@router.post("/assets/new", response_class=HTMLResponse)
async def create_asset(
    request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    org = await supplier_org(session, user, org_id)
    form = await request.form()
    kind = "lab_service" if form.get("kind") == "lab_service" else "machine"
    try:
        payload = _asset_payload(form, kind, locale=locale_of(request))
        data = TypeAdapter(AssetCreate).validate_python(payload)  # type: ignore[arg-type]
        asset = await listings.create_asset(
            session, user, data, config=listings_config(request), blocked=blocked_time()
        )
    except (ValidationError, ListingsError, ValueError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        org = await supplier_org(session, user, org_id)  # reloaded: the rollback expired it
        sites = await ListingsRepository(session).sites_of_org(org_id)
        return _asset_form(request, user, org, sites=sites, kind=kind, asset=None, form=form, errors=field_errors(exc))
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
    try:
        fields = _asset_payload(form, asset.kind, partial=True, locale=locale_of(request), currency=asset.currency)
        payload = {k: v for k, v in fields.items() if v not in (None, "")}
        data = AssetUpdate.model_validate(payload)
        await listings.update_asset(
            session, user, asset_id, data=data, config=listings_config(request), blocked=blocked_time()
        )
    except (ValidationError, ListingsError, ValueError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        org = await supplier_org(session, user, org_id)  # reloaded: the rollback expired them
        asset = await owned_asset(session, org_id, asset_id)
        sites = await ListingsRepository(session).sites_of_org(org_id)
        return _asset_form(
            request, user, org, sites=sites, kind=asset.kind, asset=asset, form=form, errors=field_errors(exc)
        )
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
        return redirect(f"/factory/{org_id}?error={quote(str(exc.detail))}")
    return redirect(f"/factory/{org_id}?notice={action}")


# -- availability ----------------------------------------------------------------------------------


def _availability_form(
    request: Request,
    user: Principal,
    org: Organisation,
    *,
    asset: Asset,
    current: dict[str, Any],
    exc_rows: list[tuple[date, date, bool]] | None = None,
    created: int = 0,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    """The availability editor, as stored, or as posted with its errors (422)."""
    return render(
        request,
        "factory/availability.html",
        {
            "org": org,
            "asset": asset,
            "current": current,
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
        (e.start.astimezone(tz).date(), (e.end.astimezone(tz) - timedelta(seconds=1)).date(), e.available)
        for e in current["exceptions"]
    ]
    return _availability_form(request, user, org, asset=asset, current=current, exc_rows=exc_rows, created=created)


@router.post("/assets/{asset_id}/availability", response_class=HTMLResponse)
async def save_availability(
    request: Request, org_id: uuid.UUID, asset_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    org = await supplier_org(session, user, org_id)
    asset = await owned_asset(session, org_id, asset_id)
    form = await request.form()
    site = await _site_of(session, asset)
    weekly = []
    for day in WEEKDAYS:
        for shift in (1, 2):
            start, end = form.get(f"d{day}_s{shift}_start"), form.get(f"d{day}_s{shift}_end")
            if start and end:
                weekly.append({"weekday": day, "start": start, "end": end})
    exceptions = []
    starts, ends = form.getlist("exc_start"), form.getlist("exc_end")
    kinds = form.getlist("exc_available")
    try:
        for s, e, k in zip(starts, ends, kinds, strict=False):
            if not s or not e:
                continue
            # Dates are entered as whole local days at the site: [start day 00:00, end day + 1 00:00).
            lo = local_to_utc(date.fromisoformat(str(s)), time(0), zone(site.timezone))
            hi = local_to_utc(date.fromisoformat(str(e)) + timedelta(days=1), time(0), zone(site.timezone))
            exceptions.append({"start": lo.isoformat(), "end": hi.isoformat(), "available": k == "open"})
        data = AvailabilityIn.model_validate({"weekly": weekly, "exceptions": exceptions})
        await listings.set_availability(
            session, user, asset_id, data=data, config=listings_config(request), blocked=blocked_time()
        )
    except (ValidationError, ListingsError, ValueError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        org = await supplier_org(session, user, org_id)  # reloaded: the rollback expired them
        asset = await owned_asset(session, org_id, asset_id)
        site = await _site_of(session, asset)
        current = {"timezone": site.timezone, "weekly": weekly, "exceptions": []}
        return _availability_form(request, user, org, asset=asset, current=current, errors=form_errors(exc))
    return redirect(f"/factory/{org_id}?notice=saved")
