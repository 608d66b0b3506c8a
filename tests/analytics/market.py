"""A small random market inserted straight into the tables, plus a reference computation in plain Python."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.ext.asyncio import AsyncSession

from listings.models import Asset, AvailabilityException, Site
from marketplace.analytics.service import next_month, offered_hours, utc_midnight
from marketplace.bookings.models import Booking
from marketplace.orgs.models import Organisation
from marketplace.requests.models import BuyerRequest
from payments.models import Journal, JournalEntry

REGIONS = ("320505", "320506", "440305")
FAMILIES = ("machining", "casting", "welding")
PLANS = (
    [{"weekday": d, "start": "08:00", "end": "17:00"} for d in range(5)],
    [{"weekday": d, "start": "00:00", "end": "00:00"} for d in range(7)],
    [{"weekday": d, "start": "22:00", "end": "06:00"} for d in range(6)],
)
TZS = ("Asia/Shanghai", "Europe/Berlin")
STATUSES = ("held", "requested", "confirmed", "in_progress", "completed", "settled", "cancelled", "declined",
            "expired", "disputed", "resolved")  # fmt: skip
COUNTED = {"held", "requested", "confirmed", "in_progress", "completed", "settled", "disputed", "resolved"}
POLICY = {"full_refund_hours": 72, "partial_refund_hours": 24, "partial_refund_percent": 50}


@dataclass
class Market:
    month: date
    machines: list[dict[str, Any]] = field(default_factory=list)
    bookings: list[dict[str, Any]] = field(default_factory=list)
    payments: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)


async def build(session: AsyncSession, rng: random.Random, month: date) -> Market:
    m0 = utc_midnight(month)
    market = Market(month)
    suppliers = []
    for i in range(rng.randint(1, 5)):
        org = Organisation(name=f"S{i}", country="CN", roles=["supplier"], verification_status="verified")
        session.add(org)
        await session.flush()
        region = rng.choice(REGIONS)
        tz = rng.choice(TZS)
        site = Site(org_id=org.id, name="p", address="a", country="CN", region_code=region, latitude=31.0,
                    longitude=120.0, timezone=tz)  # fmt: skip
        session.add(site)
        await session.flush()
        for j in range(rng.randint(1, 2)):
            family = rng.choice(FAMILIES)
            plan = rng.choice(PLANS)
            status = rng.choice(["published", "published", "published", "suspended"])
            published = m0 + timedelta(days=rng.randint(-60, 40))
            asset = Asset(org_id=org.id, site_id=site.id, kind="machine", title=f"M{i}.{j}", status=status,
                          process_codes=[f"{family}.x.y"], currency="CNY", hourly_rate=1000, slot_minutes=30,
                          min_booking_minutes=60, weekly_plan=plan, published_at=published)  # fmt: skip
            session.add(asset)
            await session.flush()
            excs = []
            if rng.random() < 0.3:
                s = m0 + timedelta(hours=rng.randint(-48, 24 * 30))
                e = s + timedelta(hours=rng.randint(1, 96))
                available = rng.random() < 0.4
                session.add(AvailabilityException(asset_id=asset.id, starts_at=s, ends_at=e, available=available))
                excs.append((s, e, available))
            market.machines.append({"id": asset.id, "org": org.id, "region": region, "family": family, "plan": plan,
                                    "tz": tz, "status": status, "published": published, "excs": excs})  # fmt: skip
        suppliers.append(org.id)
    buyers = []
    for i in range(rng.randint(1, 4)):
        org = Organisation(name=f"B{i}", country="CN", roles=["buyer"], uscc=None)
        session.add(org)
        await session.flush()
        buyers.append(org.id)
    for _ in range(rng.randint(0, 4)):
        created = m0 + timedelta(hours=rng.randint(-24, 24 * 31))
        req = BuyerRequest(buyer_org_id=rng.choice(buyers), kind="machine", process_code=f"{rng.choice(FAMILIES)}.x",
                           duration_minutes=60, earliest_start=created, deadline=created + timedelta(days=5),
                           currency="CNY", status=rng.choice(["open", "booked", "closed", "expired"]),
                           created_at=created)  # fmt: skip
        session.add(req)
        await session.flush()
        market.requests.append({"id": req.id, "created": created, "status": req.status, "buyer": req.buyer_org_id,
                                "family": req.process_code.split(".")[0], "first": None})  # fmt: skip
    await session.flush()
    for mach in market.machines:
        cursor = m0 - timedelta(days=5)
        for _ in range(rng.randint(0, 6)):
            start = cursor + timedelta(hours=rng.randint(0, 120))
            end = start + timedelta(hours=rng.randint(1, 40))
            cursor = end
            buyer = rng.choice(buyers)
            status = rng.choice(STATUSES)
            created = start - timedelta(hours=rng.randint(1, 200))
            request_row = rng.choice(market.requests) if market.requests and rng.random() < 0.3 else None
            bk = Booking(asset_id=mach["id"], kind="machine", supplier_org_id=mach["org"], buyer_org_id=buyer,
                         status=status, start_at=start, end_at=end, period=Range(start, end, bounds="[)"),
                         currency="CNY", unit_price=1000, amount=1000, cancellation_policy=POLICY,
                         site_timezone=mach["tz"], created_at=created,
                         request_id=request_row["id"] if request_row else None)  # fmt: skip
            session.add(bk)
            await session.flush()
            if request_row is not None and (request_row["first"] is None or created < request_row["first"]):
                request_row["first"] = created
            market.bookings.append({"id": bk.id, "machine": mach, "buyer": buyer, "status": status, "start": start,
                                    "end": end})  # fmt: skip
            if rng.random() < 0.5:
                paid_at = m0 + timedelta(hours=rng.randint(-48, 24 * 31))
                amount = rng.randint(1, 10_000)
                kind, account = rng.choice(
                    [("payment_received", "clearing_bank"), ("card_captured", "clearing_stripe")]
                )
                journal = Journal(key=f"t:{bk.id}", kind=kind, booking_id=bk.id, created_at=paid_at)
                session.add(journal)
                await session.flush()
                session.add(
                    JournalEntry(journal_id=journal.id, account=account, org_id=None, currency="CNY", amount=amount)
                )
                session.add(JournalEntry(journal_id=journal.id, account="customer_funds_held", org_id=None,
                                         currency="CNY", amount=-amount))  # fmt: skip
                market.payments.append({"machine": mach, "buyer": buyer, "at": paid_at, "amount": amount})
    await session.flush()
    return market


def reference(market: Market) -> dict[tuple[str, str], dict[str, Any]]:
    """The month's cells computed directly from the generated raw rows."""
    m0, m1 = utc_midnight(market.month), utc_midnight(next_month(market.month))
    out: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"listed_hours": 0.0, "booked_hours": 0.0, "bookings": 0, "requests": 0, "requests_booked": 0,
                 "gmv": 0, "suppliers": set(), "buyers": set(), "active_s": set(), "active_b": set(), "minutes": []}
    )  # fmt: skip
    for mach in market.machines:
        if mach["status"] == "published" and mach["published"] < m1:
            cell = out[(mach["region"], mach["family"])]
            cell["listed_hours"] += offered_hours(mach["plan"], mach["tz"], exceptions=mach["excs"], start=m0, end=m1)
            cell["suppliers"].add(mach["org"])
    for b in market.bookings:
        if b["status"] not in COUNTED or not (b["start"] < m1 and b["end"] > m0):
            continue
        mach = b["machine"]
        cell = out[(mach["region"], mach["family"])]
        cell["booked_hours"] += (min(b["end"], m1) - max(b["start"], m0)).total_seconds() / 3600
        cell["bookings"] += b["start"] >= m0
        for k, v in (("suppliers", mach["org"]), ("active_s", mach["org"]), ("buyers", b["buyer"]),
                     ("active_b", b["buyer"])):  # fmt: skip
            cell[k].add(v)
    for p in market.payments:
        if m0 <= p["at"] < m1:
            cell = out[(p["machine"]["region"], p["machine"]["family"])]
            cell["gmv"] += p["amount"]
            cell["suppliers"].add(p["machine"]["org"])
            cell["buyers"].add(p["buyer"])
    for r in market.requests:
        if m0 <= r["created"] < m1:
            cell = out[("CN", r["family"])]  # buyers without sites or USCC fall back to their country
            cell["requests"] += 1
            cell["requests_booked"] += r["status"] == "booked"
            cell["buyers"].add(r["buyer"])
            if r["first"] is not None:  # minutes from the request to its first booking
                cell["minutes"].append((r["first"] - r["created"]).total_seconds() / 60)
    return dict(out)


def reference_flows(market: Market) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The month's flows (buyer region, supplier region, process family) computed directly from the raw rows."""
    m0, m1 = utc_midnight(market.month), utc_midnight(next_month(market.month))
    out: dict[tuple[str, str, str], dict[str, Any]] = defaultdict(
        lambda: {"bookings": 0, "booked_hours": 0.0, "suppliers": set(), "buyers": set()}
    )
    for b in market.bookings:
        if b["status"] not in COUNTED or not (b["start"] < m1 and b["end"] > m0):
            continue
        mach = b["machine"]
        flow = out[("CN", mach["region"], mach["family"])]  # buyers without sites or USCC: their country
        flow["bookings"] += b["start"] >= m0
        flow["booked_hours"] += (min(b["end"], m1) - max(b["start"], m0)).total_seconds() / 3600
        flow["suppliers"].add(mach["org"])
        flow["buyers"].add(b["buyer"])
    return dict(out)


def now_utc() -> datetime:
    return datetime.now(UTC)
