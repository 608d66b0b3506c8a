"""Factory (supplier) pages: dashboard, listing wizard, availability editor, incoming bookings,
utilisation chart, iCal links, API keys and webhooks. Every action calls the same service as the API."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import TypeAdapter, ValidationError
from sqlmodel import col

from listings import availability as av
from listings import service as listings
from listings.errors import ListingsError
from listings.models import Asset, AssetKind, Site
from listings.repository import ListingsRepository
from listings.schemas import AssetCreate, AssetUpdate, AvailabilityIn, SiteCreate
from marketplace.bookings import service as bookings
from marketplace.bookings.endpoints import calendar_token
from marketplace.bookings.models import BLOCKING, Booking
from marketplace.bookings.transitions import RELEASABLE
from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError
from marketplace.core.principal import Principal
from marketplace.core.text import Line
from marketplace.orgs import service as orgs
from marketplace.orgs.models import Organisation
from marketplace.orgs.schemas import ApiKeyCreate
from marketplace.web import charts, i18n
from marketplace.web.core import (
    N_,
    CsrfChecked,
    SignedIn,
    WebError,
    field_errors,
    locale_of,
    parse_money_input,
    redirect,
    render,
)
from marketplace.web.public import taxonomy_choices

router = APIRouter(prefix="/factory/{org_id}", include_in_schema=False)

WEEKDAYS = range(7)


async def _org(session: SessionDep, user: Principal, org_id: uuid.UUID) -> Organisation:
    """The supplier organisation; anyone else (a buyer included) may not open factory pages."""
    org = await session.get(Organisation, org_id)
    if org is None or not (user.is_member(org_id) or user.is_platform_admin):
        raise WebError(404, "not_found")
    if "supplier" not in org.roles:
        raise WebError(403, "not_supplier")
    return org


def _cfg(request: Request) -> listings.ListingsConfig:
    cfg: listings.ListingsConfig = request.app.state.booking_deps.listings_config
    return cfg


def _blocked() -> listings.BlockedTime:
    return bookings.BookingsBlockedTime()


@router.get("", response_class=HTMLResponse)
async def dashboard(request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn) -> HTMLResponse:
    org = await _org(session, user, org_id)
    repo = ListingsRepository(session)
    assets = await repo.assets_of_org(org_id, None, after=None, limit=200)
    sites = {s.id: s for s in await repo.sites_of_org(org_id)}
    waiting = (
        (
            await session.execute(
                sa.select(Booking)
                .where(col(Booking.supplier_org_id) == org_id, col(Booking.status) == "requested")
                .order_by(col(Booking.accept_by))
            )
        )
        .scalars()
        .all()
    )
    now = datetime.now(UTC)
    today = (
        (
            await session.execute(
                sa.select(Booking)
                .where(
                    col(Booking.supplier_org_id) == org_id,
                    col(Booking.status).in_(["confirmed", "in_progress"]),
                    sa.or_(
                        sa.and_(col(Booking.start_at) < now + timedelta(hours=24), col(Booking.end_at) > now),
                        col(Booking.drop_off_date) == now.date(),
                    ),
                )
                .order_by(col(Booking.start_at))
            )
        )
        .scalars()
        .all()
    )
    titles = {a.id: a.title for a in assets}
    machines = [a for a in assets if a.kind == AssetKind.machine and a.status != "archived"]
    chart = await utilisation_chart(session, machines, sites, locale_of(request)) if machines else None
    return render(
        request,
        "factory/dashboard.html",
        {
            "org": org,
            "assets": assets,
            "sites": sites,
            "waiting": waiting,
            "today": today,
            "titles": titles,
            "chart": chart,
        },
        user=user,
    )


async def utilisation_chart(
    session: SessionDep, machines: list[Asset], sites: dict[uuid.UUID, Site], locale: str
) -> str:
    """Booked vs available hours per week for each machine: the last 4 weeks and the next 4."""
    monday = datetime.now(UTC).date() - timedelta(days=datetime.now(UTC).weekday())
    weeks = [monday + timedelta(weeks=i) for i in range(-4, 4)]
    start = datetime.combine(weeks[0], time(0), UTC)
    end = datetime.combine(weeks[-1] + timedelta(days=7), time(0), UTC)
    repo = ListingsRepository(session)
    excs = await repo.exceptions_for([m.id for m in machines], start, end)
    rows = (
        await session.execute(
            # Booked time as it blocks the machine: after a release, only up to the completion time.
            sa.select(
                col(Booking.asset_id),
                col(Booking.start_at),
                sa.func.least(  # an emptied period (released before its start) counts nothing
                    col(Booking.end_at), sa.func.coalesce(sa.func.upper(col(Booking.period)), col(Booking.start_at))
                ),
            ).where(
                col(Booking.asset_id).in_([m.id for m in machines]),
                col(Booking.status).in_(BLOCKING),
                col(Booking.start_at) < end,
                col(Booking.end_at) > start,
            )
        )
    ).all()
    series = []
    for m in machines[:12]:
        site = sites.get(m.site_id)
        open_time = av.free_intervals(
            listings.weekly_windows(m),
            site.timezone if site else "UTC",
            listings.exception_ranges(excs[m.id]),
            [],
            start,
            end,
        )
        booked = [(s, e) for a, s, e in rows if a == m.id and s is not None and e is not None]
        values = []
        for w in weeks:
            lo = datetime.combine(w, time(0), UTC)
            hi = lo + timedelta(days=7)
            values.append((_hours(open_time, lo, hi), _hours(booked, lo, hi)))
        series.append((m.title, values))
    return charts.utilisation_svg(series, [w.isoformat() for w in weeks], locale)


def _hours(intervals: list[tuple[datetime, datetime]], lo: datetime, hi: datetime) -> float:
    return sum(max((min(e, hi) - max(s, lo)).total_seconds(), 0) for s, e in intervals) / 3600


# -- sites and listings ----------------------------------------------------------------------------


@router.get("/sites/new", response_class=HTMLResponse)
async def new_site(request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn) -> HTMLResponse:
    org = await _org(session, user, org_id)
    return render(request, "factory/site_form.html", {"org": org, "form": {}, "errors": {}}, user=user)


@router.post("/sites/new", response_class=HTMLResponse)
async def create_site(
    request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    org = await _org(session, user, org_id)
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
        org = await _org(session, user, org_id)  # reloaded: the rollback expired it
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
    org = await _org(session, user, org_id)
    sites = await ListingsRepository(session).sites_of_org(org_id)
    if not sites:
        return redirect(f"/factory/{org_id}/sites/new")
    return render(
        request,
        "factory/asset_form.html",
        {
            "org": org,
            "sites": sites,
            "kind": "lab_service" if kind == "lab_service" else "machine",
            "form": {},
            "errors": {},
            "asset": None,
            **taxonomy_choices(locale_of(request)),
        },
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
    org = await _org(session, user, org_id)
    form = await request.form()
    kind = "lab_service" if form.get("kind") == "lab_service" else "machine"
    try:
        payload = _asset_payload(form, kind, locale=locale_of(request))
        data = TypeAdapter(AssetCreate).validate_python(payload)  # type: ignore[arg-type]
        asset = await listings.create_asset(session, user, data, _cfg(request), _blocked())
    except (ValidationError, ListingsError, ValueError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        org = await _org(session, user, org_id)  # reloaded: the rollback expired it
        sites = await ListingsRepository(session).sites_of_org(org_id)
        return render(
            request,
            "factory/asset_form.html",
            {
                "org": org,
                "sites": sites,
                "kind": kind,
                "form": form,
                "errors": field_errors(exc),
                "asset": None,
                **taxonomy_choices(locale_of(request)),
            },
            status=422,
            user=user,
        )
    return redirect(f"/factory/{org_id}/assets/{asset.id}/availability?created=1")


async def _site_of(session: SessionDep, asset: Asset) -> Site:
    site = await ListingsRepository(session).get_site(asset.site_id)
    if site is None:  # the foreign key makes this impossible; a friendly page rather than a crash if it happens
        raise WebError(404, "not_found")
    return site


async def _owned(session: SessionDep, user: Principal, org_id: uuid.UUID, asset_id: uuid.UUID) -> Asset:
    asset = await ListingsRepository(session).get_asset(asset_id)
    if asset is None or asset.org_id != org_id:
        raise WebError(404, "not_found")
    return asset


@router.get("/assets/{asset_id}/edit", response_class=HTMLResponse)
async def edit_asset(
    request: Request, org_id: uuid.UUID, asset_id: uuid.UUID, session: SessionDep, user: SignedIn
) -> HTMLResponse:
    org = await _org(session, user, org_id)
    asset = await _owned(session, user, org_id, asset_id)
    sites = await ListingsRepository(session).sites_of_org(org_id)
    return render(
        request,
        "factory/asset_form.html",
        {
            "org": org,
            "sites": sites,
            "kind": asset.kind,
            "form": {},
            "errors": {},
            "asset": asset,
            **taxonomy_choices(locale_of(request)),
        },
        user=user,
    )


@router.post("/assets/{asset_id}/edit", response_class=HTMLResponse)
async def update_asset(
    request: Request, org_id: uuid.UUID, asset_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    org = await _org(session, user, org_id)
    asset = await _owned(session, user, org_id, asset_id)
    form = await request.form()
    try:
        fields = _asset_payload(form, asset.kind, partial=True, locale=locale_of(request), currency=asset.currency)
        payload = {k: v for k, v in fields.items() if v not in (None, "")}
        data = AssetUpdate.model_validate(payload)
        await listings.update_asset(session, user, asset_id, data, _cfg(request), _blocked())
    except (ValidationError, ListingsError, ValueError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        org = await _org(session, user, org_id)  # reloaded: the rollback expired them
        asset = await _owned(session, user, org_id, asset_id)
        sites = await ListingsRepository(session).sites_of_org(org_id)
        return render(
            request,
            "factory/asset_form.html",
            {
                "org": org,
                "sites": sites,
                "kind": asset.kind,
                "form": form,
                "errors": field_errors(exc),
                "asset": asset,
                **taxonomy_choices(locale_of(request)),
            },
            status=422,
            user=user,
        )
    return redirect(f"/factory/{org_id}?notice=saved")


@router.post("/assets/{asset_id}/submit")
async def submit_asset(
    org_id: uuid.UUID, asset_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    return await _asset_action(org_id, asset_id, "submit", session, user)


@router.post("/assets/{asset_id}/archive")
async def archive_asset(
    org_id: uuid.UUID, asset_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    return await _asset_action(org_id, asset_id, "archive", session, user)


async def _asset_action(
    org_id: uuid.UUID, asset_id: uuid.UUID, action: str, session: SessionDep, user: Principal
) -> Response:
    await _org(session, user, org_id)
    await _owned(session, user, org_id, asset_id)
    try:
        await listings.owner_transition(session, user, asset_id, action)
    except ListingsError as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        return redirect(f"/factory/{org_id}?error={quote(str(exc.detail))}")
    return redirect(f"/factory/{org_id}?notice={action}")


# -- availability ----------------------------------------------------------------------------------


@router.get("/assets/{asset_id}/availability", response_class=HTMLResponse)
async def availability(
    request: Request, org_id: uuid.UUID, asset_id: uuid.UUID, session: SessionDep, user: SignedIn, created: int = 0
) -> HTMLResponse:
    org = await _org(session, user, org_id)
    asset = await _owned(session, user, org_id, asset_id)
    current = await listings.get_availability(session, user, asset_id)
    from marketplace.web.i18n import zone

    tz = zone(current["timezone"])
    # Exceptions are stored as instants; the editor shows them as whole local days, end inclusive.
    exc_rows = [
        (e.start.astimezone(tz).date(), (e.end.astimezone(tz) - timedelta(seconds=1)).date(), e.available)
        for e in current["exceptions"]
    ]
    return render(
        request,
        "factory/availability.html",
        {
            "org": org,
            "asset": asset,
            "current": current,
            "exc_rows": exc_rows,
            "errors": {},
            "created": created,
            "weekdays": WEEKDAYS,
        },
        user=user,
    )


@router.post("/assets/{asset_id}/availability", response_class=HTMLResponse)
async def save_availability(
    request: Request, org_id: uuid.UUID, asset_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    org = await _org(session, user, org_id)
    asset = await _owned(session, user, org_id, asset_id)
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
    from listings.availability import local_to_utc
    from marketplace.web.i18n import zone

    errors: dict[str, str] = {}
    try:
        for s, e, k in zip(starts, ends, kinds, strict=False):
            if not s or not e:
                continue
            # Dates are entered as whole local days at the site: [start day 00:00, end day + 1 00:00).
            lo = local_to_utc(date.fromisoformat(str(s)), time(0), zone(site.timezone))
            hi = local_to_utc(date.fromisoformat(str(e)) + timedelta(days=1), time(0), zone(site.timezone))
            exceptions.append({"start": lo.isoformat(), "end": hi.isoformat(), "available": k == "open"})
        data = AvailabilityIn.model_validate({"weekly": weekly, "exceptions": exceptions})
        await listings.set_availability(session, user, asset_id, data, _cfg(request), _blocked())
    except (ValidationError, ListingsError, ValueError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        org = await _org(session, user, org_id)  # reloaded: the rollback expired them
        asset = await _owned(session, user, org_id, asset_id)
        site = await _site_of(session, asset)
        errors = (
            field_errors(exc)
            if not isinstance(exc, ValueError) or isinstance(exc, ValidationError)
            else {"_": str(exc)}
        )
        current = {"timezone": site.timezone, "weekly": weekly, "exceptions": []}
        return render(
            request,
            "factory/availability.html",
            {
                "org": org,
                "asset": asset,
                "current": current,
                "exc_rows": [],
                "errors": errors,
                "created": 0,
                "weekdays": WEEKDAYS,
            },
            status=422,
            user=user,
        )
    return redirect(f"/factory/{org_id}?notice=saved")


# -- bookings --------------------------------------------------------------------------------------


@router.get("/bookings", response_class=HTMLResponse)
async def incoming(request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn) -> HTMLResponse:
    org = await _org(session, user, org_id)
    rows = (
        (
            await session.execute(
                sa.select(Booking)
                .where(col(Booking.supplier_org_id) == org_id)
                .order_by(col(Booking.created_at).desc())
                .limit(200)
            )
        )
        .scalars()
        .all()
    )
    titles = {
        a.id: a.title for a in await ListingsRepository(session).assets_of_org(org_id, None, after=None, limit=1000)
    }
    buyers = {
        o.id: o.name
        for o in (
            await session.execute(
                sa.select(Organisation).where(col(Organisation.id).in_({b.buyer_org_id for b in rows}))
            )
        ).scalars()
    }
    return render(
        request,
        "factory/bookings.html",
        {
            "org": org,
            "rows": rows,
            "titles": titles,
            "buyers": buyers,
            "error": request.query_params.get("error"),
            "now": datetime.now(UTC),
            "starts_at": bookings.starts_at,
            "release_window": _release_window,
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
    request: Request,
    org_id: uuid.UUID,
    booking_id: uuid.UUID,
    action: Line,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
) -> Response:
    await _org(session, user, org_id)
    if action not in ("accept", "decline", "start", "complete", "cancel", "release"):
        raise WebError(404, "not_found")
    form = await request.form()
    try:
        await bookings.act(
            session=session,
            principal=user,
            booking_id=booking_id,
            action=action,
            deps=request.app.state.booking_deps,
            reason=str(form.get("reason") or "") or None,
            result_reference=str(form.get("result_reference") or "") or None,
        )
    except AppError as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        return redirect(f"/factory/{org_id}/bookings?error={quote(_action_error(request, exc))}")
    return redirect(f"/factory/{org_id}/bookings")


# The refusals of the early-completion and release rules, in the page's language.
_ACTION_MESSAGES = {
    "nothing_to_release": N_("There is no booked time left to release."),
    "not_releasable": N_("A lab booking keeps its samples: there is no time to release."),
}


def _action_error(request: Request, exc: AppError) -> str:
    message = _ACTION_MESSAGES.get(exc.code)
    if exc.code == "validation_error" and exc.detail.startswith("reason:"):
        message = N_("Say why the work was finished before the booked start.")
    return i18n.translations(locale_of(request)).gettext(message) if message else exc.detail


# -- integrations ----------------------------------------------------------------------------------


@router.get("/integrations", response_class=HTMLResponse)
async def integrations(request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn) -> HTMLResponse:
    return await _integrations_page(request, org_id, session, user)


async def _integrations_page(
    request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn, *, new_secret: str | None = None
) -> HTMLResponse:
    """The integrations page; after creating an API key or a webhook, with its secret. The secret is shown in
    this one response (never stored in the session cookie, never cached) and cannot be shown again."""
    org = await _org(session, user, org_id)
    keys = await orgs.list_api_keys(session, user, org_id)
    settings = request.app.state.settings
    machines = [
        a
        for a in await ListingsRepository(session).assets_of_org(org_id, None, after=None, limit=1000)
        if a.kind == AssetKind.machine
    ]
    feeds = [
        (a, f"{settings.public_url}/api/v1/assets/{a.id}/calendar.ics?token={calendar_token(settings, a.id)}")
        for a in machines
    ]
    from marketplace.notifications.models import WebhookEndpoint

    hooks = (
        (await session.execute(sa.select(WebhookEndpoint).where(col(WebhookEndpoint.org_id) == org_id))).scalars().all()
    )
    page = render(
        request,
        "factory/integrations.html",
        {
            "org": org,
            "keys": keys,
            "feeds": feeds,
            "hooks": hooks,
            "new_key": new_secret,
        },
        user=user,
    )
    if new_secret is not None:
        page.headers["Cache-Control"] = "no-store"
    return page


@router.post("/integrations/api-keys")
async def create_key(
    request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    await _org(session, user, org_id)
    form = await request.form()
    try:
        data = ApiKeyCreate(
            name=str(form.get("name") or "integration"), scopes=[str(s) for s in form.getlist("scopes")]
        )
        _, secret = await orgs.create_api_key(session, user, org_id, data)
    except (ValidationError, AppError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        return redirect(f"/factory/{org_id}/integrations?error={quote(str(field_errors(exc)))}")
    return await _integrations_page(request, org_id, session, user, new_secret=secret)  # shown once, here


@router.post("/integrations/api-keys/{key_id}/revoke")
async def revoke_key(
    org_id: uuid.UUID, key_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    await _org(session, user, org_id)
    await orgs.revoke_api_key(session, user, org_id, key_id)
    return redirect(f"/factory/{org_id}/integrations")


# -- earnings --------------------------------------------------------------------------------------

EARNINGS_LINES = 100  # latest payable lines shown; the statement CSV has every line


@router.get("/earnings", response_class=HTMLResponse)
async def earnings(request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn) -> HTMLResponse:
    """Ledger lines of the factory's payable account: what it earned (net of commission) and was paid."""
    from payments import ledger

    org = await _org(session, user, org_id)
    # Totals over every line, summed in SQL; the table shows the latest lines (the CSV export has them all).
    totals = await ledger.statement_totals(session, org_id=org_id)
    payable = {cur: t[ledger.SUPPLIER_PAYABLE] for cur, t in totals.items() if ledger.SUPPLIER_PAYABLE in t}
    # The payable is a liability: credits are earnings, debits are payouts; what is owed is credits - debits.
    earned = {cur: t["credits"] for cur, t in payable.items()}
    balances = {cur: -t["balance"] for cur, t in payable.items()}
    lines = await ledger.statement_lines(session, org_id=org_id, limit=EARNINGS_LINES, account=ledger.SUPPLIER_PAYABLE)
    return render(
        request,
        "factory/earnings.html",
        {"org": org, "lines": lines, "balances": balances, "earned": earned, "shown": EARNINGS_LINES},
        user=user,
    )


