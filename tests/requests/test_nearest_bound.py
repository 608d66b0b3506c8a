"""A located request ranks the listings that pass its hard filters among the ``nearest`` listings of each serving
process (listings.read_model_repository.nearest_first), and says so; ``matchable_processes`` follows the read model
it is derived from."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from listings.read_model_repository import matchable
from listings.taxonomy import get_taxonomy
from marketplace.requests import service
from matching import adapter
from matching.feasibility import haversine_km
from matching.prefilter import AssetRow
from matching.types import MatchRequest
from tests.requests.test_adapter import _random_request, _seed


def _km(mr: MatchRequest, row: AssetRow) -> float:
    assert mr.lat is not None and mr.lon is not None
    assert row.latitude is not None and row.longitude is not None
    return haversine_km(lat1=mr.lat, lon1=mr.lon, lat2=row.latitude, lon2=row.longitude)


def _at_the_listing(mr: MatchRequest, a: dict[str, Any]) -> MatchRequest:
    """``mr`` at listing ``a``'s site, without a radius or any filter besides the process, kind and currency."""
    return replace(
        mr,
        lat=a["latitude"],
        lon=a["longitude"],
        max_distance_km=None,
        material=None,
        part_size_mm=None,
        tolerance_mm=None,
        required_certificates=(),
        region_prefixes=(),
        budget_max=None,
    )


_OFFERING = """
SELECT mp.process_code, mp.asset_id, mp.latitude, mp.longitude FROM matchable_processes mp
 WHERE mp.process_code = ANY(CAST(:codes AS text[]))
"""


async def _reach(db: AsyncSession, mr: MatchRequest, codes: set[str], nearest: int) -> dict[str, float]:
    """Per serving code, the distance of its ``nearest``-th nearest listing (within the radius): how far its walk
    reaches (infinite when it meets them all)."""
    assert mr.lat is not None and mr.lon is not None
    by_code: dict[str, list[float]] = {c: [] for c in codes}
    for code, _id, lat, lon in (await db.execute(sa.text(_OFFERING), {"codes": sorted(codes)})).all():
        km = haversine_km(lat1=mr.lat, lon1=mr.lon, lat2=lat, lon2=lon)
        if mr.max_distance_km is None or km <= mr.max_distance_km:
            by_code[code].append(km)
    return {c: sorted(d)[nearest - 1] if len(d) >= nearest else float("inf") for c, d in by_code.items()}


async def test_a_located_request_ranks_those_that_pass_among_the_nearest_of_each_process(db: AsyncSession) -> None:
    rng = random.Random(21)
    now = datetime.now(UTC).replace(microsecond=0)
    assets = await _seed(db, rng, now)
    bounded = unbounded = 0
    for _ in range(160):
        a = rng.choice(assets)
        mr = _random_request(rng, a, now)
        if mr.lat is None:
            mr = replace(mr, lat=a["latitude"] + 0.2, lon=a["longitude"] - 0.2)
        codes = service.serving_codes(mr.process_code)
        everything = await adapter.select_rows(db, mr, serving_codes=codes, cap=None)
        nearest = rng.choice([1, 3, 8, 20])
        got = await adapter.select_rows(db, mr, serving_codes=codes, cap=10_000, nearest=nearest)
        reach = await _reach(db, mr, codes, nearest)
        kept = {r.id for r in got.rows}
        assert kept <= {r.id for r in everything.rows} and got.total == len(kept)
        for r in everything.rows:
            # Kept when one of its serving codes' walks reaches it; left out when none does. Listings at the same
            # distance as a walk's last one (machines of one site) may go either way.
            mine = [reach[c] for c in r.process_codes if c in reach]
            if any(_km(mr, r) < d - 1e-6 for d in mine):
                assert r.id in kept
            elif all(_km(mr, r) > d + 1e-6 for d in mine):
                assert r.id not in kept
        if any(d != float("inf") for d in reach.values()):
            bounded += 1
            assert got.nearest == nearest
        else:
            unbounded += 1
            assert got.nearest is None and kept == {r.id for r in everything.rows}
    assert bounded >= 20 and unbounded >= 10, (bounded, unbounded)


async def test_a_listing_offering_two_serving_codes_is_ranked_once(db: AsyncSession) -> None:
    rng = random.Random(22)
    now = datetime.now(UTC).replace(microsecond=0)
    assets = await _seed(db, rng, now)
    matchable = set((await db.execute(sa.text("SELECT asset_id FROM matchable_assets"))).scalars())
    machine = next(
        a for a in assets if a["kind"] == "machine" and len(a["process_codes"]) == 1 and a["id"] in matchable
    )
    code = machine["process_codes"][0]
    parent = get_taxonomy().processes[code].parent
    assert parent is not None
    sibling = next(
        c for c, p in get_taxonomy().processes.items() if p.parent == parent and c != code and p.kind == "machine"
    )
    both = {"codes": [code, sibling], "id": machine["id"]}
    await db.execute(sa.text("UPDATE assets SET process_codes = :codes WHERE id = :id"), both)
    mr = replace(_at_the_listing(_random_request(rng, machine, now), machine), process_code=parent)
    codes = service.serving_codes(parent)
    assert {code, sibling} <= codes
    everything = await adapter.select_rows(db, mr, serving_codes=codes, cap=None)
    got = await adapter.select_rows(db, mr, serving_codes=codes, cap=10_000, nearest=10_000)
    ids = [r.id for r in got.rows]
    assert len(ids) == len(set(ids)) == everything.total == got.total
    assert machine["id"] in ids


