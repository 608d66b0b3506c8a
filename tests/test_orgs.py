from __future__ import annotations

import uuid

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import admin_headers, login, register, signed_up, unique_email


async def test_members_cannot_manage_members_and_last_owner_cannot_leave(client: AsyncClient, db: AsyncSession) -> None:
    reg, owner = await signed_up(client)
    org_id = reg["org"]["id"]
    member = await register(client)
    await db.execute(sa.text("UPDATE users SET email_verified_at = now() WHERE id = :id"), {"id": member["user"]["id"]})
    await db.commit()
    await client.post(f"/api/v1/orgs/{org_id}/members", json={"email": member["email"]}, headers=owner)
    member_headers = await login(client, member["email"])
    await db.execute(
        sa.text("UPDATE org_invitations SET accepted_at = now(), token_hash = NULL WHERE email = :e"),
        {"e": member["email"]},
    )
    await db.execute(
        sa.text("INSERT INTO memberships (org_id, user_id, role) VALUES (:o, :u, 'member')"),
        {"o": org_id, "u": member["user"]["id"]},
    )
    await db.commit()

    forbidden = await client.post(
        f"/api/v1/orgs/{org_id}/members", json={"email": unique_email()}, headers=member_headers
    )
    assert forbidden.status_code == 403 and forbidden.json()["error"] == "forbidden"

    last_owner = await client.delete(f"/api/v1/orgs/{org_id}/members/{reg['user']['id']}", headers=owner)
    assert last_owner.status_code == 409 and last_owner.json()["error"] == "last_owner"

    removed = await client.delete(f"/api/v1/orgs/{org_id}/members/{member['user']['id']}", headers=owner)
    assert removed.status_code == 204
    gone = await client.get(f"/api/v1/orgs/{org_id}", headers=member_headers)
    assert gone.status_code == 404


async def test_api_key_lifecycle_and_scopes(client: AsyncClient) -> None:
    reg, owner = await signed_up(client)
    org_id = reg["org"]["id"]
    created = await client.post(
        f"/api/v1/orgs/{org_id}/api-keys",
        json={"name": "MES", "scopes": ["orgs:read", "listings:write"]},
        headers=owner,
    )
    assert created.status_code == 201
    key = created.json()
    secret = key["secret"]
    assert secret.startswith("mk_") and key["prefix"] == secret[:11]

    listed = (await client.get(f"/api/v1/orgs/{org_id}/api-keys", headers=owner)).json()["items"]
    assert [k["id"] for k in listed] == [key["id"]]
    assert "secret" not in listed[0] and secret not in str(listed)

    # The key works as a bearer token and as X-API-Key, for its own organisation only.
    assert (
        await client.get(f"/api/v1/orgs/{org_id}", headers={"Authorization": f"Bearer {secret}"})
    ).status_code == 200
    assert (await client.get(f"/api/v1/orgs/{org_id}", headers={"X-API-Key": secret})).status_code == 200
    other, _ = await signed_up(client)
    assert (await client.get(f"/api/v1/orgs/{other['org']['id']}", headers={"X-API-Key": secret})).status_code == 404

    # An API key is not a user: user-only endpoints refuse it.
    me = await client.get("/api/v1/me", headers={"X-API-Key": secret})
    assert me.status_code == 403

    revoked = await client.delete(f"/api/v1/orgs/{org_id}/api-keys/{key['id']}", headers=owner)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    after = await client.get(f"/api/v1/orgs/{org_id}", headers={"X-API-Key": secret})
    assert after.status_code == 401 and after.json()["error"] == "not_authenticated"


async def test_api_key_scope_is_enforced(client: AsyncClient) -> None:
    from fastapi import Depends

    from marketplace.auth.deps import require_scope

    reg, owner = await signed_up(client)
    org_id = reg["org"]["id"]
    secret = (
        await client.post(
            f"/api/v1/orgs/{org_id}/api-keys", json={"name": "ro", "scopes": ["orgs:read"]}, headers=owner
        )
    ).json()["secret"]

    app = client._transport.app  # type: ignore[attr-defined]

    @app.get("/api/v1/_scoped", dependencies=[Depends(require_scope("bookings:write"))])
    async def scoped() -> dict[str, bool]:
        return {"ok": True}

    denied = await client.get("/api/v1/_scoped", headers={"X-API-Key": secret})
    assert denied.status_code == 403 and "bookings:write" in denied.json()["detail"]
    assert (await client.get("/api/v1/_scoped", headers=owner)).status_code == 200


async def test_unknown_scope_is_rejected(client: AsyncClient) -> None:
    reg, owner = await signed_up(client)
    resp = await client.post(
        f"/api/v1/orgs/{reg['org']['id']}/api-keys",
        json={"name": "x", "scopes": ["everything"]},
        headers=owner,
    )
    assert resp.status_code == 422 and "unknown scopes" in resp.json()["detail"]


