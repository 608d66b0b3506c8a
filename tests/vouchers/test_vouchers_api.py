"""Vouchers through the API: grant, application, decisions, region eligibility, lists, and strangers."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import admin_headers, signed_up
from tests.vouchers.conftest import (
    SHANGHAI_REGION,
    buyer_in,
    granted_voucher,
    programme,
    programme_org,
)


async def _audited(db: AsyncSession, action: str, target: str) -> bool:
    found = await db.execute(
        sa.text("SELECT count(*) FROM audit_log WHERE action = :a AND target_id = :t"), {"a": action, "t": target}
    )
    return int(found.scalar_one()) == 1


async def _setup(client: AsyncClient, db: AsyncSession, **overrides: Any) -> dict[str, Any]:
    reg, headers = await programme_org(client, db)
    prog = await programme(client, headers, reg["org"]["id"], **overrides)
    buyer_reg, buyer = await buyer_in(client)
    return {"p": headers, "prog": prog, "buyer": buyer, "buyer_org": buyer_reg["org"]["id"]}


def _vouchers(prog: dict[str, Any]) -> str:
    return f"/api/v1/programmes/{prog['id']}/vouchers"


async def test_the_programme_grants_a_voucher_to_an_eligible_buyer(client: AsyncClient, db: AsyncSession) -> None:
    s = await _setup(client, db)
    out = await granted_voucher(client, s["p"], s["prog"]["id"], s["buyer_org"])
    assert out["buyer_org_id"] == s["buyer_org"] and out["programme"]["rate_bp"] == 5000
    assert out["used_this_year"] == 0 and out["remaining_this_year"] == s["prog"]["cap_per_buyer_year"]
    assert await _audited(db, "voucher.grant", out["id"])
    again = await client.post(_vouchers(s["prog"]), json={"buyer_org_id": s["buyer_org"]}, headers=s["p"])
    assert again.status_code == 409 and again.json()["error"] == "voucher_exists", again.text


async def test_a_buyer_applies_and_the_programme_approves(client: AsyncClient, db: AsyncSession) -> None:
    s = await _setup(client, db)
    resp = await client.post(
        _vouchers(s["prog"]), json={"buyer_org_id": s["buyer_org"], "note": "Tensile tests"}, headers=s["buyer"]
    )
    assert resp.status_code == 201 and resp.json()["status"] == "applied", resp.text
    voucher = resp.json()
    assert await _audited(db, "voucher.apply", voucher["id"])
    twice = await client.post(_vouchers(s["prog"]), json={"buyer_org_id": s["buyer_org"]}, headers=s["buyer"])
    assert twice.status_code == 409 and twice.json()["error"] == "voucher_exists"
    url = f"{_vouchers(s['prog'])}/{voucher['id']}/decision"
    by_buyer = await client.post(url, json={"decision": "approve"}, headers=s["buyer"])
    assert by_buyer.status_code == 403, by_buyer.text
    ok = await client.post(url, json={"decision": "approve"}, headers=s["p"])
    assert ok.status_code == 200 and ok.json()["status"] == "granted", ok.text
    assert await _audited(db, "voucher.approve", voucher["id"])
    wrong = await client.post(url, json={"decision": "reject"}, headers=s["p"])
    assert wrong.status_code == 409 and wrong.json()["error"] == "invalid_voucher_state", wrong.text
    revoked = await client.post(url, json={"decision": "revoke", "reason": "left the park"}, headers=s["p"])
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert revoked.json()["decision_reason"] == "left the park"
    assert await _audited(db, "voucher.revoke", voucher["id"])


async def test_the_programme_rejects_an_application_or_grants_it_by_granting(
    client: AsyncClient, db: AsyncSession
) -> None:
    s = await _setup(client, db)
    body = {"buyer_org_id": s["buyer_org"]}
    applied = (await client.post(_vouchers(s["prog"]), json=body, headers=s["buyer"])).json()
    url = f"{_vouchers(s['prog'])}/{applied['id']}/decision"
    rejected = await client.post(url, json={"decision": "reject", "reason": "not an SME"}, headers=s["p"])
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert await _audited(db, "voucher.reject", applied["id"])
    other_reg, other = await buyer_in(client)
    pending = await client.post(_vouchers(s["prog"]), json={"buyer_org_id": other_reg["org"]["id"]}, headers=other)
    assert pending.json()["status"] == "applied"
    granted = await granted_voucher(client, s["p"], s["prog"]["id"], other_reg["org"]["id"])
    assert granted["id"] == pending.json()["id"]


async def test_auto_grant_grants_an_eligible_application_at_once(client: AsyncClient, db: AsyncSession) -> None:
    s = await _setup(client, db, auto_grant=True)
    resp = await client.post(_vouchers(s["prog"]), json={"buyer_org_id": s["buyer_org"]}, headers=s["buyer"])
    assert resp.status_code == 201 and resp.json()["status"] == "granted", resp.text


async def test_only_buyers_registered_in_the_region_are_eligible(client: AsyncClient, db: AsyncSession) -> None:
    s = await _setup(client, db, auto_grant=True)
    cases = [
        (await buyer_in(client, SHANGHAI_REGION), "outside the programme's region"),
        (await buyer_in(client, None), "no Unified Social Credit Code"),
        (await buyer_in(client, roles=("supplier",)), "not a buyer"),
    ]
    for (reg, headers), why in cases:
        for caller in (headers, s["p"]):  # applying, and granting, alike
            resp = await client.post(_vouchers(s["prog"]), json={"buyer_org_id": reg["org"]["id"]}, headers=caller)
            assert resp.status_code == 422, resp.text
            body = resp.json()
            assert body["error"] == "voucher_not_eligible" and why in body["detail"], body
            assert body["fields"][0]["field"] == "buyer_org_id"
    # A district-level prefix: Suzhou's Gusu district (320508) is in 3205, Shanghai is not in 320508.
    district = await _setup(client, db, region_prefix="320508", auto_grant=True)
    reg, headers = await buyer_in(client, "320508")
    ok = await client.post(_vouchers(district["prog"]), json={"buyer_org_id": reg["org"]["id"]}, headers=headers)
    assert ok.status_code == 201 and ok.json()["status"] == "granted"
    city = await client.post(
        _vouchers(district["prog"]), json={"buyer_org_id": district["buyer_org"]}, headers=district["buyer"]
    )
    assert city.status_code == 422  # registered in 320500, not in the district


async def test_a_closed_programme_takes_no_applications(client: AsyncClient, db: AsyncSession) -> None:
    s = await _setup(client, db)
    await client.patch(f"/api/v1/programmes/{s['prog']['id']}", json={"status": "closed"}, headers=s["p"])
    resp = await client.post(_vouchers(s["prog"]), json={"buyer_org_id": s["buyer_org"]}, headers=s["buyer"])
    assert resp.status_code == 422 and resp.json()["error"] == "voucher_not_eligible", resp.text


async def test_strangers_get_404_for_other_organisations_vouchers(client: AsyncClient, db: AsyncSession) -> None:
    s = await _setup(client, db)
    voucher = await granted_voucher(client, s["p"], s["prog"]["id"], s["buyer_org"])
    _stranger_reg, stranger = await buyer_in(client)
    # Applying for somebody else's organisation.
    resp = await client.post(_vouchers(s["prog"]), json={"buyer_org_id": s["buyer_org"]}, headers=stranger)
    assert resp.status_code == 404, resp.text
    # Another organisation's voucher list.
    assert (await client.get(f"/api/v1/orgs/{s['buyer_org']}/vouchers", headers=stranger)).status_code == 404
    # A voucher of one programme through another programme's path.
    other_reg, other_p = await programme_org(client, db)
    other_prog = await programme(client, other_p, other_reg["org"]["id"])
    url = f"/api/v1/programmes/{other_prog['id']}/vouchers/{voucher['id']}/decision"
    assert (await client.post(url, json={"decision": "revoke"}, headers=other_p)).status_code == 404
    # Another programme's operators neither decide nor list this programme's vouchers.
    mine = f"{_vouchers(s['prog'])}/{voucher['id']}/decision"
    assert (await client.post(mine, json={"decision": "revoke"}, headers=other_p)).status_code == 403
    assert (await client.get(_vouchers(s["prog"]), headers=other_p)).status_code == 403
    assert (await client.get(_vouchers(s["prog"]), headers=stranger)).status_code == 403
    unknown = await client.post(
        f"/api/v1/programmes/{uuid.uuid4()}/vouchers", json={"buyer_org_id": s["buyer_org"]}, headers=s["buyer"]
    )
    assert unknown.status_code == 404 and unknown.json()["error"] == "programme_not_found"


async def test_lists_of_a_programmes_and_an_organisations_vouchers(client: AsyncClient, db: AsyncSession) -> None:
    s = await _setup(client, db)
    granted = await granted_voucher(client, s["p"], s["prog"]["id"], s["buyer_org"])
    other_reg, other = await buyer_in(client)
    applied = (
        await client.post(_vouchers(s["prog"]), json={"buyer_org_id": other_reg["org"]["id"]}, headers=other)
    ).json()
    everything = (await client.get(_vouchers(s["prog"]), headers=s["p"])).json()
    assert {v["id"] for v in everything} == {granted["id"], applied["id"]}
    only_applied = (await client.get(_vouchers(s["prog"]), params={"status": "applied"}, headers=s["p"])).json()
    assert [v["id"] for v in only_applied] == [applied["id"]]
    assert only_applied[0]["buyer_name"] == other_reg["org"]["name"]
    admin = await admin_headers(client, db)
    assert len((await client.get(_vouchers(s["prog"]), headers=admin)).json()) == 2
    mine = await client.get(f"/api/v1/orgs/{s['buyer_org']}/vouchers", headers=s["buyer"])
    assert mine.status_code == 200, mine.text
    [held] = mine.json()
    assert held["id"] == granted["id"] and held["programme"]["name"] == s["prog"]["name"]
    assert held["programme"]["payment_mode"] == "advance"
    assert held["used_this_year"] == 0 and held["remaining_this_year"] == s["prog"]["cap_per_buyer_year"]
    assert (await client.get(f"/api/v1/orgs/{s['buyer_org']}/vouchers", headers=admin)).status_code == 200


async def test_a_member_of_a_supplier_cannot_apply_for_its_org(client: AsyncClient, db: AsyncSession) -> None:
    s = await _setup(client, db)
    reg, headers = await signed_up(client, roles=("supplier",), country="CN")
    resp = await client.post(_vouchers(s["prog"]), json={"buyer_org_id": reg["org"]["id"]}, headers=headers)
    assert resp.status_code == 422 and resp.json()["error"] == "voucher_not_eligible", resp.text
