"""Conformance signals of make + verify (issue #17): a factory's first-pass yield, and the observatory's
conformance rate and lab utilisation by region x process family under the k-anonymity rule."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from httpx import AsyncClient
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.ext.asyncio import AsyncSession

from listings.models import Asset, Site
from marketplace.analytics import conformance
from marketplace.analytics.conformance import MIN_INSPECTED_LOTS, aggregate_quality, first_pass_yield
from marketplace.bookings.models import Booking
from marketplace.inspection.models import Inspection, InspectionReport
from marketplace.orgs.models import Organisation
from tests.analytics.market import POLICY
from tests.factories import PASSWORD, admin_headers, create_admin, create_asset, machine_payload, publish, supplier

WEEKDAYS = [{"weekday": d, "start": "08:00", "end": "17:00"} for d in range(5)]
MARCH = date(2026, 3, 1)  # 22 weekdays
T0 = datetime(2026, 3, 2, 1, tzinfo=UTC)


class World:
    """Rows inserted straight into the tables, as the other analytics tests do."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db
        self.slot = 0

    async def org(self, name: str, role: str) -> uuid.UUID:
        org = Organisation(name=name, country="CN", roles=[role], verification_status="verified")
        self.db.add(org)
        await self.db.flush()
        return org.id

    async def asset(
        self, org_id: uuid.UUID, region: str, *, lab: bool = False, family: str = "machining", capacity: int = 10
    ) -> uuid.UUID:
        site = Site(org_id=org_id, name="p", address="a", country="CN", region_code=region, latitude=31.0,
                    longitude=120.0, timezone="Asia/Shanghai")  # fmt: skip
        self.db.add(site)
        await self.db.flush()
        extra: dict[str, Any] = (
            {"kind": "lab_service", "process_codes": ["testing.cmm"], "price_per_sample": 100,
             "daily_sample_capacity": capacity, "turnaround_days": 3, "test_standard": "ISO 10360"}
            if lab
            else {"kind": "machine", "process_codes": [f"{family}.milling"], "hourly_rate": 1000}
        )  # fmt: skip
        asset = Asset(org_id=org_id, site_id=site.id, title="a", status="published", currency="CNY", slot_minutes=30,
                      min_booking_minutes=60, weekly_plan=WEEKDAYS, published_at=T0 - timedelta(days=90),
                      **extra)  # fmt: skip
        self.db.add(asset)
        await self.db.flush()
        return asset.id

    async def production(self, asset_id: uuid.UUID, factory: uuid.UUID, buyer: uuid.UUID) -> Booking:
        self.slot += 1
        s = T0 + timedelta(hours=3 * self.slot)
        bk = Booking(asset_id=asset_id, kind="machine", supplier_org_id=factory, buyer_org_id=buyer,
                     status="completed", start_at=s, end_at=s + timedelta(hours=2),
                     period=Range(s, s + timedelta(hours=2), bounds="[)"), currency="CNY", unit_price=1, amount=1,
                     cancellation_policy=POLICY, site_timezone="Asia/Shanghai")  # fmt: skip
        self.db.add(bk)
        await self.db.flush()
        return bk

    async def lab_booking(
        self, lab_asset: uuid.UUID, lab: uuid.UUID, buyer: uuid.UUID, *, samples: int = 5, day: date = MARCH,
        status: str = "completed",
    ) -> Booking:  # fmt: skip
        bk = Booking(asset_id=lab_asset, kind="lab_service", supplier_org_id=lab, buyer_org_id=buyer, status=status,
                     drop_off_date=day, samples=samples, currency="CNY", unit_price=1, amount=1,
                     cancellation_policy=POLICY, site_timezone="Asia/Shanghai")  # fmt: skip
        self.db.add(bk)
        await self.db.flush()
        return bk

    async def report(
        self, production: Booking, lab_asset: uuid.UUID, lab: uuid.UUID, *, verdict: str, gates: bool = True,
        at: datetime = T0,
    ) -> None:  # fmt: skip
        lab_bk = await self.lab_booking(lab_asset, lab, production.buyer_org_id, day=at.date())
        insp = Inspection(production_booking_id=production.id, lab_booking_id=lab_bk.id,
                          buyer_org_id=production.buyer_org_id, supplier_org_id=production.supplier_org_id,
                          lab_org_id=lab, characteristics=[{"name": "d", "nominal": 10, "lower_tol": -0.1,
                                                            "upper_tol": 0.1, "unit": "mm"}],
                          inspection_level="II", aql="1.0", lot_size=100, code_letter="F", sample_size=5,
                          accept_number=0, reject_number=1, status="reported", due_date=at.date(), verdict=verdict,
                          gates_payment=gates, created_at=at)  # fmt: skip
        self.db.add(insp)
        await self.db.flush()
        self.db.add(InspectionReport(inspection_id=insp.id, lab_booking_id=lab_bk.id, tested_on=at.date(),
                                     test_standard="ISO 10360", instrument="CMM", operator="L", units=[],
                                     nonconforming=0 if verdict == "accepted" else 2, verdict=verdict,
                                     accreditation="covered" if gates else "no_certificate", gates_payment=gates,
                                     created_at=at))  # fmt: skip
        await self.db.flush()


