"""HTTP: an organisation's own analytics, observer grants, and regional isolation of the observatory."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.ext.asyncio import AsyncSession

from listings.models import Asset, Site
from marketplace.bookings.models import Booking
from marketplace.orgs.models import Organisation
from tests.analytics.market import POLICY
from tests.bookings.helpers import book, market, slot
from tests.factories import admin_headers, signed_up


async def test_supplier_sees_only_its_own_analytics(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db)
    start, end = slot(48, minutes=180)
    resp = await book(client, m["buyer"], m["asset"]["id"], start, end)
    assert resp.status_code == 201, resp.text
    org_id = m["asset"]["org_id"]
    today = datetime.now(UTC).date()
    q = {"from": today.isoformat(), "to": (today + timedelta(days=10)).isoformat(), "granularity": "week"}

    own = await client.get(f"/api/v1/orgs/{org_id}/analytics", params=q, headers=m["supplier"])
    assert own.status_code == 200, own.text
    body = own.json()
    machines = [mc for b in body["buckets"] for mc in b["machines"]]
    assert sum(mc["booked_hours"] for mc in machines) == 3.0
    assert sum(mc["offered_hours"] for mc in machines) > 0
    org_totals = [b["organisation"] for b in body["buckets"]]
    assert sum(o["booked_hours"] for o in org_totals) == 3.0
    assert all(o["idle_shared_hours"] == round(o["offered_hours"] - o["booked_hours"], 2) for o in org_totals)

    # another organisation (the buyer) cannot see the supplier's analytics: 404 like a missing object
    other = await client.get(f"/api/v1/orgs/{org_id}/analytics", params=q, headers=m["buyer"])
    assert other.status_code == 404
    assert other.json()["error"] == "not_found"
    # ... but sees its own buyer figures
    buyer = await client.get(f"/api/v1/orgs/{m['buyer_org']}/analytics", params=q, headers=m["buyer"])
    assert buyer.status_code == 200
    assert sum(b["buyer"]["bookings"] for b in buyer.json()["buckets"]) == 1
    assert (await client.get(f"/api/v1/orgs/{org_id}/analytics", params=q, headers=m["admin"])).status_code == 200

    csv = await client.get(f"/api/v1/orgs/{org_id}/analytics.csv", params=q, headers=m["supplier"])
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("bucket_start,bucket_end,level")

    # API keys need the analytics:read scope
    for scopes, expected in ((["bookings:read"], 403), (["analytics:read"], 200)):
        created = await client.post(
            f"/api/v1/orgs/{org_id}/api-keys", json={"name": "k", "scopes": scopes}, headers=m["supplier"]
        )
        assert created.status_code == 201, created.text
        key = {"X-API-Key": created.json()["secret"]}
        assert (await client.get(f"/api/v1/orgs/{org_id}/analytics", params=q, headers=key)).status_code == expected


async def _region_market(db: AsyncSession, region: str, suppliers: int, buyers: list[uuid.UUID]) -> None:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for i in range(suppliers):
        org = Organisation(name=f"S{region}{i}", country="CN", roles=["supplier"], verification_status="verified")
        db.add(org)
        await db.flush()
        site = Site(org_id=org.id, name="p", address="a", country="CN", region_code=region, latitude=31.0,
                    longitude=120.0, timezone="Asia/Shanghai")  # fmt: skip
        db.add(site)
        await db.flush()
        asset = Asset(org_id=org.id, site_id=site.id, kind="machine", title="m", status="published",
                      process_codes=["machining.milling"], currency="CNY", hourly_rate=1000, slot_minutes=30,
                      min_booking_minutes=60, published_at=now - timedelta(days=90),
                      weekly_plan=[{"weekday": d, "start": "00:00", "end": "00:00"} for d in range(7)])  # fmt: skip
        db.add(asset)
        await db.flush()
        start = now.replace(day=1, hour=1)
        for j, buyer in enumerate(buyers):
            s = start + timedelta(hours=3 * j)
            db.add(Booking(asset_id=asset.id, kind="machine", supplier_org_id=org.id, buyer_org_id=buyer,
                           status="confirmed", start_at=s, end_at=s + timedelta(hours=2),
                           period=Range(s, s + timedelta(hours=2), bounds="[)"), currency="CNY", unit_price=1,
                           amount=1, cancellation_policy=POLICY, site_timezone="Asia/Shanghai"))  # fmt: skip
    await db.flush()


async def _buyers(db: AsyncSession, n: int) -> list[uuid.UUID]:
    out = []
    for i in range(n):
        org = Organisation(name=f"B{i}", country="CN", roles=["buyer"])
        db.add(org)
        await db.flush()
        out.append(org.id)
    return out


async def test_observer_for_3205_sees_nothing_of_4403(client: AsyncClient, db: AsyncSession) -> None:
    admin = await admin_headers(client, db)
    buyers = await _buyers(db, 3)
    await _region_market(db, "320505", 3, buyers)
    await _region_market(db, "320506", 1, buyers)  # a single supplier: suppressed
    await _region_market(db, "440305", 4, buyers)
    await db.commit()
    reg, observer = await signed_up(client, roles=("buyer",))
    granted = await client.post(
        "/api/v1/admin/observers", json={"user_email": reg["email"], "region_prefixes": ["3205"]}, headers=admin
    )
    assert granted.status_code == 201, granted.text
    listing = await client.get("/api/v1/admin/observers", headers=admin)
    assert [g["id"] for g in listing.json()] == [granted.json()["id"]]
    audit_rows = (await db.execute(sa.text("SELECT action FROM audit_log WHERE target_type = 'observer_grant'"))).all()
    assert [r[0] for r in audit_rows] == ["observer.grant"]

    assert (await client.get("/api/v1/observatory/indicators", params={"region": "4403"}, headers=observer)).json()[
        "error"
    ] == "outside_your_regions"
    assert (
        await client.get("/api/v1/observatory/indicators", params={"region": "44"}, headers=observer)
    ).status_code == 403
    resp = await client.get("/api/v1/observatory/indicators", headers=observer)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert body["regions"] == ["3205"]
    text = resp.text
    assert "4403" not in text and "440305" not in text
    cells = {(c["region"], c["process_family"]): c for c in body["cells"]}
    assert cells[("320506", "machining")]["suppressed"] is True
    assert cells[("320506", "machining")]["indicators"] is None
    # complementary: 320505 (3 suppliers) is suppressed too, else 320506 = total - 320505
    assert cells[("320505", "machining")]["suppressed"] is True
    assert cells[("*", "*")]["suppressed"] is False
    assert cells[("*", "*")]["indicators"]["active_suppliers"] == 4
    assert cells[("*", "*")]["indicators"]["bookings"] == 12
    csv = await client.get("/api/v1/observatory/indicators.csv", headers=observer)
    assert csv.status_code == 200 and "4403" not in csv.text

    # the admin sees everything; a user without a grant sees nothing
    everything = await client.get("/api/v1/observatory/indicators", params={"depth": 4}, headers=admin)
    regions = {c["region"] for c in everything.json()["cells"]}
    assert {"3205", "4403"} <= regions
    _, stranger = await signed_up(client, roles=("buyer",))
    assert (await client.get("/api/v1/observatory/indicators", headers=stranger)).status_code == 403

    gone = await client.delete(f"/api/v1/admin/observers/{granted.json()['id']}", headers=admin)
    assert gone.status_code == 204
    assert (await client.get("/api/v1/observatory/indicators", headers=observer)).status_code == 403
    assert (await client.delete(f"/api/v1/admin/observers/{granted.json()['id']}", headers=admin)).status_code == 404
    assert (await client.post("/api/v1/admin/observers", json={"user_email": reg["email"], "region_prefixes": ["3205"]},
                              headers=observer)).status_code == 403  # fmt: skip


async def test_an_on_demand_rollup_is_audited_by_the_service(client: AsyncClient, db: AsyncSession) -> None:
    """The audit record of ``POST /admin/observatory/rollups`` is written by the service (one rule for the API
    and any other caller); a refused caller leaves no record (control)."""
    admin = await admin_headers(client, db)
    _, someone = await signed_up(client, roles=("buyer",))

    def rollup_audits() -> sa.TextClause:
        return sa.text("SELECT action, target_id FROM audit_log WHERE target_type = 'observatory_month'")

    refused = await client.post("/api/v1/admin/observatory/rollups", json={"year": 2026, "month": 3}, headers=someone)
    assert refused.status_code == 403
    assert (await db.execute(rollup_audits())).all() == []

    done = await client.post("/api/v1/admin/observatory/rollups", json={"year": 2026, "month": 3}, headers=admin)
    assert done.status_code == 200, done.text
    assert done.json()["month"] == "2026-03-01"
    assert [tuple(r) for r in (await db.execute(rollup_audits())).all()] == [("observatory.rollup", "2026-03-01")]
