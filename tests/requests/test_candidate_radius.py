"""The capped candidate statement tests a request's radius in its nearest-first walk (GiST
``ix_matchable_processes_near``, migration 0026), the uncapped one through the sites in the radius: both must pass
the same listings, boundary included, and the capped one must be able to use its index."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.requests import service
from matching import adapter, repository
from matching.conditions_repository import Binder
from matching.feasibility import haversine_km
from matching.prefilter import request_values
from tests.requests.test_adapter import _random_request, _seed


async def test_capped_and_uncapped_statements_pass_the_same_listings(db: AsyncSession) -> None:
    rng = random.Random(5)
    now = datetime.now(UTC).replace(microsecond=0)
    assets = await _seed(db, rng, now)
    compared = 0
    for i in range(160):
        a = rng.choice(assets)
        mr = _random_request(rng, a, now)
        # Every request located with a radius; every other one exactly at another listing's distance (the
        # boundary, decided with the engine's formula on both paths).
        lat, lon = a["latitude"] + rng.uniform(-0.5, 0.5), a["longitude"] + rng.uniform(-0.5, 0.5)
        if i % 2:
            b = rng.choice(assets)
            radius = haversine_km(lat1=lat, lon1=lon, lat2=b["latitude"], lon2=b["longitude"])
        else:
            radius = rng.choice([5.0, 40.0, 120.0, 400.0])
        mr = replace(mr, lat=lat, lon=lon, max_distance_km=radius)
        codes = service.serving_codes(mr.process_code)
        everything = await adapter.select_rows(db, mr, serving_codes=codes, cap=None)
        capped = await adapter.select_rows(db, mr, serving_codes=codes, cap=10_000)
        assert capped.total == everything.total
        assert sorted(r.id for r in capped.rows) == sorted(r.id for r in everything.rows)
        compared += everything.total > 0
    assert compared >= 20, "enough requests should find listings in their radius"


async def test_capped_radius_uses_the_per_process_gist_index(db: AsyncSession) -> None:
    rng = random.Random(6)
    now = datetime.now(UTC).replace(microsecond=0)
    assets = await _seed(db, rng, now)
    a = assets[0]
    mr = replace(
        _random_request(rng, a, now), lat=a["latitude"], lon=a["longitude"], max_distance_km=50.0, region_prefixes=()
    )
    values = request_values(mr, service.serving_codes(mr.process_code), now=now, cap=adapter.DEFAULT_CAP)
    stmt = repository.candidate_statement(mr, Binder(values), capped=True, with_hours=True)
    sql = stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    await db.execute(sa.text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(r[0] for r in (await db.execute(sa.text(f"EXPLAIN {sql}"))).all())
    assert "ix_matchable_processes_near" in plan, plan
    assert "ix_sites_earth" not in plan, plan  # no detour through the sites in the radius