async def test_first_pass_yield_counts_only_the_first_gating_report(client: AsyncClient, db: AsyncSession) -> None:
    w = World(db)
    factory, buyer, lab = await w.org("F", "supplier"), await w.org("B", "buyer"), await w.org("L", "supplier")
    machine, lab_asset = await w.asset(factory, "320505"), await w.asset(lab, "320505", lab=True)
    later = T0 + timedelta(days=5)
    # Rejected first, accepted after rework: inspected, not a first pass.
    rework = await w.production(machine, factory, buyer)
    await w.report(rework, lab_asset, lab, verdict="rejected", at=T0)
    await w.report(rework, lab_asset, lab, verdict="accepted", at=later)
    # A non-gating rejection before the first gating acceptance: a first pass.
    lot = await w.production(machine, factory, buyer)
    await w.report(lot, lab_asset, lab, verdict="rejected", gates=False, at=T0)
    await w.report(lot, lab_asset, lab, verdict="accepted", at=later)
    # Only a non-gating report: not an inspected lot at all.
    await w.report(await w.production(machine, factory, buyer), lab_asset, lab, verdict="accepted", gates=False)
    for _ in range(4):
        await w.report(await w.production(machine, factory, buyer), lab_asset, lab, verdict="accepted")

    fpy = await first_pass_yield(db, factory)
    assert (fpy.inspected_lots, fpy.accepted_first_time, fpy.enough_lots) == (6, 5, True)
    assert fpy.first_pass_yield == round(5 / 6, 4)
    # The period form counts lots by their first gating report: only the rework's first report (T0) and the
    # four plain lots fall in the first day; the lot first gated `later` does not.
    day = await first_pass_yield(db, factory, since=T0, until=T0 + timedelta(days=1))
    assert (day.inspected_lots, day.accepted_first_time) == (5, 4)

    # Below the minimum: the count, no percentage.
    small = await w.org("F2", "supplier")
    small_machine = await w.asset(small, "320505")
    await w.report(await w.production(small_machine, small, buyer), lab_asset, lab, verdict="accepted")
    few = await first_pass_yield(db, small)
    assert (few.inspected_lots, few.first_pass_yield, few.enough_lots) == (1, None, False)
    assert few.min_inspected_lots == MIN_INSPECTED_LOTS
    assert (await conformance.scorecard_fields(db, small))["first_pass_yield"] is None

    admin = await admin_headers(client, db)
    q = {"from": "2026-03-01", "to": "2026-03-31", "granularity": "month"}
    body = (await client.get(f"/api/v1/orgs/{factory}/analytics", params=q, headers=admin)).json()
    assert body["first_pass_yield"]["inspected_lots"] == 6
    assert body["first_pass_yield"]["first_pass_yield"] == round(5 / 6, 4)
    # The public scorecard carries the same figure.
    card = (await client.get(f"/api/v1/orgs/{factory}/scorecard")).json()["as_supplier"]
    assert (card["inspected_lots"], card["first_pass_yield"]) == (6, round(5 / 6, 4))


