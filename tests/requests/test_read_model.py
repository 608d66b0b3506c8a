"""``matchable_assets`` (matching's read model, migration 0007) always equals what it is derived from.

The triggers must follow every way a listing leaves, enters or changes in the matchable set: COPY seeding,
moderation (status), edits (prices, processes, next free slot), an organisation's verification, a site
moving, deletion, and two transactions changing one listing through different tables at once.
"""

from __future__ import annotations

import asyncio
import importlib.util
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from marketplace.demo.seeding import seed_market
from tests.factories import admin_headers, published_asset

COLUMNS = (
    "asset_id, org_id, site_id, kind, currency, process_codes, materials, envelope_max_mm, envelope_mid_mm,"
    " envelope_min_mm, tolerance_mm, hourly_rate, setup_fee, price_per_sample, next_free_at, latitude, longitude"
)
# What the table must hold: the published listings of verified organisations (written independently of the
# migration's own query on purpose).
EXPECTED = sa.text(
    "SELECT a.id, a.org_id, a.site_id, a.kind, a.currency, a.process_codes, a.materials, a.envelope_max_mm,"
    " a.envelope_mid_mm, a.envelope_min_mm, a.tolerance_mm, a.hourly_rate, a.setup_fee, a.price_per_sample,"
    " a.next_free_at, s.latitude, s.longitude FROM assets a, sites s, organisations o"
    " WHERE s.id = a.site_id AND o.id = a.org_id AND a.status = 'published' AND o.verification_status = 'verified'"
    " ORDER BY a.id"
)
ACTUAL = sa.text(f"SELECT {COLUMNS} FROM matchable_assets ORDER BY asset_id")


async def assert_in_sync(conn: AsyncConnection | AsyncSession) -> int:
    expected = [tuple(r) for r in (await conn.execute(EXPECTED)).all()]
    actual = [tuple(r) for r in (await conn.execute(ACTUAL)).all()]
    assert actual == expected
    return len(actual)


async def _one(db: AsyncSession, sql: str) -> Any:
    return (await db.execute(sa.text(sql))).scalar_one()


async def test_read_model_follows_every_change_of_its_sources(db: AsyncSession) -> None:
    await seed_market(db, suppliers=8, labs=2, buyers=1, seed=11, now=datetime.now(UTC))
    assert await assert_in_sync(db) > 20  # COPY seeding fills it through the statement triggers

    asset = await _one(db, "SELECT asset_id FROM matchable_assets ORDER BY asset_id LIMIT 1")
    params = {"id": asset}
    # Moderation: unpublished listings leave, republished ones come back.
    await db.execute(sa.text("UPDATE assets SET status = 'suspended' WHERE id = :id"), params)
    assert await _one(db, f"SELECT count(*) FROM matchable_assets WHERE asset_id = '{asset}'") == 0
    await db.execute(sa.text("UPDATE assets SET status = 'published' WHERE id = :id"), params)
    await assert_in_sync(db)
    # Edits of any copied column, several rows in one statement.
    await db.execute(
        sa.text(
            "UPDATE assets SET hourly_rate = hourly_rate + 100, next_free_at = now(),"
            " materials = materials || ARRAY['pa6'] WHERE kind = 'machine'"
        )
    )
    await db.execute(
        sa.text("UPDATE assets SET process_codes = ARRAY['testing.mechanical.tensile'] WHERE id = :id"), params
    )
    await assert_in_sync(db)
    # An organisation losing (and regaining) its verification takes all its listings with it.
    org = await _one(db, f"SELECT org_id FROM assets WHERE id = '{asset}'")
    await db.execute(sa.text("UPDATE organisations SET verification_status = 'rejected' WHERE id = :o"), {"o": org})
    assert await _one(db, f"SELECT count(*) FROM matchable_assets WHERE org_id = '{org}'") == 0
    await assert_in_sync(db)
    await db.execute(sa.text("UPDATE organisations SET verification_status = 'verified' WHERE id = :o"), {"o": org})
    assert await _one(db, f"SELECT count(*) FROM matchable_assets WHERE org_id = '{org}'") > 0
    await assert_in_sync(db)
    # A site moving moves its listings; an unrelated organisation edit changes nothing.
    await db.execute(sa.text("UPDATE sites SET latitude = latitude + 0.5, longitude = longitude - 0.25"))
    versions = sa.text("SELECT asset_id, ctid::text FROM matchable_assets ORDER BY asset_id")  # moves on rewrite
    before = (await db.execute(versions)).all()
    await db.execute(sa.text("UPDATE organisations SET name = name || ' (renamed)'"))
    assert (await db.execute(versions)).all() == before  # nothing it copies changed: rows not rewritten
    await assert_in_sync(db)
    # Deleting a listing removes its row (foreign key cascade).
    await db.execute(sa.text("DELETE FROM asset_status_events WHERE asset_id = :id"), params)
    await db.execute(sa.text("DELETE FROM assets WHERE id = :id"), params)
    await assert_in_sync(db)


