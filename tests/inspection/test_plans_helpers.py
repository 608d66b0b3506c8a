"""Builders for inspection plan tests (no tests here): a factory with a machine, a buyer, an independent lab,
and a production booking moved through the API to the state a test needs."""

from __future__ import annotations

import uuid
from typing import Any

from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession

from tests.bookings.helpers import book, market, slot
from tests.factories import create_asset, lab_payload, publish, published_asset

CHARACTERISTICS = [
    {"name": "Bore diameter", "nominal": "12.000", "lower_tol": "-0.020", "upper_tol": "0.020", "unit": "mm"},
    {"name": "Hardness", "nominal": 45, "lower_tol": -3, "upper_tol": 3, "unit": "HRC"},
]

PRODUCTION_STEPS = {
    "held": (),
    "requested": ("payment/accept-terms",),
    "confirmed": ("payment/accept-terms", "accept"),
    "in_progress": ("payment/accept-terms", "accept", "start"),
    "completed": ("payment/accept-terms", "accept", "start", "complete"),
}


async def act(client: AsyncClient, headers: dict[str, str], booking_id: str, action: str) -> Response:
    body = {"reason": "made ahead of the slot"} if action in ("complete", "cancel", "decline") else None
    return await client.post(f"/api/v1/bookings/{booking_id}/{action}", headers=headers, json=body)


async def move(client: AsyncClient, m: dict[str, Any], booking_id: str, status: str) -> None:
    for action in PRODUCTION_STEPS[status]:
        who = m["buyer"] if action == "payment/accept-terms" else m["supplier"]
        r = await act(client, who, booking_id, action)
        assert r.status_code == 200, (action, r.text)


async def inspection_market(
    client: AsyncClient, db: AsyncSession, *, status: str = "completed", capacity: int = 200
) -> dict[str, Any]:
    """A factory's machine booked by a buyer (moved to ``status``) and an independent lab service."""
    m = await market(client, db)
    start, end = slot(3)
    r = await book(client, m["buyer"], m["asset"]["id"], start, end)
    assert r.status_code == 201, r.text
    m["production"] = r.json()
    await move(client, m, m["production"]["id"], status)
    lab, lab_headers, lab_site = await published_asset(
        client, db, m["admin"], kind="lab_service", daily_sample_capacity=capacity
    )
    m.update(lab=lab, lab_headers=lab_headers, lab_site=lab_site)
    return m


async def factory_lab(client: AsyncClient, m: dict[str, Any]) -> dict[str, Any]:
    """A published lab service of the factory itself (not independent)."""
    asset = await create_asset(client, m["supplier"], lab_payload(m["site"]["id"], daily_sample_capacity=200))
    return await publish(client, m["supplier"], m["admin"], asset["id"])


def plan_body(m: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "lab_asset_id": m["lab"]["id"],
        "characteristics": CHARACTERISTICS,
        "sampling": {"standard": "ISO 2859-1", "inspection_level": "II", "aql": "1.0"},
        "lot_size": 1000,
        "require_accreditation": True,
    }
    body.update(overrides)
    return body


async def plan(
    client: AsyncClient, m: dict[str, Any], headers: dict[str, str] | None = None, **overrides: Any
) -> Response:
    return await client.post(
        f"/api/v1/bookings/{m['production']['id']}/inspection",
        headers={**(headers or m["buyer"]), "Idempotency-Key": f"insp-{uuid.uuid4()}"},
        json=plan_body(m, **overrides),
    )


async def planned(client: AsyncClient, m: dict[str, Any]) -> dict[str, Any]:
    r = await plan(client, m)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out
