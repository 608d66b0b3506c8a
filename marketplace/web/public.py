"""Public pages (home, search, listing) and account pages (sign in, register, language)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import ValidationError

from listings import service as listings
from listings.errors import ListingsError
from listings.models import AssetKind, Site
from listings.repository import ListingsPageQueries, ListingsRepository
from listings.taxonomy import get_taxonomy
from marketplace.analytics.conformance import first_pass_yield
from marketplace.auth import service as auth_service
from marketplace.auth import two_factor
from marketplace.auth.schemas import RegisterIn
from marketplace.bookings.repository import BookingPageQueries
from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError, RateLimited
from marketplace.core.text import Line
from marketplace.orgs.repository import OrgRepository
from marketplace.web import account_2fa, account_sessions, i18n
from marketplace.web import form_errors as web_form_errors
from marketplace.web.core import (
    BROWSER_LOCALE_COOKIE,
    CsrfChecked,
    WebError,
    WebUser,
    field_errors,
    locale_of,
    redirect,
    render,
    safe_next,
    viewer_tz,
)
from marketplace.web.factory_certificates import listing_certificates

router = APIRouter(include_in_schema=False)


def _config(request: Request) -> listings.ListingsConfig:
    cfg: listings.ListingsConfig = request.app.state.booking_deps.listings_config
    return cfg


def _blocked() -> listings.BlockedTime:
    from marketplace.bookings.deps import blocked_time

    return blocked_time()


def taxonomy_choices(locale: str) -> dict[str, Any]:
    tax = get_taxonomy()
    groups: dict[str, list[tuple[str, str]]] = {}
    for p in sorted(tax.leaves(), key=lambda p: p.code):
        top = p.code.split(".")[0]
        groups.setdefault(tax.name(top, locale), []).append((p.code, tax.name(p.code, locale)))
    materials = sorted(
        ((m.code, m.name_zh if locale == "zh-CN" else m.name_en) for m in tax.materials.values()), key=lambda x: x[1]
    )
    return {"process_groups": groups, "materials": materials}


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, session: SessionDep, user: WebUser) -> HTMLResponse:
    """What the platform does for a factory and for a buyer, the two ways in, a search box and the market's
    figures. The figures count what the public search shows anyway, and only once enough organisations
    stand behind them (the observatory's k: a market of one or two factories is not described by numbers)."""
    queries = ListingsPageQueries(session)
    latest = await queries.latest_published(6)
    figures = await queries.market_figures()
    if figures["factories"] < request.app.state.settings.observatory_min_organisations:
        figures = {}
    ctx = {"latest": latest, "figures": figures, **taxonomy_choices(locale_of(request))}
    return render(request, "public/home.html", ctx, user=user)


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> FileResponse:
    """Browsers ask for /favicon.ico whatever the page links: the same SVG mark, cached for a day."""
    return FileResponse(
        Path(__file__).parent / "static" / "favicon.svg",
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/search", response_class=HTMLResponse)
async def search(
    request: Request,
    session: SessionDep,
    user: WebUser,
    process: Line | None = None,
    material: Line | None = None,
    region: Line | None = None,
    kind: Line | None = None,
    date_from: Annotated[Line | None, Query(alias="from")] = None,
    date_to: Annotated[Line | None, Query(alias="to")] = None,
    minutes: Line | None = None,
    sort: Line = "next_free",
    cursor: Line | None = None,
) -> HTMLResponse:
    from marketplace.core.pagination import decode_cursor, encode_cursor

    locale = locale_of(request)
    errors: dict[str, str] = {}
    q = listings.SearchQuery(
        process=process or None,
        material=material or None,
        region=[region] if region else None,
        kind=kind or None,
        sort=sort if sort in ("price", "next_free") else "next_free",
        limit=20,
    )
    try:
        if date_from or date_to or minutes:
            tz = i18n.zone(viewer_tz(request))  # the decoded cookie, as the page shows times
            start = datetime.combine(date.fromisoformat(date_from), time(0), tz) if date_from else datetime.now(UTC)
            end = (
                (datetime.combine(date.fromisoformat(date_to), time(0), tz) + timedelta(days=1))
                if date_to
                else start + timedelta(days=14)
            )
            q.free_from, q.free_to, q.free_minutes = start, end, int(minutes or 60)
        if cursor and (values := decode_cursor(cursor)):
            key = datetime.fromisoformat(values[1]) if q.sort == "next_free" else values[1]
            q.after = (key, uuid.UUID(values[2]))
        hits, last = await listings.search(session, q, config=_config(request), blocked=_blocked())
    except (ListingsError, AppError, ValueError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        errors = field_errors(exc, locale=locale)
        hits, last = [], None
    next_cursor = None
    if last is not None:
        key = last[0].isoformat() if isinstance(last[0], datetime) else last[0]
        next_cursor = encode_cursor([q.sort, key, str(last[1])])
    params = {
        "process": process or "",
        "material": material or "",
        "region": region or "",
        "kind": kind or "",
        "from": date_from or "",
        "to": date_to or "",
        "minutes": minutes or "",
        "sort": sort,
    }
    ctx = {"hits": hits, "params": params, "errors": errors, "next_cursor": next_cursor, **taxonomy_choices(locale)}
    template = "public/_results.html" if request.headers.get("hx-request") else "public/search.html"
    return render(request, template, ctx, user=user)


@router.get("/listings/{asset_id}", response_class=HTMLResponse)
async def listing(request: Request, asset_id: uuid.UUID, session: SessionDep, user: WebUser) -> HTMLResponse:
    try:
        asset = await listings.visible_asset(session, user, asset_id)
    except ListingsError:
        raise WebError(404, "not_found") from None
    repo = ListingsRepository(session)
    site = await repo.get_site(asset.site_id)
    if site is None:  # the foreign key makes this impossible; never a 500 if it happens
        raise WebError(404, "not_found")
    org = await OrgRepository(session).get(asset.org_id)
    certs = await listing_certificates(session, user, org_id=asset.org_id, site_id=asset.site_id)
    reviews = await BookingPageQueries(session).reviews_of_asset(asset.id, subject_org_id=asset.org_id, limit=20)
    ctx: dict[str, Any] = {"asset": asset, "site": site, "org": org, "certificates": certs, "reviews": reviews}
    site_zone = i18n.zone(site.timezone)
    today = datetime.now(site_zone).date()
    if asset.kind == AssetKind.machine:
        start = datetime.combine(today, time(0), site_zone)
        end = start + timedelta(days=7)
        free = (await listings.machine_free(session, [(asset, site)], start=start, end=end, blocked=_blocked()))[
            asset.id
        ]
        windows = listings.bookable_windows(asset, free)
        ctx["week"] = _week(windows, start, site_zone)
        ctx["fpy"] = await first_pass_yield(session, asset.org_id)
    else:
        ctx["lab_days"] = await listings.lab_capacity(
            session, None, asset.id, first=today, last=today + timedelta(days=13), blocked=_blocked()
        )
    ctx["next_slot"] = await listings.next_free_slot(session, asset, site, config=_config(request), blocked=_blocked())
    return render(request, "public/listing.html", ctx, user=user)


def _week(windows: list[tuple[datetime, datetime]], start: datetime, site_zone: Any) -> list[dict[str, Any]]:
    """Free windows per local day of the site, for the week calendar."""
    days = []
    for i in range(7):
        day_start = (start + timedelta(days=i)).replace(hour=0, minute=0)
        day_end = day_start + timedelta(days=1)
        slots = []
        for s, e in windows:
            s_local, e_local = s.astimezone(site_zone), e.astimezone(site_zone)
            lo, hi = max(s_local, day_start), min(e_local, day_end)
            if lo < hi:
                slots.append((lo, hi))
        days.append({"date": day_start.date(), "slots": slots})
    return days


# -- account ---------------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, user: WebUser, next: Line = "/") -> HTMLResponse:
    return render(request, "account/login.html", {"next": _safe_next(next), "errors": {}}, user=user)


def _safe_next(target: str) -> str:
    return safe_next(target)


def _login_errors(request: Request, exc: AppError) -> dict[str, str]:
    """A refused sign-in in the visitor's language, with how long to wait (marketplace/core/ratelimit.py)."""
    return field_errors(exc, locale=locale_of(request), aliases={"current_password": "password"})


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    session: SessionDep,
    _csrf: CsrfChecked,
    email: Annotated[Line, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[Line, Form()] = "/",
) -> Response:
    if not email.strip() or not password:  # nothing to check: say which field is missing, count no attempt
        required = i18n.translations(locale_of(request)).gettext(web_form_errors.REQUIRED)
        missing = {name: required for name, value in (("email", email.strip()), ("password", password)) if not value}
        ctx = {"next": _safe_next(next), "errors": missing, "email": email}
        return render(request, "account/login.html", ctx, status=422)
    limiter = request.app.state.login_limiter
    ip = request.client.host if request.client else "unknown"
    try:
        attempt = await limiter.begin(ip=ip, account=email)  # failures only: see marketplace/core/ratelimit.py
        user = await auth_service.authenticate(session, email, password)
        if await two_factor.is_enabled(session, user_id=user.id):
            # The attempt stays counted as a failure until the code is right too (see account_2fa.py).
            return account_2fa.start_second_step(request, user_id=user.id, next_url=_safe_next(next))
        await limiter.succeeded(attempt)
    except AppError as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        page = render(
            request,
            "account/login.html",
            {"next": _safe_next(next), "errors": _login_errors(request, exc), "email": email},
            status=exc.status_code,
        )
        if isinstance(exc, RateLimited):
            page.headers["Retry-After"] = str(exc.extra.get("retry_after", 1))
        return page
    await account_sessions.sign_in(request, session, user=user)  # a fresh stored session and CSRF token
    return redirect(_safe_next(next))


@router.post("/logout")
async def logout(request: Request, session: SessionDep, _csrf: CsrfChecked) -> Response:
    await account_sessions.sign_out(request, session)  # ends the stored session, not just this cookie
    return redirect("/")


@router.get("/register", response_class=HTMLResponse)
async def register_page(request: Request, user: WebUser, role: Line | None = None) -> HTMLResponse:
    form = {f"role_{role}": "1"} if role in ("supplier", "buyer", "programme") else {}  # the home page's two ways in
    return render(request, "account/register.html", {"errors": {}, "form": form}, user=user)


# Where the registration form shows each field of RegisterIn (the organisation's fields are nested in "org").
_REGISTER_FIELDS = {
    "email": "email",
    "password": "password",
    "full_name": "full_name",
    "org.name": "org_name",
    "org.roles": "roles",
    "org.country": "country",
    "org.legal_name": "legal_name",
    "org.uscc": "uscc",
    "uscc": "uscc",
    "country": "country",
    "name": "org_name",
    "roles": "roles",
    "legal_name": "legal_name",
}


PROGRAMME_ALONE = web_form_errors.N_(
    "A voucher programme's organisation has no other role: register it on its own, without supplier or buyer."
)


@router.post("/register", response_class=HTMLResponse)
async def register(request: Request, session: SessionDep, _csrf: CsrfChecked) -> Response:
    form = dict(await request.form())
    roles = [r for r in ("supplier", "buyer", "programme") if form.get(f"role_{r}")]
    payload = {
        "email": form.get("email", ""),
        "password": form.get("password", ""),
        "full_name": form.get("full_name", ""),
        "locale": form.get("locale") or locale_of(request),
        "org": {
            "name": form.get("org_name", ""),
            "roles": roles,
            "country": form.get("country", ""),
            "legal_name": form.get("legal_name") or None,
            "uscc": form.get("uscc") or None,
        },
    }
    try:
        limiter = request.app.state.auth_rate_limiter
        ip = request.client.host if request.client else "unknown"
        await limiter.hit("register", f"ip:{ip}")
        data = RegisterIn.model_validate(payload)
        user, _ = await auth_service.register(session, data)
    except (ValidationError, AppError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        errors = web_form_errors.placed(
            field_errors(exc, locale=locale_of(request), aliases=_REGISTER_FIELDS), _REGISTER_FIELDS.values()
        )
        if "programme" in roles and len(roles) > 1:  # the schema refuses the mix; say why, not "not valid"
            errors["roles"] = i18n.translations(locale_of(request)).gettext(PROGRAMME_ALONE)
        status = exc.status_code if isinstance(exc, AppError) else 422
        return render(request, "account/register.html", {"errors": errors, "form": form}, status=status)
    await account_sessions.sign_in(request, session, user=user)
    return redirect("/dashboard")


@router.post("/lang")
async def set_language(
    request: Request,
    _csrf: CsrfChecked,
    locale: Annotated[Line, Form()],
    next: Annotated[Line, Form()] = "/",
) -> Response:
    """The header's language switch: this browser's choice only, kept in a cookie of its own (it outlives
    signing in and out). The account's saved language, used for e-mails and by browsers that have made no
    choice, is edited on the account page (``/account``); an unknown locale changes nothing."""
    response = redirect(_safe_next(next))
    if locale in i18n.LOCALES:
        response.set_cookie(
            BROWSER_LOCALE_COOKIE,
            locale,
            max_age=365 * 24 * 3600,
            httponly=True,
            samesite="lax",
            secure=request.app.state.settings.environment == "production",
        )
    return response


async def sites_by_id(session: SessionDep, ids: list[uuid.UUID]) -> dict[uuid.UUID, Site]:
    return await ListingsRepository(session).sites_by_ids(ids)
