"""The adapter's SQL prefilter never drops a candidate the engine would accept.

On a small seeded market (plus closed availability exceptions and a few certificates), random requests are
matched twice: through the service path (adapter prefilter + engine) and naively (every listing loaded,
drafts and unverified organisations included, filtered by the same engine). Results must be identical.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from listings.taxonomy import get_taxonomy
from marketplace.demo.seeding import seed_market
from marketplace.requests import service
from matching import adapter
from matching.engine import match
from matching.types import MatchRequest, Weights


async def _seed(db: AsyncSession, rng: random.Random, now: datetime) -> list[dict[str, Any]]:
    summary = await seed_market(db, suppliers=40, labs=6, buyers=3, seed=11, now=now)
    assert summary.machines > 50 and summary.lab_services > 5
    rows = (
        await db.execute(
            sa.text(
                "SELECT a.id, a.kind, a.org_id, a.process_codes, a.materials, a.currency, a.envelope_x_mm,"
                " a.envelope_y_mm, a.envelope_z_mm, a.tolerance_mm, a.hourly_rate, a.setup_fee,"
                " a.price_per_sample, s.latitude, s.longitude, s.region_code, a.site_id"
                " FROM assets a JOIN sites s ON s.id = a.site_id ORDER BY a.id"
            )
        )
    ).mappings()
    assets = [dict(r) for r in rows]
    # Calendars with holes: closed exceptions on a third of the assets, and some organisations not verified.
    for a in assets[::3]:
        start = now + timedelta(hours=rng.uniform(0, 96))
        await db.execute(
            sa.text(
                "INSERT INTO availability_exceptions (id, asset_id, starts_at, ends_at, available)"
                " VALUES (:id, :a, :s, :e, false)"
            ),
            {"id": uuid.uuid4(), "a": a["id"], "s": start, "e": start + timedelta(hours=rng.uniform(4, 120))},
        )
    orgs = sorted({a["org_id"] for a in assets})
    for org in orgs[::9]:
        await db.execute(
            sa.text("UPDATE organisations SET verification_status = 'pending' WHERE id = :id"), {"id": org}
        )
    for a in assets[::17]:
        await db.execute(sa.text("UPDATE assets SET status = 'suspended' WHERE id = :id"), {"id": a["id"]})
    return assets


def _random_request(rng: random.Random, a: dict[str, Any], now: datetime) -> MatchRequest:
    tax = get_taxonomy()
    code = rng.choice(a["process_codes"])
    parent = tax.processes[code].parent
    if parent is not None and rng.random() < 0.3:
        code = parent
    machine = a["kind"] == "machine"
    start = now + timedelta(hours=rng.uniform(-12, 72))
    end = start + timedelta(hours=rng.uniform(6, 24 * 20))
    material = rng.choice([*a["materials"], None, "al_6061", "q235"]) if a["materials"] else None
    part = None
    if machine and a["envelope_x_mm"] and rng.random() < 0.6:
        env = sorted([a["envelope_x_mm"], a["envelope_y_mm"], a["envelope_z_mm"]])
        part = tuple(rng.uniform(0.3, 1.1) * e for e in env)
    tol = None
    if a["tolerance_mm"] and rng.random() < 0.5:
        tol = a["tolerance_mm"] * rng.choice([0.5, 1.0, 1.0, 3.0])
    duration = rng.choice([30, 60, 240, 600, 1500]) if machine else None
    samples = rng.choice([1, 5, 30, 200]) if not machine else None
    if machine:
        price = (2 * a["hourly_rate"] * duration + 60) // 120 + (a["setup_fee"] or 0)
    else:
        price = a["price_per_sample"] * samples
    lat = lon = dist = None
    if rng.random() < 0.7:
        lat, lon = a["latitude"] + rng.uniform(-0.5, 0.5), a["longitude"] + rng.uniform(-0.5, 0.5)
        dist = rng.choice([None, 10.0, 60.0, 300.0])
    certs: tuple[str, ...] = rng.choice([(), (), ("ISO 9001",), ("iso  9001",), ("IATF 16949",), ("ISO/IEC 17025",)])
    return MatchRequest(
        kind="machine" if machine else "lab_service",
        process_code=code,
        earliest_start=start,
        deadline=end,
        currency=a["currency"] if rng.random() < 0.9 else "EUR",
        material=material,
        duration_minutes=duration,
        samples=samples,
        part_size_mm=part,  # type: ignore[arg-type]
        tolerance_mm=tol,
        required_certificates=certs,
        lat=lat,
        lon=lon,
        max_distance_km=dist,
        region_prefixes=rng.choice([(), (), (a["region_code"][:2],), ("99",)]),
        budget_max=rng.choice([None, int(price * rng.uniform(0.8, 1.5))]),
        weights=rng.choice([None, Weights(price=1, distance=0, start=0, quality=0, idle=0)]),
    )


async def test_prefilter_never_drops_a_feasible_candidate(db: AsyncSession) -> None:
    rng = random.Random(5)
    now = datetime.now(UTC).replace(microsecond=0)
    assets = await _seed(db, rng, now)
    all_ids = [a["id"] for a in assets]
    checked = feasible_total = 0
    for i in range(60):
        mr = _random_request(rng, rng.choice(assets), now)
        codes = service.serving_codes(mr.process_code)
        fast = await adapter.load_for_request(
            db, mr, codes, blocked=service.BLOCKED, stats=service.STATS, now=now, cap=None
        )
        got = match(mr, fast.candidates, codes, limit=10_000, explain_rejections=True)
        everything = await adapter.load_assets(
            db,
            mr.earliest_start,
            mr.deadline,
            blocked=service.BLOCKED,
            stats=service.STATS,
            now=now,
            asset_ids=all_ids,
            published_only=False,
        )
        assert len(everything) == len(assets)
        naive = match(mr, everything, codes, limit=10_000, explain_rejections=True)
        key = [(r.asset_id, r.match.slot_start, r.match.price.total, round(r.score, 12)) for r in got.items]
        want = [(r.asset_id, r.match.slot_start, r.match.price.total, round(r.score, 12)) for r in naive.items]
        assert key == want, (i, mr)
        # Rejection counts agree too (the SQL explanation counts listings that offer the process).
        explained = await adapter.static_rejections(db, mr, codes)
        for k, n in got.rejections.items():
            explained[k] = explained.get(k, 0) + n
        expected = {k: n for k, n in naive.rejections.items() if k not in ("status", "process")}
        assert explained == expected, (i, mr)
        # The capped path (the endpoint's default) equals the uncapped one while the cap does not bind.
        capped = await service.run_match(db, mr, limit=10_000, now=now)
        if capped.prefiltered <= adapter.DEFAULT_CAP:
            assert [str(m.asset_id) for m in capped.items] == [r.asset_id for r in naive.items]
        checked += 1
        feasible_total += naive.feasible_count
    assert checked == 60
    assert feasible_total >= 15  # the random requests are not all trivially empty
