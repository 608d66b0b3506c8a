"""Server-rendered pages through HTTP (the browser journeys are in test_browser_journey.py)."""

from __future__ import annotations

import re

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import PASSWORD, admin_headers, published_asset, signed_up


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def test_public_pages_render_in_both_languages(client: AsyncClient, db: AsyncSession) -> None:
    admin = await admin_headers(client, db)
    asset, _, _ = await published_asset(client, db, admin)
    home = await client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert home.status_code == 200 and 'lang="zh-Hans"' in home.text
    assert "DMG MORI" in home.text
    en = await client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert 'lang="en"' in en.text and "Find capacity" in en.text
    results = await client.get("/search?process=machining.milling.cnc_3axis")
    assert results.status_code == 200 and asset["title"] in results.text
    page = await client.get(f"/listings/{asset['id']}")
    assert page.status_code == 200 and "±" in page.text and "Asia/Shanghai" in page.text
    missing = await client.get("/listings/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and "<html" in missing.text and "Traceback" not in missing.text


async def test_login_requires_a_valid_csrf_token(client: AsyncClient) -> None:
    reg, _ = await signed_up(client)
    page = await client.get("/login")
    token = _csrf(page.text)
    forged = await client.post("/login", data={"email": reg["email"], "password": PASSWORD, "csrf_token": "forged"})
    assert forged.status_code == 403
    missing = await client.post("/login", data={"email": reg["email"], "password": PASSWORD})
    assert missing.status_code == 403
    ok = await client.post("/login", data={"email": reg["email"], "password": PASSWORD, "csrf_token": token})
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    dash = await client.get("/dashboard")
    assert dash.status_code == 200 and reg["org"]["name"] in dash.text


async def test_register_form_shows_errors_next_to_the_fields(client: AsyncClient) -> None:
    page = await client.get("/register")
    token = _csrf(page.text)
    resp = await client.post("/register", data={
        "csrf_token": token, "full_name": "Li", "email": "not-an-email", "password": "short", "org_name": "X",
        "country": "CN", "uscc": "91350200776049653B", "role_buyer": "1"})
    assert resp.status_code == 422
    html = resp.text
    assert 'id="email-error"' in html and 'id="password-error"' in html and 'id="uscc-error"' in html
    assert "Traceback" not in html


async def test_signed_out_visitors_are_sent_to_sign_in(client: AsyncClient) -> None:
    resp = await client.get("/dashboard")
    assert resp.status_code == 303 and resp.headers["location"].startswith("/login?next=/dashboard")
