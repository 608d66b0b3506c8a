"""An inspection closed by its bookings' moves: the lab booking cancelled or declined, the buyer's own
settlement, and the settlement gate that holds the automatic settlement while it is open (issue #17)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.bookings import service as bookings
from marketplace.bookings.models import Booking
from tests.inspection.test_plans_helpers import act, inspection_market, plan, planned


async def _kinds(client: AsyncClient, headers: dict[str, str]) -> list[str]:
    items = (await client.get("/api/v1/notifications?limit=100", headers=headers)).json()["items"]
    return [n["kind"] for n in items]


async def test_a_cancelled_lab_booking_cancels_the_inspection(client: AsyncClient, db: AsyncSession) -> None:
    m = await inspection_market(client, db)
    out = await planned(client, m)
    r = await act(client, m["buyer"], out["lab_booking_id"], "cancel")
    assert r.status_code == 200, r.text
    got = (await client.get(f"/api/v1/inspections/{out['id']}", headers=m["buyer"])).json()
    assert got["status"] == "cancelled"
    assert "inspection.cancelled" in await _kinds(client, m["supplier"])
    # The lot may be planned again.
    again = await plan(client, m)
    assert again.status_code == 201, again.text
    assert again.json()["id"] != out["id"]
    latest = (await client.get(f"/api/v1/bookings/{m['production']['id']}/inspection", headers=m["buyer"])).json()
    assert latest["id"] == again.json()["id"]


async def test_a_declined_lab_booking_cancels_the_inspection(client: AsyncClient, db: AsyncSession) -> None:
    m = await inspection_market(client, db)
    out = await planned(client, m)
    r = await act(client, m["lab_headers"], out["lab_booking_id"], "decline")
    assert r.status_code == 200, r.text
    got = (await client.get(f"/api/v1/inspections/{out['id']}", headers=m["lab_headers"])).json()
    assert got["status"] == "cancelled"


async def test_the_buyer_settling_by_hand_waives_the_inspection(client: AsyncClient, db: AsyncSession) -> None:
    m = await inspection_market(client, db)
    out = await planned(client, m)
    r = await act(client, m["buyer"], m["production"]["id"], "confirm")
    assert r.status_code == 200 and r.json()["status"] == "settled", r.text
    got = (await client.get(f"/api/v1/inspections/{out['id']}", headers=m["buyer"])).json()
    assert got["status"] == "waived"
    assert "inspection.waived" in await _kinds(client, m["lab_headers"])
    # A waived inspection is closed: no extension, no shipment.
    ext = await client.post(
        f"/api/v1/inspections/{out['id']}/extend", headers=m["buyer"], json={"due_date": "2099-01-01"}
    )
    assert ext.status_code == 409


async def _settle_now(app: Any, db: AsyncSession, booking_id: str) -> bool:
    """The automatic settlement, as bookings.sweep runs it, after the dispute window."""
    await db.execute(
        sa.text("UPDATE bookings SET completed_at = now() - interval '100 hours' WHERE id = :id"),
        {"id": booking_id},
    )
    booking = await db.get(Booking, uuid.UUID(booking_id), populate_existing=True)
    assert booking is not None
    settled = await bookings.system_act(
        session=db, booking=booking, action="confirm", deps=app.state.booking_deps, reason="no dispute"
    )
    await db.commit()
    return settled


async def test_the_automatic_settlement_waits_while_the_inspection_is_open(
    app: Any, client: AsyncClient, db: AsyncSession
) -> None:
    gated = await inspection_market(client, db)
    await planned(client, gated)
    assert await _settle_now(app, db, gated["production"]["id"]) is False
    got = (await client.get(f"/api/v1/bookings/{gated['production']['id']}", headers=gated["buyer"])).json()
    assert got["status"] == "completed"
    # Control: a completed booking without an inspection settles.
    control = await inspection_market(client, db)
    assert await _settle_now(app, db, control["production"]["id"]) is True
    got = (await client.get(f"/api/v1/bookings/{control['production']['id']}", headers=control["buyer"])).json()
    assert got["status"] == "settled"