async def _region(w: World, region: str, *, factories: int, buyers: list[uuid.UUID], labs: int) -> None:
    """``factories`` factories in ``region``, each with one accepted and one rejected gating report per
    buyer, reported by ``labs`` labs (sited elsewhere) in turn."""
    lab_ids = [await w.org(f"L{region}{i}", "supplier") for i in range(labs)]
    lab_assets = [await w.asset(lab_id, "110101", lab=True) for lab_id in lab_ids]
    n = 0
    for i in range(factories):
        factory = await w.org(f"F{region}{i}", "supplier")
        machine = await w.asset(factory, region)
        for buyer in buyers:
            for verdict in ("accepted", "rejected"):
                k = n % labs
                await w.report(await w.production(machine, factory, buyer), lab_assets[k], lab_ids[k], verdict=verdict)
                n += 1


async def test_conformance_cells_below_k_firms_are_suppressed(client: AsyncClient, db: AsyncSession) -> None:
    w = World(db)
    buyers = [await w.org(f"B{i}", "buyer") for i in range(3)]
    await _region(w, "320505", factories=3, buyers=buyers, labs=3)
    await _region(w, "320506", factories=1, buyers=buyers, labs=3)  # a single factory: suppressed
    await _region(w, "320507", factories=3, buyers=buyers, labs=3)
    admin = await admin_headers(client, db)
    q = {"region": "3205", "from": "2026-03-01", "to": "2026-03-31", "depth": "6"}
    resp = await client.get("/api/v1/observatory/indicators", params=q, headers=admin)
    assert resp.status_code == 200, resp.text
    cells = {(c["region"], c["process_family"]): c for c in resp.json()["conformance"]}
    lone = cells[("320506", "machining")]
    assert lone["suppressed"] is True and lone["reported_lots"] is None and lone["conformance_rate"] is None
    # complementary: one more cell of the column hides, else total - the others gives the lone factory away
    assert [cells[(r, "machining")]["suppressed"] for r in ("320505", "320507")].count(True) == 1
    total = cells[("*", "*")]
    assert total["suppressed"] is False
    assert (total["reported_lots"], total["accepted_lots"], total["conformance_rate"]) == (42, 21, 0.5)

    csv = await client.get("/api/v1/observatory/indicators.csv", params=q, headers=admin)
    head, *lines = csv.text.splitlines()
    assert head.endswith("conformance_rate,conformance_suppressed,lab_offered_samples,lab_booked_samples,"
                         "lab_utilization,lab_utilization_suppressed")  # fmt: skip
    lone_line = next(line for line in lines if ",320506,machining," in line)
    assert lone_line.split(",")[-8:-4] == ["", "", "", "true"]

    # process= keeps that family's columns and the totals
    only = await client.get("/api/v1/observatory/indicators", params={**q, "process": "casting"}, headers=admin)
    assert {c["process_family"] for c in only.json()["conformance"]} == {"*"}


def test_one_lab_behind_many_factories_is_suppressed_too() -> None:
    """The labs are a supplier side of their own: three factories inspected by one lab do not show."""

    class K:
        observatory_min_organisations = 3
        observatory_complementary_suppression = True

    def report(factory: int, lab: int, buyer: int, verdict: str = "accepted") -> dict[str, Any]:
        return {"region_code": "320505", "process_family": "machining", "verdict": verdict,
                "supplier_org_id": f"f{factory}", "lab_org_id": f"l{lab}", "buyer_org_id": f"b{buyer}"}  # fmt: skip

    data: dict[str, list[dict[str, Any]]] = {"lab_offered": [], "lab_booked": []}
    data["reports"] = [report(f, 0, b) for f in range(3) for b in range(3)]
    out = aggregate_quality(MARCH, prefix="", depth=6, data=data, settings=K())  # type: ignore[arg-type]
    assert all(c["suppressed"] for c in out["conformance"])
    data["reports"] = [report(f, f, b) for f in range(3) for b in range(3)]
    out = aggregate_quality(MARCH, prefix="", depth=6, data=data, settings=K())  # type: ignore[arg-type]
    assert not any(c["suppressed"] for c in out["conformance"])


