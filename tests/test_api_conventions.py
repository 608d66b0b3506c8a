"""The API's shared conventions: one error shape, idempotency keys, OpenAPI, health and metrics."""

from __future__ import annotations

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import admin_headers, signed_up, unique_email


def _assert_envelope(resp, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) >= {"error", "detail", "request_id"}
    assert body["error"] == code
    assert body["request_id"] == resp.headers["x-request-id"]
    assert isinstance(body["detail"], str) and body["detail"]


async def test_error_envelope_for_each_status(client: AsyncClient, db: AsyncSession) -> None:
    reg, headers = await signed_up(client)
    _assert_envelope(await client.get("/api/v1/me"), 401, "not_authenticated")
    _assert_envelope(
        await client.get("/api/v1/me", headers={"Authorization": "Bearer garbage"}), 401, "not_authenticated"
    )
    _assert_envelope(await client.get("/api/v1/admin/audit", headers=headers), 403, "forbidden")
    _assert_envelope(
        await client.get("/api/v1/orgs/00000000-0000-0000-0000-000000000000", headers=headers),
        404,
        "not_found",
    )
    _assert_envelope(await client.get("/api/v1/no-such-route"), 404, "not_found")
    admin = await admin_headers(client, db)
    _assert_envelope(
        await client.post(
            f"/api/v1/admin/orgs/{reg['org']['id']}/verify",
            headers=admin,
            json={"decision": "verified", "reason": "not pending"},
        ),
        409,
        "invalid_transition",
    )
    _assert_envelope(await client.get("/api/v1/orgs/not-a-uuid", headers=headers), 422, "validation_error")
    _assert_envelope(
        await client.post("/api/v1/auth/register", content=b"{not json", headers={"content-type": "application/json"}),
        422,
        "validation_error",
    )


async def test_request_id_is_echoed_when_sane(client: AsyncClient) -> None:
    resp = await client.get("/api/v1/me", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["x-request-id"] == "abc-123" and resp.json()["request_id"] == "abc-123"
    evil = await client.get("/api/v1/me", headers={"X-Request-ID": "a b;" * 50})
    assert len(evil.headers["x-request-id"]) == 32 and evil.json()["request_id"] == evil.headers["x-request-id"]


async def test_idempotency_key_replays_the_first_response(client: AsyncClient) -> None:
    reg, owner = await signed_up(client)
    url = f"/api/v1/orgs/{reg['org']['id']}/members"
    body = {"email": unique_email()}
    first = await client.post(url, json=body, headers={**owner, "Idempotency-Key": "invite-1"})
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    replay = await client.post(url, json=body, headers={**owner, "Idempotency-Key": "invite-1"})
    assert replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    invitations = (await client.get(url.replace("/members", "/invitations"), headers=owner)).json()["items"]
    assert sum(i["email"] == body["email"] for i in invitations) == 1


async def test_idempotency_key_with_a_different_body_is_422(client: AsyncClient) -> None:
    reg, owner = await signed_up(client)
    url = f"/api/v1/orgs/{reg['org']['id']}/members"
    await client.post(url, json={"email": unique_email()}, headers={**owner, "Idempotency-Key": "k"})
    other = await client.post(url, json={"email": unique_email()}, headers={**owner, "Idempotency-Key": "k"})
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_mismatch"


async def test_failed_request_does_not_consume_the_key(client: AsyncClient) -> None:
    reg, owner = await signed_up(client)
    url = f"/api/v1/orgs/{reg['org']['id']}/verification"
    bad = {"legal_name": "x", "documents": [{"name": "a", "reference": "b"}]}
    # The organisation is in DE so no USCC is needed: first call succeeds...
    ok = await client.post(url, json=bad, headers={**owner, "Idempotency-Key": "v1"})
    assert ok.status_code == 200
    # ...a second, different key now conflicts (pending) and is rolled back with its key,
    conflict = await client.post(url, json=bad, headers={**owner, "Idempotency-Key": "v2"})
    assert conflict.status_code == 409
    # so retrying v2 runs again (and conflicts again) rather than replaying a stored error.
    again = await client.post(url, json=bad, headers={**owner, "Idempotency-Key": "v2"})
    assert again.status_code == 409 and "idempotent-replayed" not in again.headers


async def test_idempotency_keys_are_scoped_to_the_caller(client: AsyncClient) -> None:
    a, a_h = await signed_up(client)
    b, b_h = await signed_up(client)
    body = {"email": unique_email()}
    ra = await client.post(
        f"/api/v1/orgs/{a['org']['id']}/members", json=body, headers={**a_h, "Idempotency-Key": "same"}
    )
    rb = await client.post(
        f"/api/v1/orgs/{b['org']['id']}/members", json=body, headers={**b_h, "Idempotency-Key": "same"}
    )
    assert ra.status_code == rb.status_code == 201
    assert "idempotent-replayed" not in rb.headers


async def test_health_readiness_and_metrics(client: AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert 'marketplace_http_requests_total{method="GET",route="/readyz",status="200"}' in metrics.text


async def test_openapi_lists_every_endpoint_and_documents_errors(client: AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    expected = {
        ("post", "/api/v1/auth/register"),
        ("post", "/api/v1/auth/token"),
        ("post", "/api/v1/auth/refresh"),
        ("get", "/api/v1/me"),
        ("post", "/api/v1/orgs/{org_id}/members"),
        ("get", "/api/v1/orgs/{org_id}/members"),
        ("delete", "/api/v1/orgs/{org_id}/members/{user_id}"),
        ("patch", "/api/v1/orgs/{org_id}/members/{user_id}"),
        ("get", "/api/v1/orgs/{org_id}/invitations"),
        ("post", "/api/v1/orgs/{org_id}/invitations/{invitation_id}/resend"),
        ("delete", "/api/v1/orgs/{org_id}/invitations/{invitation_id}"),
        ("get", "/api/v1/invitations"),
        ("post", "/api/v1/invitations/accept"),
        ("post", "/api/v1/orgs/{org_id}/api-keys"),
        ("get", "/api/v1/orgs/{org_id}/api-keys"),
        ("delete", "/api/v1/orgs/{org_id}/api-keys/{key_id}"),
        ("post", "/api/v1/orgs/{org_id}/verification"),
        ("get", "/api/v1/admin/orgs"),
        ("post", "/api/v1/admin/orgs/{org_id}/verify"),
        ("get", "/api/v1/admin/audit"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
    }
    for method, path in expected:
        assert method in paths.get(path, {}), (method, path)
    assert spec["components"]["schemas"]["Error"]["required"] == ["error", "detail", "request_id"]
    for path, ops in paths.items():
        if not path.startswith("/api/v1"):
            continue
        for method, op in ops.items():
            errors = {c for c in op["responses"] if c.startswith(("4", "5"))}
            assert errors, (method, path)
            for code in errors:
                ref = op["responses"][code]["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/Error", (method, path, code)
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
