"""Factory (supplier) pages: the dashboard with the utilisation chart, and what every factory page shares
(the supplier check, the listings configuration). The other pages: ``factory_listings`` (sites, the listing
wizard, availability), ``factory_bookings`` (incoming bookings), ``factory_integrations`` (iCal links, API
keys, webhooks, earnings). Every action calls the same service as the API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from listings import availability as av
from listings import service as listings
from listings.models import Asset, AssetKind, Site
from listings.repository import ListingsRepository
from marketplace.bookings import service as bookings
from marketplace.bookings.repository import BookingPageQueries
from marketplace.core.db import SessionDep
from marketplace.core.principal import Principal
from marketplace.orgs.models import Organisation
from marketplace.web import charts
from marketplace.web.core import SignedIn, WebError, locale_of, member_org, render

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
    machines = [a for a in assets if a.kind == AssetKind.machine and a.status != "archived"]
    chart = await utilisation_chart(session, machines, sites=sites, locale=locale_of(request)) if machines else None
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
    session: SessionDep, machines: list[Asset], *, sites: dict[uuid.UUID, Site], locale: str
) -> str:
    """Booked vs available hours per week for each machine: the last 4 weeks and the next 4."""
    monday = datetime.now(UTC).date() - timedelta(days=datetime.now(UTC).weekday())
    weeks = [monday + timedelta(weeks=i) for i in range(-4, 4)]
    start = datetime.combine(weeks[0], time(0), UTC)
    end = datetime.combine(weeks[-1] + timedelta(days=7), time(0), UTC)
    repo = ListingsRepository(session)
    excs = await repo.exceptions_for([m.id for m in machines], start, end)
    rows = await BookingPageQueries(session).booked_intervals([m.id for m in machines], start, end)
    series = []
    for m in machines[:12]:
        site = sites.get(m.site_id)
        open_time = av.free_intervals(
            listings.weekly_windows(m),
            site.timezone if site else "UTC",
            exceptions=listings.exception_ranges(excs[m.id]),
            blocked=[],
            start=start,
            end=end,
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