@router.get("/earnings.csv")
async def earnings_csv(request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn) -> Response:
    """The organisation's whole statement as CSV (the API's export, for the signed-in web user)."""
    from fastapi.responses import StreamingResponse

    from marketplace.billing.endpoints import statement_csv_rows

    await _org(session, user, org_id)
    return StreamingResponse(
        statement_csv_rows(request.app.state.sessionmaker, org_id, None),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="statement-{org_id}.csv"'},
    )


@router.post("/integrations/webhooks")
async def create_webhook(
    request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    """Register an outbound webhook (owners only; the secret is shown once, in this response, like an API key)."""
    from marketplace.bookings.schemas import WebhookCreate
    from marketplace.notifications import webhooks

    await _org(session, user, org_id)
    form = await request.form()
    try:
        data = WebhookCreate.model_validate({"url": form.get("url"), "events": list(form.getlist("events"))})
        endpoint = await webhooks.create_endpoint(
            session,
            principal=user,
            org_id=org_id,
            url=str(data.url),
            events=list(data.events),
            settings=request.app.state.settings,
        )
    except (ValidationError, AppError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        return redirect(f"/factory/{org_id}/integrations?error={quote(next(iter(field_errors(exc).values())))}")
    return await _integrations_page(request, org_id, session, user, new_secret=endpoint.secret)
