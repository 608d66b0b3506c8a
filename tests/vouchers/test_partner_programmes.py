"""Partner programmes (the G60 case): programme Q accepts programme P's vouchers at suppliers in Q's region, and
P's budget pays; without Q listing P (or with Q closed) a P voucher is refused there."""

from __future__ import annotations

import uuid
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.vouchers.conftest import SHANGHAI, lab_booking_body, listing, programme, programme_org, voucher_market


async def _shanghai(client: AsyncClient, db: AsyncSession, **overrides: Any) -> dict[str, Any]:
    """Programme Q of a Shanghai bureau (region prefix 3101); returns Q's headers and Q."""
    reg, headers = await programme_org(client, db)
    q = await programme(client, headers, reg["org"]["id"], name="Pudong vouchers", region_prefix="3101", **overrides)
    return {"headers": headers, "q": q}


async def _spend(client: AsyncClient, m: dict[str, Any], lab: dict[str, Any]) -> Any:
    body = lab_booking_body(lab["id"], voucher_id=m["voucher"]["id"])
    return await client.post(
        "/api/v1/bookings", json=body, headers={**m["buyer"], "Idempotency-Key": str(uuid.uuid4())}
    )


async def _used(client: AsyncClient, headers: dict[str, str], programme_id: str) -> int:
    return int((await client.get(f"/api/v1/programmes/{programme_id}", headers=headers)).json()["budget_used"])


async def test_a_voucher_is_spent_in_a_partner_programmes_region_and_its_own_budget_pays(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await voucher_market(client, db)  # P: Suzhou
    s = await _shanghai(client, db, partner_programme_ids=[m["programme"]["id"]])
    lab, _h, _site = await listing(client, db, m["admin"], site=SHANGHAI)
    resp = await _spend(client, m, lab)
    assert resp.status_code == 201, resp.text
    booking = resp.json()
    assert booking["voucher_share"] == 15_000
    assert await _used(client, m["programme_headers"], m["programme"]["id"]) == 15_000  # P pays
    assert await _used(client, s["headers"], s["q"]["id"]) == 0
    vouchers = (await client.get(f"/api/v1/orgs/{m['buyer_org']}/vouchers", headers=m["buyer"])).json()
    assert vouchers[0]["used_this_year"] == 15_000


async def test_a_voucher_is_refused_where_no_active_programme_lists_its_programme(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await voucher_market(client, db)
    s = await _shanghai(client, db)  # Q does not list P
    lab, _h, _site = await listing(client, db, m["admin"], site=SHANGHAI)
    refused = await _spend(client, m, lab)
    assert refused.status_code == 422 and refused.json()["error"] == "voucher_not_eligible", refused.text
    # Q lists P, then closes: a closed programme's region takes no partner vouchers.
    url = f"/api/v1/programmes/{s['q']['id']}"
    listed = await client.patch(url, json={"partner_programme_ids": [m["programme"]["id"]]}, headers=s["headers"])
    assert listed.status_code == 200, listed.text
    assert (await _spend(client, m, lab)).status_code == 201
    await client.patch(url, json={"status": "closed"}, headers=s["headers"])
    closed = await _spend(client, m, lab)
    assert closed.status_code == 422 and closed.json()["error"] == "voucher_not_eligible", closed.text


async def test_partnership_is_one_way(client: AsyncClient, db: AsyncSession) -> None:
    """P listed by Q lets P's vouchers into Q's region, not Q's vouchers into P's."""
    # P (Suzhou) lists Q (Shanghai): that lets Q's vouchers into Suzhou, so a Suzhou voucher is still refused in
    # Shanghai.
    p = await voucher_market(client, db)
    s = await _shanghai(client, db)
    resp = await client.patch(
        f"/api/v1/programmes/{p['programme']['id']}",
        json={"partner_programme_ids": [s["q"]["id"]]},
        headers=p["programme_headers"],
    )
    assert resp.status_code == 200, resp.text
    lab, _h, _site = await listing(client, db, p["admin"], site=SHANGHAI)
    refused = await _spend(client, p, lab)
    assert refused.status_code == 422 and refused.json()["error"] == "voucher_not_eligible", refused.text