async def test_lab_utilisation_of_known_lab_bookings(client: AsyncClient, db: AsyncSession) -> None:
    w = World(db)
    buyers = [await w.org(f"B{i}", "buyer") for i in range(3)]
    labs = [await w.org(f"L{i}", "supplier") for i in range(3)]
    assets = [await w.asset(lab, "320505", lab=True, capacity=10) for lab in labs]
    for lab, asset, buyer, samples in zip(labs, assets, buyers, (5, 7, 8), strict=True):
        await w.lab_booking(asset, lab, buyer, samples=samples, day=date(2026, 3, 10))
    await w.lab_booking(assets[0], labs[0], buyers[1], samples=50, day=date(2026, 3, 11), status="cancelled")
    await w.lab_booking(assets[1], labs[1], buyers[2], samples=50, day=date(2026, 4, 1))  # next month
    admin = await admin_headers(client, db)
    q = {"region": "3205", "from": "2026-03-01", "to": "2026-03-31", "depth": "6"}
    body = (await client.get("/api/v1/observatory/indicators", params=q, headers=admin)).json()
    cells = {(c["region"], c["process_family"]): c for c in body["lab_utilisation"]}
    cell = cells[("320505", "testing")]
    # 3 labs x 10 samples a day x 22 weekdays of March 2026 offered; 5 + 7 + 8 booked
    assert (cell["suppressed"], cell["offered_samples"], cell["booked_samples"]) == (False, 660, 20)
    assert cell["utilization"] == round(20 / 660, 4)
    assert cells[("*", "*")]["booked_samples"] == 20


async def test_pages_show_the_signals_in_chinese_and_english(client: AsyncClient, db: AsyncSession) -> None:
    admin_api = await admin_headers(client, db)
    reg, headers, site = await supplier(client, db)
    asset = await create_asset(client, headers, machine_payload(site["id"]), WEEKDAYS)
    await publish(client, headers, admin_api, asset["id"])
    w = World(db)
    buyer, lab = await w.org("B", "buyer"), await w.org("L", "supplier")
    lab_asset = await w.asset(lab, "320505", lab=True)
    factory = uuid.UUID(asset["org_id"])
    await w.report(await w.production(uuid.UUID(asset["id"]), factory, buyer), lab_asset, lab, verdict="accepted")
    await db.commit()

    for locale, words in (("en", ("First-pass yield", "Not enough inspected lots")),
                          ("zh-CN", ("首次合格率", "检验批次不足"))):  # fmt: skip
        client.cookies.set("lang", locale)
        page = await client.get(f"/listings/{asset['id']}")
        assert page.status_code == 200, page.text
        assert all(word in page.text for word in words), locale

    await _sign_in(client, reg["email"])
    for locale, words in (("en", ("First-pass yield", "Inspected lots")), ("zh-CN", ("首次合格率", "检验批次"))):
        client.cookies.set("lang", locale)
        page = await client.get(f"/factory/{factory}")
        assert page.status_code == 200 and all(word in page.text for word in words), locale

    admin = await create_admin(db)
    await db.commit()
    client.cookies.clear()
    await _sign_in(client, admin.email)
    for locale, words in (("en", ("Conformance rate", "Lab utilisation")), ("zh-CN", ("合格率", "实验室利用率"))):
        client.cookies.set("lang", locale)
        page = await client.get("/observatory")
        assert page.status_code == 200, page.text
        assert 'id="conformance-table"' in page.text and 'id="lab-utilisation-table"' in page.text
        assert all(word in page.text for word in words), locale


async def _sign_in(client: AsyncClient, email: str) -> None:
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    resp = await client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 303
