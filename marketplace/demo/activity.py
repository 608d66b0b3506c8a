"""Activity for the demo market: what ``marketplace run`` adds after the demo accounts and the generated market,
so every page and admin queue shows what it is for (docs/seeding.md, "The demo's activity").

Everything goes through the service functions the API endpoints call, with ``Principal`` objects loaded the way
the auth dependencies load them: listings are created, submitted and approved (audited), bookings are placed
and moved through the state machine (timeline events, notifications, ledger postings and invoices are the real
side effects), bank transfers are recorded by the admin, a verification is submitted, a listing is flagged, and
a request gets a quote and a counter-offer. Nothing is inserted behind the services' backs, so the ledger
balances and every audit and timeline row is real. The caller owns the transaction (``marketplace run`` commits
once, after the demo accounts and the market).

Times are relative to "now" (bookings can only be placed in the future), so the shape is deterministic while
the dates move with the clock: the bookings that have been started lie inside the next 24 hours (suppliers may
check in 24 hours ahead) on a machine that runs around the clock.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.auth.deps import _principal_for_user
from marketplace.auth.repository import UserRepository
from marketplace.core.errors import NotFound
from marketplace.core.principal import Principal
from marketplace.core.settings import Settings
from marketplace.demo.accounts import DEMO_ACCOUNTS, database_is_empty, seed_demo
from marketplace.demo.activity_bookings import run_bookings
from marketplace.demo.activity_market import DemoListings, negotiation, pending_verification, publish_listings
from marketplace.demo.activity_vouchers import voucher_programme
from marketplace.demo.history_plan import HistorySummary, seed_history

__all__ = ["ActivitySummary", "DemoCast", "load_cast", "load_demo", "seed_activity"]


@dataclass
class DemoCast:
    """The demo's people as the services see them (one principal per demo account, and the admin)."""

    factory: Principal
    lab: Principal
    buyer: Principal
    programme: Principal
    admin: Principal

    @staticmethod
    def org_of(principal: Principal) -> uuid.UUID:
        return next(iter(principal.memberships))


@dataclass
class ActivitySummary:
    bookings: dict[str, int] = field(default_factory=dict)
    invoices_paid: int = 0
    listings: int = 0
    seconds: float = 0.0
    history: HistorySummary | None = None

    def line(self) -> str:
        states = ", ".join(f"{n} {s}" for s, n in sorted(self.bookings.items()))
        live = (
            f"demo activity: {self.listings} listings, bookings ({states}), {self.invoices_paid} invoices paid, "
            f"1 pending verification, 1 open flag, 1 open negotiation, 1 voucher programme in {self.seconds:.1f} s"
        )
        return live if self.history is None else f"{live}\n{self.history.line()}"


async def _principal(session: AsyncSession, email: str) -> Principal:
    user = await UserRepository(session).get_by_email(email)
    principal = None if user is None else await _principal_for_user(session, user.id, admins_need_two_factor=False)
    if principal is None:
        raise NotFound(f"The demo account {email} does not exist.")
    return principal


async def load_cast(session: AsyncSession, *, admin_email: str) -> DemoCast:
    factory, lab, buyer, programme = [await _principal(session, acc.email) for acc in DEMO_ACCOUNTS]
    return DemoCast(
        factory=factory, lab=lab, buyer=buyer, programme=programme, admin=await _principal(session, admin_email)
    )


async def seed_activity(
    session: AsyncSession, *, settings: Settings, admin_email: str, now: datetime | None = None
) -> ActivitySummary:
    """Add the demo's activity (see the module docstring); call once, after ``seed_demo`` and ``ensure_admin``,
    in the same transaction (``marketplace run`` does so only for an empty database)."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    cast = await load_cast(session, admin_email=admin_email)
    listings: DemoListings = await publish_listings(session, cast=cast, settings=settings)
    summary = ActivitySummary(listings=listings.count)
    # The past months first: their invoices take the lower numbers, as they were issued first.
    summary.history = await seed_history(session, cast=cast, listings=listings, settings=settings, now=now)
    summary.bookings, summary.invoices_paid = await run_bookings(
        session, cast=cast, listings=listings, settings=settings, now=now
    )
    await pending_verification(session)
    await negotiation(session, cast=cast, listings=listings, now=now)
    await voucher_programme(session, cast=cast, today=now.date())
    summary.seconds = time.perf_counter() - started
    return summary


async def load_demo(session: AsyncSession, *, settings: Settings, market: bool = True) -> ActivitySummary | None:
    """What ``marketplace run`` loads: the admin (always ensured), and into an empty database only the demo
    accounts, the generated market (``market``) and the demo's activity. Returns the activity's summary, or
    ``None`` when the database was not empty (nothing added). The caller commits."""
    from marketplace.auth.service import ensure_admin
    from marketplace.demo.seeding import seed_market

    empty = await database_is_empty(session)
    await ensure_admin(session, email=settings.demo_admin_email, password=settings.demo_admin_password)
    if not empty:
        return None
    await seed_demo(session)
    if market:  # a small, browsable market in real industrial clusters (see docs/seeding.md)
        await seed_market(session, suppliers=40, labs=8, buyers=10, seed=2027)
    return await seed_activity(session, settings=settings, admin_email=settings.demo_admin_email)