async def test_listing_published_through_the_api_is_in_the_read_model(client: AsyncClient, db: AsyncSession) -> None:
    admin = await admin_headers(client, db)
    asset, headers, _site = await published_asset(client, db, admin)
    row = (
        await db.execute(
            sa.text("SELECT org_id, hourly_rate FROM matchable_assets WHERE asset_id = :id"), {"id": asset["id"]}
        )
    ).one()
    assert str(row.org_id) == asset["org_id"] and row.hourly_rate == asset["hourly_rate"]
    # A price change is a material edit: the listing waits for moderation again, out of matching ...
    r = await client.patch(f"/api/v1/assets/{asset['id']}", headers=headers, json={"hourly_rate": 12345})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending_review"
    assert await _one(db, f"SELECT count(*) FROM matchable_assets WHERE asset_id = '{asset['id']}'") == 0
    # ... and comes back with the new price once approved.
    approved = await client.post(f"/api/v1/admin/assets/{asset['id']}/approve", headers=admin)
    assert approved.status_code == 200, approved.text
    assert await _one(db, f"SELECT hourly_rate FROM matchable_assets WHERE asset_id = '{asset['id']}'") == 12345
    await assert_in_sync(db)


# -- two writers, one listing -----------------------------------------------------------------------------


def _migration() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "alembic" / "versions" / "0007_matching_read_model.py"
    spec = importlib.util.spec_from_file_location("migration_0007", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _site_move_against_price_edit(engine: AsyncEngine) -> list[BaseException | None]:
    """T1 moves a site and keeps its transaction open; T2 edits the price of a listing at that site; then T1
    commits. Returns each transaction's error (None when it committed)."""
    async with engine.begin() as conn:
        await seed_market(conn, suppliers=2, labs=0, buyers=1, seed=5, now=datetime.now(UTC))
        asset, site = (
            await conn.execute(sa.text("SELECT asset_id, site_id FROM matchable_assets ORDER BY asset_id LIMIT 1"))
        ).one()
    moved = asyncio.Event()
    errors: list[BaseException | None] = [None, None]

    async def t1() -> None:
        try:
            async with engine.begin() as conn:
                await conn.execute(sa.text("UPDATE sites SET latitude = latitude + 1 WHERE id = :s"), {"s": site})
                moved.set()
                await asyncio.sleep(1.0)  # T2 reaches this listing while the move is uncommitted
        except Exception as exc:  # reported to the test
            errors[0] = exc
            moved.set()

    async def t2() -> None:
        await moved.wait()
        try:
            async with engine.begin() as conn:
                await conn.execute(sa.text("SET LOCAL lock_timeout = '10s'"))
                await conn.execute(sa.text("UPDATE assets SET hourly_rate = 777 WHERE id = :a"), {"a": asset})
        except Exception as exc:  # reported to the test
            errors[1] = exc

    await asyncio.gather(t1(), t2())
    return errors


async def test_concurrent_site_move_and_listing_edit_both_land(committed_engine: AsyncEngine) -> None:
    errors = await _site_move_against_price_edit(committed_engine)
    assert errors == [None, None]
    async with committed_engine.connect() as conn:
        await assert_in_sync(conn)
        edited = await conn.execute(sa.text("SELECT count(*) FROM matchable_assets WHERE hourly_rate = 777"))
        assert edited.scalar_one() == 1


async def test_control_without_the_row_lock_the_second_writer_breaks(committed_engine: AsyncEngine) -> None:
    """Control for the test above: with the refresh's asset row lock removed, the price edit's refresh runs
    while the site move's refresh is uncommitted and collides with it (or leaves a stale row)."""
    migration = _migration()
    lock_free = migration.REFRESH_FUNCTION.replace(
        "PERFORM 1 FROM assets WHERE id = ANY(ids) ORDER BY id FOR NO KEY UPDATE;", ""
    )
    assert lock_free != migration.REFRESH_FUNCTION
    async with committed_engine.begin() as conn:
        await conn.execute(sa.text(lock_free))
    try:
        errors = await _site_move_against_price_edit(committed_engine)
        async with committed_engine.connect() as conn:
            try:
                await assert_in_sync(conn)
                in_sync = True
            except AssertionError:
                in_sync = False
        assert errors[1] is not None or not in_sync
    finally:
        async with committed_engine.begin() as conn:
            await conn.execute(sa.text(migration.REFRESH_FUNCTION))