async def test_matches_say_when_only_the_nearest_were_ranked(db: AsyncSession) -> None:
    rng = random.Random(23)
    now = datetime.now(UTC).replace(microsecond=0)
    assets = await _seed(db, rng, now)
    a = next(a for a in assets if a["kind"] == "machine")
    mr = _at_the_listing(_random_request(rng, a, now), a)
    full = await service.run_match(db, mr, now=now)
    assert full.prefiltered > 2 and full.nearest is None
    out = await service.run_match(db, mr, now=now, nearest=2)
    codes = service.serving_codes(mr.process_code)
    assert out.nearest == 2 and 1 <= out.prefiltered <= 2 * len(codes) < full.prefiltered


# Every column of the read model, as the code knows them: a column added there is checked here too.
_COLUMNS = ", ".join(c.name for c in matchable.columns)
_EXPLODED = f"SELECT code, {_COLUMNS} FROM matchable_assets, unnest(process_codes) AS code"
_STORED = f"SELECT process_code, {_COLUMNS} FROM matchable_processes"
# Rows of matchable_processes that differ from the read model once per process code (expect 0).
_DERIVED = f"SELECT count(*) FROM (({_EXPLODED} EXCEPT {_STORED}) UNION ALL ({_STORED} EXCEPT {_EXPLODED})) AS diff"


async def test_the_per_process_rows_follow_every_change_to_the_read_model(db: AsyncSession) -> None:
    rng = random.Random(24)
    now = datetime.now(UTC).replace(microsecond=0)
    assets = await _seed(db, rng, now)
    assert (await db.execute(sa.text("SELECT count(*) FROM matchable_processes"))).scalar_one() > 50
    sites = sorted({a["site_id"] for a in assets})
    machines = [a for a in assets if a["kind"] == "machine"]
    codes = sorted({c for a in machines for c in a["process_codes"]})
    for step in range(60):
        a = rng.choice(assets)
        action = step % 5
        if action == 0:  # new process codes (the listing's own kind)
            pool = codes if a["kind"] == "machine" else a["process_codes"]
            new = rng.sample(pool, k=min(len(pool), rng.choice([1, 2, 3])))
            await db.execute(sa.text("UPDATE assets SET process_codes = :c WHERE id = :id"), {"c": new, "id": a["id"]})
        elif action == 1:  # a site moves
            await db.execute(
                sa.text("UPDATE sites SET latitude = latitude + :d, longitude = longitude - :d WHERE id = :id"),
                {"d": rng.uniform(0.01, 0.3), "id": rng.choice(sites)},
            )
        elif action == 2:  # unpublished, then published again
            status = rng.choice(["suspended", "published"])
            await db.execute(sa.text("UPDATE assets SET status = :s WHERE id = :id"), {"s": status, "id": a["id"]})
        elif action == 3:  # the next free slot after a booking, or a new price: updated in place
            before = (await db.execute(sa.text("SELECT count(*) FROM matchable_processes"))).scalar_one()
            await db.execute(
                sa.text(
                    "UPDATE assets SET next_free_at = now() + make_interval(hours => :h),"
                    " hourly_rate = hourly_rate + :h WHERE id = :id"
                ),
                {"h": rng.randint(1, 90), "id": a["id"]},
            )
            assert (await db.execute(sa.text("SELECT count(*) FROM matchable_processes"))).scalar_one() == before
        else:  # an organisation's verification changes
            await db.execute(
                sa.text("UPDATE organisations SET verification_status = :s WHERE id = :id"),
                {"s": rng.choice(["verified", "pending"]), "id": a["org_id"]},
            )
        assert (await db.execute(sa.text(_DERIVED))).scalar_one() == 0, step
    # The controls: a row the triggers did not write, and a change they did not copy, are caught the same way.
    await db.execute(
        sa.text(
            f"INSERT INTO matchable_processes (process_code, {_COLUMNS})"
            f" SELECT 'stray.code', {_COLUMNS} FROM matchable_assets LIMIT 1"
        )
    )
    assert (await db.execute(sa.text(_DERIVED))).scalar_one() == 1
    await db.execute(
        sa.text(
            "UPDATE matchable_processes SET setup_fee = coalesce(setup_fee, 0) + 1"
            " WHERE (asset_id, process_code) IN (SELECT asset_id, process_code FROM matchable_processes"
            " WHERE process_code <> 'stray.code' LIMIT 1)"
        )
    )
    assert (await db.execute(sa.text(_DERIVED))).scalar_one() == 3
