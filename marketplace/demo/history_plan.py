"""Which past bookings the demo's history holds (written by :mod:`marketplace.demo.history`).

* **The demo accounts' months**: twenty weeks of the demo factory's 5-axis cell and lathe and the demo lab's
  tensile test, booked by the demo buyer, a few buyers of the generated market and (for the lab) the demo
  factory, in every terminal state, so the factory's dashboard chart, earnings, invoices and reviews have weeks
  of data.
* **The observatory's months**: in every region x process family of the generated market with at least
  ``MIN_SUPPLIERS`` suppliers (the observatory's k), bookings by several of the market's buyers in each of the
  last six months and the coming days of this month, so those cells are shown (not suppressed) with real
  utilisation and GMV.

Deterministic: one ``random.Random(HISTORY_SEED)``, times relative to ``now`` rounded down to the UTC day."""

from __future__ import annotations

import random
import time as _time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from listings.models import Asset
from marketplace.bookings.deps import booking_deps
from marketplace.core.settings import Settings
from marketplace.demo import history_repository as repo
from marketplace.demo.catalogue import SEED_EMAIL_DOMAIN
from marketplace.demo.history import HistoryWriter, Job
from payments.invoices import InvoiceGateway

if TYPE_CHECKING:
    from marketplace.demo.activity import DemoCast
    from marketplace.demo.activity_market import DemoListings

HISTORY_SEED = 16
WEEKS = 20  # the demo accounts' history
MONTHS = 6  # the observatory's history: this month and the five before
MIN_SUPPLIERS = 3
OBSERVATORY_CELLS = 5  # region x family cells filled (the busiest ones)
JOBS_PER_CELL_MONTH = 16
PAST_WEIGHTS = (("settled", 70), ("unpaid", 4), ("cancelled", 8), ("declined", 6), ("expired", 5), ("resolved", 7))


@dataclass
class HistorySummary:
    bookings: dict[str, int] = field(default_factory=dict)
    invoices: int = 0
    journals: int = 0
    reviews: int = 0
    observatory_cells: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        states = ", ".join(f"{n} {s}" for s, n in sorted(self.bookings.items()))
        return (
            f"demo history: {sum(self.bookings.values())} bookings ({states}), {self.invoices} invoices,"
            f" {self.journals} journals, {self.reviews} reviews, {self.observatory_cells} observatory cells"
            f" in {self.seconds:.1f} s"
        )


def _asset(asset: Asset, timezone: str) -> dict[str, Any]:
    machine = asset.kind == "machine"
    return {
        "id": asset.id,
        "org_id": asset.org_id,
        "kind": str(asset.kind),
        "title": asset.title,
        "currency": asset.currency,
        "unit_price": int((asset.hourly_rate if machine else asset.price_per_sample) or 0),
        "setup_fee": int(asset.setup_fee or 0),
        "setup_minutes": int(asset.setup_minutes or 0),
        "buffer_minutes": int(asset.buffer_minutes or 0),
        "cancellation_policy": dict(asset.cancellation_policy or {}),
        "timezone": timezone,
        "turnaround_days": int(asset.turnaround_days or 3),
    }


