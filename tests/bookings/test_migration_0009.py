"""Migration 0009 on data the old rules produced: the old constraint (4 statuses) is put back inside the
test's transaction, the old double booking is made through the API, and the migration's real ``upgrade()``
runs on that connection. The completed booking gives way (audited, on its timeline); rows no rule can
reconcile stop the migration before the constraint is touched."""

from __future__ import annotations

import importlib.util
import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from httpx import AsyncClient
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from tests.bookings.helpers import book, market, slot
from tests.factories import signed_up

MIGRATION = Path(__file__).resolve().parents[2] / "alembic" / "versions" / "0009_booked_time_kept.py"
CONSTRAINT = "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'ex_bookings_no_overlap'"


def _migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("migration_0009", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _run(db: AsyncSession, step: Callable[[], None]) -> None:
    """Run a migration function with alembic's ``op`` bound to the test's connection (and transaction)."""
    conn = await db.connection()

    def run(sync_conn: Any) -> None:
        with Operations.context(MigrationContext.configure(sync_conn)):
            step()

    await conn.run_sync(run)


async def _statuses_in_constraint(db: AsyncSession) -> set[str]:
    return set(re.findall(r"'(\w+)'", (await db.execute(sa.text(CONSTRAINT))).scalar_one()))


async def _paid_and_started(client: AsyncClient, m: dict[str, Any], booking_id: str) -> None:
    for action, who in (("payment/accept-terms", "buyer"), ("accept", "supplier"), ("start", "supplier")):
        r = await client.post(f"/api/v1/bookings/{booking_id}/{action}", headers=m[who])
        assert r.status_code == 200, (action, r.text)


async def test_migration_releases_rebooked_time_of_early_completions_with_timeline_and_audit(
    client: AsyncClient, db: AsyncSession
) -> None:
    migration = _migration()
    await _run(db, migration.downgrade)  # the old constraint: completed bookings do not block
    assert await _statuses_in_constraint(db) == {"held", "requested", "confirmed", "in_progress"}
    m = await market(client, db)
    _, other = await signed_up(client, roles=("buyer",))

    # 1. The case: completed ~3 h before its slot, the same slot then sold to another buyer.
    start, end = slot(3)
    early = (await book(client, m["buyer"], m["asset"]["id"], start, end, key="early")).json()
    await _paid_and_started(client, m, early["id"])
    done = await client.post(f"/api/v1/bookings/{early['id']}/complete", headers=m["supplier"], json={"reason": "r"})
    assert done.status_code == 200
    resold = await book(client, other, m["asset"]["id"], start, end, key="resold")
    assert resold.status_code == 201, resold.text  # what the old constraint allowed

    # 2. Completed mid-slot (times moved by SQL): a later booking starting 45 min into it, placed after the
    #    completion at 60 min, cuts it at 45 min (the earlier of the two).
    s2, e2 = slot(30, minutes=240)
    mid = (await book(client, m["buyer"], m["asset"]["id"], s2, e2, key="mid")).json()
    later = (await book(client, other, m["asset"]["id"], s2 + timedelta(hours=5), e2 + timedelta(hours=5))).json()
    await db.execute(
        sa.text("UPDATE bookings SET status = 'settled', completed_at = :c WHERE id = :id"),
        {"c": s2 + timedelta(minutes=60), "id": mid["id"]},
    )
    await db.execute(
        sa.text("UPDATE bookings SET period = tstzrange(:lo, :hi, '[)'), created_at = :t WHERE id = :id"),
        {
            "lo": s2 + timedelta(minutes=45),
            "hi": s2 + timedelta(minutes=165),
            "t": s2 + timedelta(minutes=61),
            "id": later["id"],
        },
    )

    # 3. A completed booking nobody booked over is left alone.
    s3, e3 = slot(10)
    alone = (await book(client, m["buyer"], m["asset"]["id"], s3, e3, key="alone")).json()
    await _paid_and_started(client, m, alone["id"])
    await client.post(f"/api/v1/bookings/{alone['id']}/complete", headers=m["supplier"], json={"reason": "r"})

    await _run(db, migration.upgrade)

    assert await _statuses_in_constraint(db) == {
        "held", "requested", "confirmed", "in_progress", "completed", "settled", "disputed", "resolved"
    }  # fmt: skip
    periods: dict[str, Any] = dict(
        (
            await db.execute(
                sa.text("SELECT id::text, period FROM bookings WHERE id::text IN (:a, :b, :c, :d, :e)"),
                {"a": early["id"], "b": resold.json()["id"], "c": mid["id"], "d": later["id"], "e": alone["id"]},
            )
        ).all()
    )
    assert periods[early["id"]].isempty  # completed before its slot began: all of it given back
    assert (periods[resold.json()["id"]].lower, periods[resold.json()["id"]].upper) == (start, end)
    assert (periods[mid["id"]].lower, periods[mid["id"]].upper) == (s2, s2 + timedelta(minutes=45))
    assert (periods[alone["id"]].lower, periods[alone["id"]].upper) == (s3, e3)
    events = (
        await db.execute(
            sa.text(
                "SELECT booking_id::text, from_status, to_status, actor_kind, reason FROM booking_events"
                " WHERE action = 'release'"
            )
        )
    ).all()
    assert {(e[0], e[1], e[2], e[3]) for e in events} == {
        (early["id"], "completed", "completed", "system"),
        (mid["id"], "settled", "settled", "system"),
    }
    assert all("migration 0009" in e[4] for e in events)
    audit: dict[str, Any] = dict(
        (await db.execute(sa.text("SELECT target_id, after FROM audit_log WHERE action = 'booking.release'"))).all()
    )
    assert set(audit) == {early["id"], mid["id"]}
    assert audit[early["id"]] == {"blocked_from": None, "blocked_until": None}
    # The wider constraint now holds: the kept completed booking's slot cannot be sold again.
    _, third = await signed_up(client, roles=("buyer",))
    assert (await book(client, third, m["asset"]["id"], s3, e3, key="third")).status_code == 409


async def test_migration_stops_on_overlaps_no_rule_can_reconcile(client: AsyncClient, db: AsyncSession) -> None:
    migration = _migration()
    await _run(db, migration.downgrade)
    m = await market(client, db)
    _, other = await signed_up(client, roles=("buyer",))
    start, end = slot(40)
    first = (await book(client, m["buyer"], m["asset"]["id"], start, end, key=uuid.uuid4().hex)).json()
    second = (await book(client, other, m["asset"]["id"], start + timedelta(hours=3), end + timedelta(hours=3))).json()
    # Hand-edited rows: the second booking overlaps a completed one but was placed before that completion.
    await db.execute(
        sa.text("UPDATE bookings SET status = 'completed', completed_at = now() + interval '1 hour' WHERE id = :id"),
        {"id": first["id"]},
    )
    await db.execute(
        sa.text("UPDATE bookings SET period = tstzrange(:lo, :hi, '[)') WHERE id = :id"),
        {"lo": start + timedelta(minutes=30), "hi": end + timedelta(minutes=30), "id": second["id"]},
    )
    with pytest.raises(DBAPIError) as failed:
        async with db.begin_nested():
            await _run(db, migration.upgrade)
    assert "overlapping bookings" in str(failed.value)
    assert first["id"] in str(failed.value) and second["id"] in str(failed.value)
    # Nothing changed: the old constraint and both periods are as they were.
    assert await _statuses_in_constraint(db) == {"held", "requested", "confirmed", "in_progress"}
    count = await db.execute(sa.text("SELECT count(*) FROM booking_events WHERE action = 'release'"))
    assert count.scalar_one() == 0
