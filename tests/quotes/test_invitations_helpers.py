"""Shared builders of the opportunities, invitations and cascade tests (no tests here): two verified factories
whose mills serve the same request (the cheaper ranks first), and a buyer posting requests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.bookings.helpers import ALWAYS_OPEN
from tests.factories import SUZHOU, admin_headers, published_asset, signed_up

MILL: dict[str, Any] = {
    "process_codes": ["machining.milling.cnc_3axis"],
    "materials": ["al_6061", "ss_304"],
    "envelope_mm": {"x": 1000, "y": 600, "z": 300},
    "tolerance_mm": 0.02,
    "hourly_rate": 12000,
    "setup_fee": 5000,
    "title": "Haas VF-2",
    "weekly": ALWAYS_OPEN,
}


def request_body(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    body: dict[str, Any] = {
        "kind": "machine",
        "process_code": "machining.milling.cnc_3axis",
        "material": "al_6061",
        "quantity": 50,
        "duration_minutes": 240,
        "part_envelope_mm": {"x": 300, "y": 200, "z": 100},
        "tolerance_mm": 0.05,
        "required_certificates": [],
        "earliest_start": (now + timedelta(days=1)).isoformat(),
        "deadline": (now + timedelta(days=15)).isoformat(),
        "location": {"latitude": 31.3, "longitude": 120.6},
        "max_distance_km": 150,
        "region_prefixes": [],
        "budget_max": 500000,
        "currency": "CNY",
        "weights": {"price": 0.9, "distance": 0.05, "start": 0.05, "quality": 0.0},
    }
    body.update(overrides)
    return body


async def build(client: AsyncClient, db: AsyncSession) -> dict[str, Any]:
    """Two verified factories (cheap mill ranks 1, dear mill ranks 2), a buyer and a third buyer organisation."""
    admin = await admin_headers(client, db)
    cheap, cheap_owner, _ = await published_asset(client, db, admin, site=SUZHOU, **MILL)
    dear, dear_owner, _ = await published_asset(
        client, db, admin, site=SUZHOU, **{**MILL, "hourly_rate": 30000, "title": "DMG 3-axis"}
    )
    buyer_reg, buyer = await signed_up(client, roles=("buyer",), country="CN")
    _stranger_reg, stranger = await signed_up(client, roles=("buyer",), country="CN")
    return {
        "admin": admin,
        "cheap": cheap,
        "cheap_owner": cheap_owner,
        "dear": dear,
        "dear_owner": dear_owner,
        "buyer": buyer,
        "buyer_org": buyer_reg["org"]["id"],
        "stranger": stranger,
    }


async def post_request(client: AsyncClient, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    resp = await client.post("/api/v1/requests", json=request_body(**overrides), headers=headers)
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data
