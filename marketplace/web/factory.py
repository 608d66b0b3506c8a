"""Factory (supplier) pages: the dashboard with the utilisation chart, and what every factory page shares
(the supplier check, the listings configuration). The other pages: ``factory_listings`` (sites, the listing
wizard, availability), ``factory_bookings`` (incoming bookings), ``factory_integrations`` (iCal links, API
keys, webhooks, earnings). Every action calls the same service as the API."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from babel.dates import format_skeleton
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from listings import service as listings
from listings.models import Asset
from listings.repository import ListingsRepository
from marketplace.analytics import factory as analytics
from marketplace.analytics.conformance import first_pass_yield
from marketplace.bookings import service as bookings
from marketplace.bookings.repository import BookingPageQueries
from marketplace.core.db import SessionDep
from marketplace.core.principal import Principal
from marketplace.orgs.models import Organisation
from marketplace.web import charts, i18n
from marketplace.web.core import SignedIn, WebError, locale_of, member_org, render
from marketplace.web.form_errors_service import message_from_code
from payments.money import to_major

router = APIRouter(prefix="/factory/{org_id}", include_in_schema=False)


async def supplier_org(session: SessionDep, user: Principal, org_id: uuid.UUID) -> Organisation:
    """The supplier organisation; anyone else (a buyer included) may not open factory pages."""
    return await member_org(session, user, org_id, role="supplier")


async def owned_asset(session: SessionDep, org_id: uuid.UUID, asset_id: uuid.UUID) -> Asset:
    asset = await ListingsRepository(session).get_asset(asset_id)
    if asset is None or asset.org_id != org_id:
        raise WebError(404, "not_found")
    return asset


def listings_config(request: Request) -> listings.ListingsConfig:
    cfg: listings.ListingsConfig = request.app.state.booking_deps.listings_config
    return cfg


def blocked_time() -> listings.BlockedTime:
    return bookings.BookingsBlockedTime()


@router.get("", response_class=HTMLResponse)
async def dashboard(request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn) -> HTMLResponse:
    org = await supplier_org(session, user, org_id)
    repo = ListingsRepository(session)
    assets = await repo.assets_of_org(org_id, None, after=None, limit=200)
    sites = {s.id: s for s in await repo.sites_of_org(org_id)}
    queries = BookingPageQueries(session)
    waiting = await queries.awaiting_acceptance(org_id)
    now = datetime.now(UTC)
    today = await queries.running_soon(org_id, now=now, until=now + timedelta(hours=24))
    titles = {a.id: a.title for a in assets}
    charts_html = await utilisation_charts(request, session, user, org_id=org_id)
    earnings_html = await earnings_chart(request, session, user, org_id=org_id)
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
            "util_charts": charts_html,
            "earnings_chart": earnings_html,
            "fpy": await first_pass_yield(session, org_id),
            "error": message_from_code(request.query_params.get("error"), locale=locale_of(request)),
        },
        user=user,
    )


async def utilisation_charts(request: Request, session: SessionDep, user: Principal, *, org_id: uuid.UUID) -> str:
    """Share of capacity booked per listing and week, the last four weeks and the next four: machine hours and
    lab samples, one chart each (the figures of the analytics API); empty when nothing is listed."""
    monday = datetime.now(UTC).date() - timedelta(days=datetime.now(UTC).weekday())
    weeks = [monday + timedelta(weeks=i) for i in range(-4, 4)]
    out = await analytics.factory_analytics(
        session=session,
        principal=user,
        settings=request.app.state.settings,
        org_id=org_id,
        start=weeks[0],
        end=weeks[-1] + timedelta(days=6),
        granularity="week",
    )
    use = analytics.weekly_use(out)
    locale = locale_of(request)
    parts = [
        charts.utilisation_chart(
            [charts.Series(u.title, u.points) for u in use if u.lab == lab], weeks, lab=lab, locale=locale
        )
        for lab in (False, True)
    ]
    return "".join(parts)


EARNINGS_MONTHS = 6


async def earnings_chart(request: Request, session: SessionDep, user: Principal, *, org_id: uuid.UUID) -> str | None:
    """Earnings per month (net of commission, as the ledger booked them at settlement) for the last six months,
    in the factory's main currency; None before anything was earned."""
    today = datetime.now(UTC).date()
    months = [_month_start(today, back) for back in range(EARNINGS_MONTHS - 1, -1, -1)]
    out = await analytics.factory_analytics(
        session=session,
        principal=user,
        settings=request.app.state.settings,
        org_id=org_id,
        start=months[0],
        end=today,
        granularity="month",
    )
    per_month: dict[date, dict[str, int]] = {b.start: b.organisation.earnings for b in out.buckets}
    totals: dict[str, int] = {}
    for earned in per_month.values():
        for cur, amount in earned.items():
            totals[cur] = totals.get(cur, 0) + amount
    if not any(totals.values()):
        return None
    currency = max(totals, key=lambda cur: totals[cur])
    locale = locale_of(request)
    name = i18n.babel_name(locale)
    points = [
        (format_skeleton("yMMM", m, locale=name), float(to_major(per_month.get(m, {}).get(currency, 0), currency)))
        for m in months
    ]
    title = i18n.translations(locale).gettext("Earnings per month")
    return charts.bars_svg(points, title, currency, locale=locale)


def _month_start(today: date, back: int) -> date:
    """The first day of the month ``back`` months before ``today``'s."""
    index = today.year * 12 + today.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)
