"""Voucher programmes through the API: who may create and change them, what is validated, who sees what."""

from __future__ import annotations

import uuid

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import admin_headers, signed_up
from tests.vouchers.conftest import buyer_in, programme, programme_body, programme_org


async def _audit(db: AsyncSession, action: str, target: str) -> int:
    import sqlalchemy as sa

    found = await db.execute(
        sa.text("SELECT count(*) FROM audit_log WHERE action = :a AND target_id = :t"), {"a": action, "t": target}
    )
    return int(found.scalar_one())


async def test_a_verified_programme_org_creates_a_programme_and_it_is_audited(
    client: AsyncClient, db: AsyncSession
) -> None:
    reg, headers = await programme_org(client, db)
    out = await programme(client, headers, reg["org"]["id"], eligible_families=["testing", "machining"])
    assert out["status"] == "active"
    assert out["eligible_families"] == ["testing", "machining"]
    assert out["budget_used"] == 0 and out["budget_remaining"] == 10_000_000
    assert await _audit(db, "programme.create", out["id"]) == 1


async def test_an_unverified_programme_org_cannot_create_a_programme(client: AsyncClient, db: AsyncSession) -> None:
    reg, headers = await programme_org(client, db, verified=False)
    resp = await client.post("/api/v1/programmes", json=programme_body(reg["org"]["id"]), headers=headers)
    assert resp.status_code == 409 and resp.json()["error"] == "programme_org_unverified", resp.text


async def test_a_buyer_or_supplier_org_cannot_run_a_programme(client: AsyncClient, db: AsyncSession) -> None:
    for roles in (("buyer",), ("supplier",), ("buyer", "supplier")):
        reg, headers = await signed_up(client, roles=roles, country="CN")
        from tests.factories import verify_org

        await verify_org(db, reg["org"]["id"])
        resp = await client.post("/api/v1/programmes", json=programme_body(reg["org"]["id"]), headers=headers)
        assert resp.status_code == 403 and resp.json()["error"] == "not_programme_org", resp.text


async def test_a_stranger_cannot_create_a_programme_for_someone_elses_org(
    client: AsyncClient, db: AsyncSession
) -> None:
    reg, _headers = await programme_org(client, db)
    _other, stranger = await programme_org(client, db)
    resp = await client.post("/api/v1/programmes", json=programme_body(reg["org"]["id"]), headers=stranger)
    assert resp.status_code == 404, resp.text


async def test_programme_fields_are_validated_with_field_errors(client: AsyncClient, db: AsyncSession) -> None:
    reg, headers = await programme_org(client, db)
    org_id = reg["org"]["id"]
    bad = {
        "region_prefix": "3",
        "eligible_kinds": [],
        "eligible_families": ["testing.mechanical"],
        "rate_bp": 0,
        "cap_per_booking": 0,
        "budget": -1,
        "valid_until": "2000-01-01",
        "payment_mode": "later",
        "currency": "cny",
    }
    for field, value in bad.items():
        resp = await client.post("/api/v1/programmes", json=programme_body(org_id, **{field: value}), headers=headers)
        assert resp.status_code == 422, (field, resp.text)
        body = resp.json()
        assert body["error"] == "validation_error" and body["fields"], (field, body)
    resp = await client.post(
        "/api/v1/programmes", json=programme_body(org_id, partner_programme_ids=[str(uuid.uuid4())]), headers=headers
    )
    assert resp.status_code == 422 and resp.json()["fields"][0]["field"] == "partner_programme_ids", resp.text


async def test_everyone_signed_in_sees_active_programmes_but_only_operators_see_the_budget_use(
    client: AsyncClient, db: AsyncSession
) -> None:
    reg, headers = await programme_org(client, db)
    out = await programme(client, headers, reg["org"]["id"], name="Kunshan vouchers")
    closed = await programme(client, headers, reg["org"]["id"], name="Old vouchers")
    resp = await client.patch(f"/api/v1/programmes/{closed['id']}", json={"status": "closed"}, headers=headers)
    assert resp.status_code == 200 and resp.json()["status"] == "closed", resp.text
    _b, buyer = await buyer_in(client)
    listed = await client.get("/api/v1/programmes", headers=buyer)
    assert listed.status_code == 200
    ids = {p["id"] for p in listed.json()}
    assert out["id"] in ids and closed["id"] not in ids
    one = (await client.get(f"/api/v1/programmes/{out['id']}", headers=buyer)).json()
    assert one["name"] == "Kunshan vouchers" and one["budget_used"] is None and one["budget_remaining"] is None
    admin = await admin_headers(client, db)
    seen = (await client.get(f"/api/v1/programmes/{out['id']}", headers=admin)).json()
    assert seen["budget_remaining"] == out["budget"]
    assert (await client.get(f"/api/v1/programmes/{uuid.uuid4()}", headers=buyer)).status_code == 404
    assert (await client.get("/api/v1/programmes")).status_code == 401


async def test_operators_update_a_programme_budget_only_up_and_strangers_cannot(
    client: AsyncClient, db: AsyncSession
) -> None:
    reg, headers = await programme_org(client, db)
    out = await programme(client, headers, reg["org"]["id"])
    other_reg, other = await programme_org(client, db)
    partner = await programme(client, other, other_reg["org"]["id"], region_prefix="3101")
    url = f"/api/v1/programmes/{out['id']}"
    lower = await client.patch(url, json={"budget": out["budget"] - 1}, headers=headers)
    assert lower.status_code == 422 and lower.json()["fields"][0]["field"] == "budget", lower.text
    itself = await client.patch(url, json={"partner_programme_ids": [out["id"]]}, headers=headers)
    assert itself.status_code == 422, itself.text
    ok = await client.patch(
        url,
        json={"budget": out["budget"] + 500, "auto_grant": True, "partner_programme_ids": [partner["id"]]},
        headers=headers,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["budget"] == out["budget"] + 500 and ok.json()["auto_grant"] is True
    assert ok.json()["partner_programme_ids"] == [partner["id"]]
    assert await _audit(db, "programme.update", out["id"]) == 1
    refused = await client.patch(url, json={"status": "closed"}, headers=other)
    assert refused.status_code == 403, refused.text
    _b, buyer = await buyer_in(client)
    assert (await client.patch(url, json={"status": "closed"}, headers=buyer)).status_code == 403