async def test_verification_flow_is_audited(client: AsyncClient, db: AsyncSession) -> None:
    reg, owner = await signed_up(client, country="CN")
    org_id = reg["org"]["id"]
    admin = await admin_headers(client, db)

    missing_uscc = await client.post(
        f"/api/v1/orgs/{org_id}/verification",
        headers=owner,
        json={
            "legal_name": "苏州某某精密机械有限公司",
            "documents": [{"name": "营业执照", "reference": "s3://docs/1.pdf"}],
        },
    )
    assert missing_uscc.status_code == 422

    submitted = await client.post(
        f"/api/v1/orgs/{org_id}/verification",
        headers=owner,
        json={
            "legal_name": "苏州某某精密机械有限公司",
            "uscc": "91440101MA5CJQ4N59",
            "documents": [{"name": "营业执照", "reference": "s3://docs/1.pdf"}],
        },
    )
    assert submitted.status_code == 200 and submitted.json()["verification_status"] == "pending"

    again = await client.post(
        f"/api/v1/orgs/{org_id}/verification",
        headers=owner,
        json={"legal_name": "x", "documents": [{"name": "a", "reference": "b"}]},
    )
    assert again.status_code == 409 and again.json()["current_status"] == "pending"

    queue = (await client.get("/api/v1/admin/orgs?status=pending", headers=admin)).json()["items"]
    assert org_id in [o["id"] for o in queue]

    decided = await client.post(
        f"/api/v1/admin/orgs/{org_id}/verify",
        headers=admin,
        json={"decision": "verified", "reason": "licence checked"},
    )
    assert decided.status_code == 200 and decided.json()["verification_status"] == "verified"
    assert decided.json()["verification_reason"] == "licence checked"

    illegal = await client.post(
        f"/api/v1/admin/orgs/{org_id}/verify", headers=admin, json={"decision": "verified", "reason": "twice"}
    )
    assert illegal.status_code == 409 and illegal.json()["error"] == "invalid_transition"

    audit = (await client.get(f"/api/v1/admin/audit?target_id={org_id}", headers=admin)).json()["items"]
    assert [a["action"] for a in audit] == ["org.verified", "org.verification_submitted"]
    assert audit[0]["before"]["verification_status"] == "pending"
    assert audit[0]["after"]["verification_status"] == "verified"
    assert audit[0]["request_id"]


async def test_admin_endpoints_need_an_admin(client: AsyncClient) -> None:
    _, user = await signed_up(client)
    for path in ("/api/v1/admin/orgs", "/api/v1/admin/audit"):
        resp = await client.get(path, headers=user)
        assert resp.status_code == 403 and resp.json()["error"] == "forbidden"
        assert (await client.get(path)).status_code == 401


async def test_admin_org_list_paginates(client: AsyncClient, db: AsyncSession) -> None:
    admin = await admin_headers(client, db)
    for _ in range(3):
        await register(client)
    seen: list[str] = []
    cursor = None
    while True:
        url = "/api/v1/admin/orgs?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url, headers=admin)).json()
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) >= 3
    bad = await client.get("/api/v1/admin/orgs?cursor=%%%garbage", headers=admin)
    assert bad.status_code == 400 and bad.json()["error"] == "bad_request"


async def test_member_of_a_gets_404_on_every_b_resource(client: AsyncClient) -> None:
    a, a_headers = await signed_up(client)
    b, b_headers = await signed_up(client)
    b_org = b["org"]["id"]
    b_key = (
        await client.post(
            f"/api/v1/orgs/{b_org}/api-keys", json={"name": "k", "scopes": ["orgs:read"]}, headers=b_headers
        )
    ).json()
    requests = [
        ("GET", f"/api/v1/orgs/{b_org}", None),
        ("GET", f"/api/v1/orgs/{b_org}/members", None),
        ("POST", f"/api/v1/orgs/{b_org}/members", {"email": unique_email()}),
        ("DELETE", f"/api/v1/orgs/{b_org}/members/{b['user']['id']}", None),
        ("GET", f"/api/v1/orgs/{b_org}/api-keys", None),
        ("POST", f"/api/v1/orgs/{b_org}/api-keys", {"name": "x", "scopes": ["orgs:read"]}),
        ("DELETE", f"/api/v1/orgs/{b_org}/api-keys/{b_key['id']}", None),
        (
            "POST",
            f"/api/v1/orgs/{b_org}/verification",
            {"legal_name": "x", "documents": [{"name": "a", "reference": "b"}]},
        ),
    ]
    for method, url, body in requests:
        resp = await client.request(method, url, json=body, headers=a_headers)
        assert resp.status_code == 404, (method, url, resp.text)
        assert resp.json()["error"] == "not_found"
    # And an organisation that does not exist looks exactly the same.
    missing = await client.get(f"/api/v1/orgs/{uuid.uuid4()}", headers=a_headers)
    assert (
        missing.status_code == 404
        and missing.json()["detail"] == (await client.get(f"/api/v1/orgs/{b_org}", headers=a_headers)).json()["detail"]
    )
    assert a["org"]["id"] != b_org
