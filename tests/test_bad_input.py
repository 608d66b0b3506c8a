"""Bad input is a 4xx in the standard error shape, never a 500 (issue #12, item 2a).

A NUL character anywhere PostgreSQL would see it, control characters in one-line fields, lone surrogates, and
the database's own character errors as a backstop. The web forms parse through the same schemas and show the
error next to the form instead.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.db import SessionDep
from tests.factories import (
    SUZHOU,
    admin_headers,
    csrf_token,
    machine_payload,
    register,
    signed_up,
    supplier,
    unique_email,
)

LINE_MESSAGE = "must be a single line of text without control characters"
TEXT_MESSAGE = "must not contain control characters (tabs and line breaks are allowed)"
# The web forms say it in the page's language (marketplace/web/form_errors.py), as a sentence.
WEB_LINE_MESSAGE = "Use a single line of text without control characters."


def assert_field_error(resp: Response, field: str, message: str | None = None) -> None:
    """A 422 in the standard shape that names ``field``."""
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["error"] == "validation_error"
    assert body["request_id"] == resp.headers["x-request-id"]
    fields = {f["field"]: f["message"] for f in body["fields"]}
    assert field in fields, body
    if message is not None:
        assert fields[field] == message, body


# -- the cases named in the issue -------------------------------------------------------------------


async def test_sign_in_with_a_nul_in_the_user_name_is_a_422(client: AsyncClient) -> None:
    resp = await client.post("/api/v1/auth/token", data={"username": "a\x00b", "password": "whatever-password"})
    assert_field_error(resp, "username", LINE_MESSAGE)


async def test_search_with_a_nul_in_a_query_parameter_is_a_422(client: AsyncClient) -> None:
    assert_field_error(await client.get("/api/v1/assets", params={"region": "a\x00b"}), "query.region.0")
    for name in ("process", "material", "certificate", "currency", "cursor"):
        assert_field_error(await client.get("/api/v1/assets", params={name: "ab\x00"}), f"query.{name}")


async def test_registration_with_a_nul_in_the_full_name_is_a_422(client: AsyncClient) -> None:
    body: dict[str, Any] = {"email": unique_email(), "password": "a-long-password", "full_name": "Wang\x00Li"}
    assert_field_error(await client.post("/api/v1/auth/register", json=body), "full_name", LINE_MESSAGE)
    body["full_name"] = "Wang Li"
    body["org"] = {"name": "Org\x00", "roles": ["buyer"], "country": "CN"}
    assert_field_error(await client.post("/api/v1/auth/register", json=body), "org.name", LINE_MESSAGE)


async def test_a_site_name_with_a_nul_is_a_422(client: AsyncClient, db: AsyncSession) -> None:
    _, headers, _ = await supplier(client, db)
    resp = await client.post("/api/v1/sites", json={**SUZHOU, "name": "Plant\x001"}, headers=headers)
    assert_field_error(resp, "name", LINE_MESSAGE)


# -- one line versus several ------------------------------------------------------------------------


async def test_descriptions_keep_line_breaks_and_tabs_but_titles_do_not(client: AsyncClient, db: AsyncSession) -> None:
    _, headers, site = await supplier(client, db)
    multi = "Line one\r\nLine two\n\tindented"
    ok = await client.post("/api/v1/assets", json=machine_payload(site["id"], description=multi), headers=headers)
    assert ok.status_code == 201, ok.text
    assert ok.json()["description"] == multi
    for title in ("Two\nlines", "Tab\there", "Escape \x1b[31m", "Separator\u2028"):
        resp = await client.post("/api/v1/assets", json=machine_payload(site["id"], title=title), headers=headers)
        assert_field_error(resp, "machine.title", LINE_MESSAGE)
    resp = await client.post(
        "/api/v1/assets", json=machine_payload(site["id"], description="bell\x07"), headers=headers
    )
    assert_field_error(resp, "machine.description", TEXT_MESSAGE)


async def test_control_characters_in_nested_and_list_fields_are_refused(client: AsyncClient) -> None:
    reg, owner = await signed_up(client)
    org = reg["org"]["id"]
    resp = await client.post(
        f"/api/v1/orgs/{org}/verification",
        json={"legal_name": "Legal", "documents": [{"name": "licence\x00", "reference": "https://x.example/a"}]},
        headers=owner,
    )
    assert_field_error(resp, "documents.0.name", LINE_MESSAGE)
    resp = await client.post(
        f"/api/v1/orgs/{org}/api-keys", json={"name": "MES", "scopes": ["listings:read\x00"]}, headers=owner
    )
    assert_field_error(resp, "scopes.0", LINE_MESSAGE)


async def test_a_lone_surrogate_is_a_422_not_an_encoding_crash(client: AsyncClient) -> None:
    email = unique_email()
    raw = '{"email": "' + email + '", "password": "a-long-password", "full_name": "Wang \\ud800 Li"}'
    resp = await client.post("/api/v1/auth/register", content=raw, headers={"content-type": "application/json"})
    assert_field_error(resp, "full_name", "must be valid Unicode text")


async def test_formats_keep_a_nul_out_too(client: AsyncClient) -> None:
    """E-mail and URL inputs carry a format, not the text rule: their validators refuse a NUL (e-mail) or
    percent-encode it (URL), so none reaches PostgreSQL."""
    body = {"email": "a\x00@example.com", "password": "a-long-password", "full_name": "A"}
    resp = await client.post("/api/v1/auth/register", json=body)
    assert resp.status_code == 422 and "email" in {f["field"] for f in resp.json()["fields"]}, resp.text
    reg, owner = await signed_up(client)
    hook = {"url": "https://hooks.example/\x00x", "events": ["booking.held"]}
    resp = await client.post(f"/api/v1/orgs/{reg['org']['id']}/webhooks", json=hook, headers=owner)
    assert resp.status_code in (201, 422), resp.text
    assert resp.status_code == 422 or resp.json()["url"] == "https://hooks.example/%00x"


async def test_a_nul_in_a_path_parameter_or_header_is_a_422(client: AsyncClient) -> None:
    reg, owner = await signed_up(client)
    resp = await client.get(f"/api/v1/orgs/{reg['org']['id']}/payments/stripe-account/a%00b", headers=owner)
    assert_field_error(resp, "path.step", LINE_MESSAGE)
    resp = await client.delete(f"/api/v1/orgs/{reg['org']['id']}/members/a%00b", headers=owner)
    assert_field_error(resp, "path.user_id")
    resp = await client.get("/api/v1/admin/audit", params={"action": "x\x00"}, headers=owner)
    assert resp.status_code in (403, 422)  # a non-admin is refused first; never a 500


# -- the database's own character errors, a backstop --------------------------------------------------


def _add_raw_routes(app: FastAPI) -> None:
    """Routes (test only) that hand a string straight to PostgreSQL, bypassing the schemas."""

    @app.get("/test-only/raw-text")
    async def raw_text(value: str, session: SessionDep) -> dict[str, str]:
        return {"value": str((await session.execute(sa.text("SELECT CAST(:v AS text)"), {"v": value})).scalar())}

    @app.get("/test-only/raw-json")
    async def raw_json(value: str, session: SessionDep) -> dict[str, str]:
        doc = json.dumps({"value": value})
        return {"value": str((await session.execute(sa.text("SELECT CAST(:v AS jsonb)"), {"v": doc})).scalar())}


@pytest.mark.parametrize(("route", "sqlstate"), [("raw-text", "22021"), ("raw-json", "22P05")])
async def test_characters_postgresql_refuses_are_a_422_in_the_standard_shape(
    app: FastAPI, client: AsyncClient, route: str, sqlstate: str
) -> None:
    _add_raw_routes(app)
    ok = await client.get(f"/test-only/{route}", params={"value": "fine"})
    assert ok.status_code == 200, ok.text
    resp = await client.get(f"/test-only/{route}", params={"value": "a\x00b"})  # PostgreSQL: SQLSTATE {sqlstate}
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["error"] == "validation_error" and body["request_id"] == resp.headers["x-request-id"]
    assert "NUL" in body["detail"]


# -- the web forms ----------------------------------------------------------------------------------


async def test_a_nul_in_the_web_registration_form_is_shown_next_to_the_field(client: AsyncClient) -> None:
    token = csrf_token((await client.get("/register")).text)
    form = {
        "csrf_token": token,
        "full_name": "Wang\x00Li",
        "email": unique_email(),
        "password": "a-long-password",
        "org_name": "Org",
        "country": "CN",
        "role_buyer": "1",
    }
    resp = await client.post("/register", data=form)
    assert resp.status_code == 422
    assert 'id="full_name-error"' in resp.text and WEB_LINE_MESSAGE in resp.text


async def test_a_nul_in_the_web_site_form_is_shown_next_to_the_field(client: AsyncClient, db: AsyncSession) -> None:
    from tests.factories import PASSWORD, verify_org

    reg = await register(client, roles=("supplier",), country="CN")
    await verify_org(db, reg["org"]["id"])
    token = csrf_token((await client.get("/login")).text)
    signed_in = await client.post("/login", data={"email": reg["email"], "password": PASSWORD, "csrf_token": token})
    assert signed_in.status_code == 303
    token = csrf_token((await client.get("/dashboard")).text)
    fields = {k: str(v) for k, v in SUZHOU.items() if k != "name"}
    resp = await client.post(
        f"/factory/{reg['org']['id']}/sites/new", data={"csrf_token": token, "name": "Plant\x00", **fields}
    )
    assert resp.status_code == 422, resp.text[:500]
    assert "<html" in resp.text and 'id="f-name-error"' in resp.text and WEB_LINE_MESSAGE in resp.text


async def test_a_nul_in_a_web_page_parameter_is_a_friendly_page_in_the_visitors_language(
    client: AsyncClient,
) -> None:
    zh = await client.get("/search", params={"region": "a\x00b"}, headers={"Accept-Language": "zh-CN"})
    assert zh.status_code == 422 and "<html" in zh.text and "请检查输入" in zh.text
    token = csrf_token((await client.get("/login")).text)
    en = await client.post("/login", data={"email": "a\x00b@example.com", "password": "x", "csrf_token": token})
    assert en.status_code == 422 and "Check your input" in en.text and "validation_error" not in en.text


async def test_an_admin_can_still_search_the_audit_log_with_ordinary_text(
    client: AsyncClient, db: AsyncSession
) -> None:
    admin = await admin_headers(client, db)
    resp = await client.get("/api/v1/admin/audit", params={"action": "asset.approve"}, headers=admin)
    assert resp.status_code == 200, resp.text
    assert_field_error(
        await client.get("/api/v1/admin/audit", params={"action": "x\x00"}, headers=admin), "query.action"
    )


# -- ids of things that do not exist --------------------------------------------------------------


async def test_an_admin_naming_an_organisation_that_does_not_exist_gets_a_404(
    client: AsyncClient, db: AsyncSession
) -> None:
    """Admins may act for any organisation, so the id they name must be checked (found by schemathesis)."""
    admin = await admin_headers(client, db)
    ghost = "00000000-0000-4000-8000-000000000000"
    calls = [
        ("/api/v1/sites", {**SUZHOU, "org_id": ghost}),
        (
            f"/api/v1/orgs/{ghost}/certificates",
            {
                "standard": "ISO 9001",
                "number": "1",
                "issuer": "X",
                "valid_from": "2026-01-01",
                "valid_until": "2027-01-01",
            },
        ),
        (f"/api/v1/orgs/{ghost}/webhooks", {"url": "https://hooks.example/x", "events": ["booking.held"]}),
    ]
    for path, body in calls:
        resp = await client.post(path, json=body, headers=admin)
        assert resp.status_code == 404, (path, resp.text)
        assert resp.json()["error"] == "not_found"


async def test_a_foreign_key_violation_is_a_4xx_not_a_500(app: FastAPI, client: AsyncClient) -> None:
    """The backstop for a missing check: a dangling reference is a 404, deleting a referenced row a 409."""

    @app.post("/test-only/dangling/{action}")
    async def dangling(action: str, session: SessionDep) -> dict[str, str]:
        await session.execute(sa.text("CREATE TEMP TABLE IF NOT EXISTS fk_parent (id int PRIMARY KEY)"))
        await session.execute(sa.text("CREATE TEMP TABLE IF NOT EXISTS fk_child (pid int REFERENCES fk_parent)"))
        if action == "insert":
            await session.execute(sa.text("INSERT INTO fk_child VALUES (1)"))
        else:
            await session.execute(sa.text("INSERT INTO fk_parent VALUES (2)"))
            await session.execute(sa.text("INSERT INTO fk_child VALUES (2)"))
            await session.execute(sa.text("DELETE FROM fk_parent WHERE id = 2"))
        return {"status": "unreachable"}

    inserted = await client.post("/test-only/dangling/insert")
    assert inserted.status_code == 404 and inserted.json()["request_id"] == inserted.headers["x-request-id"]
    deleted = await client.post("/test-only/dangling/delete")
    assert deleted.status_code == 409 and deleted.json()["error"] == "conflict"
