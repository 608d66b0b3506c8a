"""A small market for the messages tests: a buyer with an open request, a verified factory whose published
mill can serve it (so it may see the request), and a third organisation that may not."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.bookings.helpers import ALWAYS_OPEN
from tests.documents.helpers import uploaded
from tests.documents.samples import STEP
from tests.factories import SUZHOU, admin_headers, create_asset, machine_payload, publish, signed_up, supplier
from tests.requests.test_requests_api import MILL, request_body


async def world(client: AsyncClient, db: AsyncSession, *, buyer_locale: str = "en", **request: Any) -> dict[str, Any]:
    admin = await admin_headers(client, db)
    sup_reg, sup, site = await supplier(client, db, site=SUZHOU)
    asset = await create_asset(
        client, sup, machine_payload(site["id"], **{k: v for k, v in MILL.items() if k != "weekly"}), ALWAYS_OPEN
    )
    await publish(client, sup, admin, asset["id"])
    buyer_reg, buyer = await signed_up(client, roles=("buyer",), country="CN", locale=buyer_locale)
    third_reg, third = await signed_up(client, roles=("supplier", "buyer"), country="CN")
    resp = await client.post("/api/v1/requests", json=request_body(**request), headers=buyer)
    assert resp.status_code == 201, resp.text
    return {
        "admin": admin,
        "supplier": sup,
        "supplier_org": sup_reg["org"]["id"],
        "supplier_user": sup_reg["user"]["id"],
        "supplier_name": sup_reg["org"]["name"],
        "supplier_email": sup_reg["email"],
        "buyer": buyer,
        "buyer_org": buyer_reg["org"]["id"],
        "buyer_email": buyer_reg["email"],
        "buyer_user": buyer_reg["user"]["id"],
        "third": third,
        "third_org": third_reg["org"]["id"],
        "request": resp.json(),
    }


async def step_file(client: AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    return await uploaded(client, headers, STEP, "bracket.step")