@dataclass
class _Planner:
    rng: random.Random
    anchor: datetime  # today, 00:00 UTC
    taken: dict[uuid.UUID, list[tuple[datetime, datetime]]] = field(default_factory=lambda: defaultdict(list))
    jobs: list[Job] = field(default_factory=list)

    def outcome(self, end: datetime) -> str:
        age = (self.anchor - end).days
        choices = [(o, w) for o, w in PAST_WEIGHTS if age >= {"unpaid": 20, "resolved": 9}.get(o, 4)]
        return self.rng.choices([o for o, _ in choices], weights=[w for _, w in choices])[0]

    def free(self, a: dict[str, Any], start: datetime, end: datetime) -> bool:
        lo = start - timedelta(minutes=a["setup_minutes"])
        hi = end + timedelta(minutes=a["buffer_minutes"])
        if any(lo < h and hi > s for s, h in self.taken[a["id"]]):
            return False
        self.taken[a["id"]].append((lo, hi))
        return True

    def machine(
        self, a: dict[str, Any], buyer: uuid.UUID, *, start: datetime, hours: float, by: uuid.UUID | None
    ) -> None:
        end = start + timedelta(minutes=int(hours * 60) // 30 * 30)
        if end > self.anchor - timedelta(days=4) and start < self.anchor + timedelta(days=1):
            return  # the last days belong to the live activity (and to the timers that have not run yet)
        if start >= self.anchor + timedelta(days=1):
            nxt = a.get("next_free_at")
            if nxt is not None and start - timedelta(minutes=a["setup_minutes"]) < nxt + timedelta(days=1):
                return  # keep the listing's stored next free slot true
            outcome = "confirmed" if self.rng.random() < 0.6 else "confirmed_open"
        else:
            outcome = self.outcome(end)
        if self.free(a, start, end):
            self.jobs.append(Job(a, buyer, start, end, outcome, booked_by=by))

    def lab(self, a: dict[str, Any], buyer: uuid.UUID, *, day: date, samples: int, by: uuid.UUID | None) -> None:
        start, end = lab_window(day, a["timezone"], a["turnaround_days"])
        if end > self.anchor - timedelta(days=4):
            return
        self.jobs.append(Job(a, buyer, start, end, self.outcome(end), booked_by=by, samples=samples))


def _demo_jobs(p: _Planner, *, cast: DemoCast, listings: DemoListings, buyers: list[uuid.UUID]) -> None:
    """Twenty weeks of the demo factory's cell and lathe and the demo lab's tensile test."""
    rng = p.rng
    demo_buyer, factory = cast.org_of(cast.buyer), cast.org_of(cast.factory)
    cell, lathe = _asset(listings.cell, "Asia/Shanghai"), _asset(listings.lathe, "Asia/Shanghai")
    tensile = _asset(listings.tensile, "Asia/Shanghai")
    others = buyers[:4]

    def who(share: float) -> tuple[uuid.UUID, uuid.UUID | None]:
        if not others or rng.random() < share:
            return demo_buyer, cast.buyer.user_id
        return rng.choice(others), None

    for week in range(WEEKS, 0, -1):
        monday = p.anchor - timedelta(days=p.anchor.weekday(), weeks=week)
        for day in sorted(rng.sample(range(7), 3)):  # the cell runs around the clock
            buyer, by = who(0.5)
            start = monday + timedelta(days=day, hours=rng.randrange(0, 14), minutes=rng.choice((0, 30)))
            p.machine(cell, buyer, start=start, hours=rng.uniform(4, 10), by=by)
        for day in sorted(rng.sample(range(5), 2)):  # the lathe: weekdays 08:00-18:00 in Suzhou (00-10 UTC)
            buyer, by = who(0.6)
            start = monday + timedelta(days=day, hours=rng.randrange(0, 4))
            p.machine(lathe, buyer, start=start, hours=rng.uniform(3, 6), by=by)
        for day in rng.sample(range(5), rng.choice((1, 2))):
            if rng.random() < 0.3:
                buyer, by = factory, cast.factory.user_id  # the factory has its own parts tested
            else:
                buyer, by = who(0.6)
            p.lab(tensile, buyer, day=(monday + timedelta(days=day)).date(), samples=rng.randint(3, 12), by=by)


def _observatory_jobs(p: _Planner, machines: list[dict[str, Any]], buyers: list[uuid.UUID]) -> int:
    """Bookings in the busiest region x family cells of the market, by at least three buyers a month."""
    rng = p.rng
    cells: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for m in machines:
        cells[(m["region_code"], m["family"])].append(m)
    chosen = sorted(
        (k for k, ms in cells.items() if len({m["org_id"] for m in ms}) >= MIN_SUPPLIERS),
        key=lambda k: (-len({m["org_id"] for m in cells[k]}), -len(cells[k]), k),
    )[:OBSERVATORY_CELLS]
    this_month = p.anchor.date().replace(day=1)
    for key in chosen:
        ms = cells[key]
        for back in range(MONTHS - 1, -1, -1):
            first = _months_before(this_month, back)
            days = (_months_before(first, -1) - first).days
            order = rng.sample(buyers, len(buyers))
            for n in range(JOBS_PER_CELL_MONTH):
                day = first + timedelta(days=rng.randrange(days))
                start = datetime.combine(day, datetime.min.time(), UTC) + timedelta(
                    hours=1, minutes=rng.choice((0, 30))
                )
                listed = [m for m in ms if m["published_at"] < start - timedelta(days=1)]
                if not listed:
                    continue
                m = rng.choice(listed)
                p.machine(m, order[n % len(order)], start=start, hours=rng.uniform(12, 60), by=None)
    return len(chosen)


def lab_window(day: date, tz: str, turnaround_days: int) -> tuple[datetime, datetime]:
    """(drop-off at 09:00, results due at 16:00 ``turnaround_days`` working days later), in the site's zone."""
    zone = ZoneInfo(tz)
    due = day
    left = turnaround_days
    while left > 0:
        due += timedelta(days=1)
        if due.weekday() < 5:
            left -= 1
    return datetime.combine(day, time(9), zone), datetime.combine(due, time(16), zone)


def _months_before(first: date, n: int) -> date:
    index = first.year * 12 + first.month - 1 - n
    return date(index // 12, index % 12 + 1, 1)


async def seed_history(
    session: AsyncSession, *, cast: DemoCast, listings: DemoListings, settings: Settings, now: datetime
) -> HistorySummary | None:
    """Write the demo's past months (see the module docstring) into the caller's transaction. Returns ``None``
    (nothing written) when bookings are paid by card: the history is an invoice-and-transfer history."""
    started = _time.perf_counter()
    gateway = booking_deps(settings).payments
    if not isinstance(gateway, InvoiceGateway):
        return None
    anchor = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    demo_assets = [listings.cell.id, listings.lathe.id, listings.tensile.id]
    await repo.backdate_listings(
        session, demo_assets, created=anchor - timedelta(weeks=WEEKS + 6), published=anchor - timedelta(weeks=WEEKS + 5)
    )
    buyers = await repo.buyer_organisations(session, email_domain=SEED_EMAIL_DOMAIN)
    demo_orgs = {cast.org_of(cast.factory), cast.org_of(cast.lab), cast.org_of(cast.buyer)}
    machines = [
        {**m, "unit_price": int(m["hourly_rate"]), "setup_fee": int(m["setup_fee"] or 0), "kind": "machine",
         "setup_minutes": int(m["setup_minutes"] or 0), "buffer_minutes": int(m["buffer_minutes"] or 0),
         "cancellation_policy": dict(m["cancellation_policy"] or {})}
        for m in await repo.published_machines(session, country="CN") if m["org_id"] not in demo_orgs
    ]  # fmt: skip
    planner = _Planner(rng=random.Random(HISTORY_SEED), anchor=anchor)
    _demo_jobs(planner, cast=cast, listings=listings, buyers=buyers)
    cells = _observatory_jobs(planner, machines, buyers) if len(buyers) >= MIN_SUPPLIERS else 0
    writer = HistoryWriter(
        session=session,
        config=gateway.config,
        commission_bp=settings.commission_rate_bp,
        now=now,
        rng=random.Random(HISTORY_SEED + 1),
        admin_user_id=cast.admin.user_id,
    )
    for job in sorted(planner.jobs, key=lambda j: (j.start, str(j.asset["id"]))):
        writer.write(job)
    await writer.add_all()
    return HistorySummary(
        bookings=dict(Counter(b.status for b in writer.bookings)),
        invoices=len(writer.invoices),
        journals=sum(1 for j in writer.journals if any(x.amount for x in j.lines)),
        reviews=len(writer.reviews),
        observatory_cells=cells,
        seconds=_time.perf_counter() - started,
    )
