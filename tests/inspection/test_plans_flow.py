"""An inspection's life after planning: shipment, receipt, the due date and its overdue notice, the lab booking
closed, the buyer's own settlement, and the settlement gate (issue #17)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.inspection import tasks
from tests.factories import signed_up
from tests.inspection.test_plans_helpers import act, inspection_market, planned


async def _post(client: AsyncClient, url: str, headers: dict[str, str], body: dict[str, Any] | None = None) -> Any:
    return await client.post(url, headers=headers, json=body)


async def _kinds(client: AsyncClient, headers: dict[str, str]) -> list[str]:
    items = (await client.get("/api/v1/notifications?limit=100", headers=headers)).json()["items"]
    return [n["kind"] for n in items]


async def test_the_factory_ships_and_the_lab_receives(client: AsyncClient, db: AsyncSession) -> None:
    m = await inspection_market(client, db, status="confirmed")
    out = await planned(client, m)
    url = f"/api/v1/inspections/{out['id']}"
    _, stranger = await signed_up(client, roles=("buyer",))
    shipment = {"tracking_reference": "SF1234567890", "carrier": "SF Express"}

    # Not yet: the production booking is only confirmed; receipt before any shipment.
    early = await _post(client, f"{url}/shipment", m["supplier"], shipment)
    assert early.status_code == 409 and early.json()["current_status"] == "confirmed", early.text
    r = await _post(client, f"{url}/receipt", m["lab_headers"])
    assert r.status_code == 409 and r.json()["error"] == "invalid_inspection_state"
    assert (await act(client, m["supplier"], m["production"]["id"], "start")).status_code == 200
    for who, code in ((stranger, 404), (m["buyer"], 403), (m["lab_headers"], 403), (m["admin"], 403)):
        assert (await _post(client, f"{url}/shipment", who, shipment)).status_code == code
    assert (await _post(client, f"{url}/shipment", m["supplier"], {"tracking_reference": ""})).status_code == 422
    bad = {"tracking_reference": "SF\x07123"}
    assert (await _post(client, f"{url}/shipment", m["supplier"], bad)).status_code == 422

    shipped = await _post(client, f"{url}/shipment", m["supplier"], shipment)
    assert shipped.status_code == 200, shipped.text
    body = shipped.json()
    assert body["status"] == "shipped" and body["tracking_reference"] == "SF1234567890" and body["shipped_at"]
    assert body["carrier"] == "SF Express"  # kept with the tracking reference (the lab knows whom to ask)
    assert (await _post(client, f"{url}/shipment", m["supplier"], shipment)).status_code == 409
    assert "inspection.shipped" in await _kinds(client, m["lab_headers"])
    assert "inspection.shipped" in await _kinds(client, m["buyer"])

    for who, code in ((stranger, 404), (m["buyer"], 403), (m["supplier"], 403)):
        assert (await _post(client, f"{url}/receipt", who)).status_code == code
    received = await _post(client, f"{url}/receipt", m["lab_headers"])
    assert received.status_code == 200, received.text
    assert received.json()["status"] == "received" and received.json()["received_at"]
    assert (await _post(client, f"{url}/receipt", m["lab_headers"])).status_code == 409
    assert "inspection.received" in await _kinds(client, m["buyer"])
    assert "inspection.received" in await _kinds(client, m["supplier"])


async def test_the_buyer_extends_the_due_date(client: AsyncClient, db: AsyncSession) -> None:
    m = await inspection_market(client, db)
    out = await planned(client, m)
    url = f"/api/v1/inspections/{out['id']}/extend"
    due = date.fromisoformat(out["due_date"])
    _, stranger = await signed_up(client, roles=("buyer",))
    later = {"due_date": str(due + timedelta(days=7))}
    for who, code in ((stranger, 404), (m["supplier"], 403), (m["lab_headers"], 403)):
        assert (await _post(client, url, who, later)).status_code == code
    same = await _post(client, url, m["buyer"], {"due_date": str(due)})
    assert same.status_code == 422 and "later than the current due date" in same.text
    assert (await _post(client, url, m["buyer"], {"due_date": str(due + timedelta(days=400))})).status_code == 422
    ok = await _post(client, url, m["buyer"], later)
    assert ok.status_code == 200 and ok.json()["due_date"] == later["due_date"], ok.text
    assert "inspection.extended" in await _kinds(client, m["lab_headers"])


async def test_the_overdue_sweep_tells_the_buyer_once(client: AsyncClient, db: AsyncSession) -> None:
    m = await inspection_market(client, db)
    out = await planned(client, m)
    past = date.today() - timedelta(days=2)
    await db.execute(sa.text("UPDATE inspections SET due_date = :d WHERE id = :id"), {"d": past, "id": out["id"]})
    await db.commit()
    got = (await client.get(f"/api/v1/inspections/{out['id']}", headers=m["buyer"])).json()
    assert got["overdue"] is True
    assert (await tasks.sweep_overdue(db))["overdue_notified"] >= 1
    await db.commit()
    assert (await tasks.sweep_overdue(db))["overdue_notified"] == 0  # idempotent
    await db.commit()
    assert (await _kinds(client, m["buyer"])).count("inspection.overdue") == 1
    assert "inspection.overdue" not in await _kinds(client, m["supplier"])

    # An extension clears the notice: overdue again later, the buyer hears of it again.
    ext = await _post(
        client, f"/api/v1/inspections/{out['id']}/extend", m["buyer"], {"due_date": str(past + timedelta(days=1))}
    )
    assert ext.status_code == 200, ext.text
    assert (await tasks.sweep_overdue(db))["overdue_notified"] >= 1
    await db.commit()
    assert (await _kinds(client, m["buyer"])).count("inspection.overdue") == 2


async def test_cancelling_the_production_booking_cancels_its_open_inspection(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await inspection_market(client, db, status="confirmed")
    out = await planned(client, m)
    r = await act(client, m["buyer"], m["production"]["id"], "cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    got = (await client.get(f"/api/v1/inspections/{out['id']}", headers=m["lab_headers"])).json()
    assert got["status"] == "cancelled"
    assert "inspection.cancelled" in await _kinds(client, m["lab_headers"])
