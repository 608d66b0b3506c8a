"""Server-rendered pages through HTTP (the browser journeys are in test_browser_journey.py)."""

from __future__ import annotations

import re

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import PASSWORD, admin_headers, csrf_token, published_asset, signed_up


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
    token = csrf_token(page.text)
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
    token = csrf_token(page.text)
    resp = await client.post(
        "/register",
        data={
            "csrf_token": token,
            "full_name": "Li",
            "email": "not-an-email",
            "password": "short",
            "org_name": "X",
            "country": "CN",
            "uscc": "91350200776049653B",
            "role_buyer": "1",
        },
    )
    assert resp.status_code == 422
    html = resp.text
    assert 'id="email-error"' in html and 'id="password-error"' in html and 'id="uscc-error"' in html
    assert "Traceback" not in html


async def test_signed_out_visitors_are_sent_to_sign_in(client: AsyncClient) -> None:
    resp = await client.get("/dashboard")
    assert resp.status_code == 303 and resp.headers["location"].startswith("/login?next=/dashboard")


async def _sign_in(client: AsyncClient, email: str) -> str:
    token = csrf_token((await client.get("/login")).text)
    resp = await client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 303
    return csrf_token((await client.get("/dashboard")).text)


async def test_admin_moderates_from_the_admin_page(client: AsyncClient, db: AsyncSession) -> None:
    from tests.factories import create_admin, create_asset, machine_payload, supplier

    admin = await create_admin(db)
    await db.commit()
    _, headers, site = await supplier(client, db)
    asset = await create_asset(client, headers, machine_payload(site["id"], title="Pending mill"))
    await client.post(f"/api/v1/assets/{asset['id']}/submit", headers=headers)
    token = await _sign_in(client, admin.email)
    page = await client.get("/admin")
    assert page.status_code == 200 and "Pending mill" in page.text
    rejected = await client.post(f"/admin/assets/{asset['id']}/reject", data={"csrf_token": token, "reason": ""})
    assert rejected.status_code == 303 and "error=" in rejected.headers["location"]
    ok = await client.post(f"/admin/assets/{asset['id']}/approve", data={"csrf_token": token})
    assert ok.status_code == 303 and "notice" in ok.headers["location"]
    status = (await client.get(f"/api/v1/assets/{asset['id']}")).json()["status"]
    assert status == "published"
    no_csrf = await client.post(f"/admin/assets/{asset['id']}/suspend", data={"reason": "x"})
    assert no_csrf.status_code == 403


async def test_a_non_admin_cannot_open_the_admin_pages(client: AsyncClient) -> None:
    reg, _ = await signed_up(client, roles=("buyer",))
    await _sign_in(client, reg["email"])
    assert (await client.get("/admin")).status_code == 403


async def test_factory_lists_a_machine_through_the_wizard(client: AsyncClient, db: AsyncSession) -> None:
    from tests.factories import verify_org

    reg, _ = await signed_up(client, roles=("supplier",), country="CN")
    await verify_org(db, reg["org"]["id"])
    token = await _sign_in(client, reg["email"])
    org = reg["org"]["id"]
    to_site = await client.get(f"/factory/{org}/assets/new")
    assert to_site.status_code == 303 and to_site.headers["location"].endswith("/sites/new")
    bad_site = await client.post(
        f"/factory/{org}/sites/new",
        data={
            "csrf_token": token,
            "name": "Plant",
            "address": "1 Road",
            "country": "CN",
            "region_code": "Suzhou",
            "latitude": "31.3",
            "longitude": "120.6",
            "timezone": "Asia/Shanghai",
        },
    )
    assert bad_site.status_code == 422 and "6-digit" in bad_site.text
    site = await client.post(
        f"/factory/{org}/sites/new",
        data={
            "csrf_token": token,
            "name": "Plant",
            "address": "1 Road",
            "country": "CN",
            "region_code": "320500",
            "latitude": "31.3",
            "longitude": "120.6",
            "timezone": "Asia/Shanghai",
        },
    )
    assert site.status_code == 303
    form = await client.get(f"/factory/{org}/assets/new?kind=machine")
    site_id = re.search(r'<option value="([0-9a-f-]{36})"', form.text).group(1)  # type: ignore[union-attr]
    fields = {
        "csrf_token": token,
        "kind": "machine",
        "site_id": site_id,
        "title": "Haas VF-2",
        "process_codes": "machining.milling.cnc_3axis",
        "materials": "al_6061",
        "env_x": "760",
        "env_y": "410",
        "env_z": "510",
        "tolerance_mm": "0.02",
        "hourly_rate": "-5",
        "setup_fee": "100",
        "currency": "CNY",
        "min_booking_minutes": "60",
        "slot_minutes": "30",
    }
    bad = await client.post(f"/factory/{org}/assets/new", data=fields)
    assert bad.status_code == 422 and 'id="f-hourly_rate-error"' in bad.text
    created = await client.post(f"/factory/{org}/assets/new", data={**fields, "hourly_rate": "180"})
    assert created.status_code == 303 and "/availability" in created.headers["location"]
    avail_url = created.headers["location"].split("?")[0]
    saved = await client.post(
        avail_url,
        data={
            "csrf_token": token,
            "d0_s1_start": "08:00",
            "d0_s1_end": "18:00",
            "d1_s1_start": "22:00",
            "d1_s1_end": "06:00",
            "exc_start": "2027-02-10",
            "exc_end": "2027-02-16",
            "exc_available": "closed",
        },
    )
    assert saved.status_code == 303
    asset_id = avail_url.split("/")[-2]
    dash = await client.get(f"/factory/{org}")
    assert "Haas VF-2" in dash.text and "draft" in dash.text
    submit = await client.post(f"/factory/{org}/assets/{asset_id}/submit", data={"csrf_token": token})
    assert submit.status_code == 303
    page = await client.get(avail_url)
    assert 'value="2027-02-10"' in page.text and 'value="2027-02-16"' in page.text and 'value="22:00"' in page.text
    # The same service stored it: the closure is a week of Shanghai days, as instants in UTC.
    from tests.factories import login

    api = (
        await client.get(f"/api/v1/assets/{asset_id}/availability", headers=await login(client, reg["email"]))
    ).json()
    assert (
        api["exceptions"][0]["start"] == "2027-02-09T16:00:00Z"
        and api["exceptions"][0]["end"] == "2027-02-16T16:00:00Z"
    )
    assert {"weekday": 1, "start": "22:00", "end": "06:00"} in api["weekly"]


async def test_a_buyer_cannot_open_a_factorys_pages(client: AsyncClient) -> None:
    supplier_reg, _ = await signed_up(client, roles=("supplier",))
    buyer_reg, _ = await signed_up(client, roles=("buyer",))
    await _sign_in(client, buyer_reg["email"])
    assert (await client.get(f"/factory/{supplier_reg['org']['id']}")).status_code == 404
    assert (await client.get(f"/factory/{buyer_reg['org']['id']}")).status_code == 403


async def test_factory_registers_a_webhook_and_an_api_key(client: AsyncClient, db: AsyncSession) -> None:
    reg, _ = await signed_up(client, roles=("supplier",))
    token = await _sign_in(client, reg["email"])
    org = reg["org"]["id"]
    key = await client.post(
        f"/factory/{org}/integrations/api-keys",
        data={"csrf_token": token, "name": "MES", "scopes": "availability:write"},
    )
    secret = re.search(r"mk_[A-Za-z0-9_-]{40,}", key.text)
    assert key.status_code == 200 and secret  # the secret, shown once, in the response itself
    assert secret.group(0) not in (await client.get(f"/factory/{org}/integrations")).text
    bad = await client.post(
        f"/factory/{org}/integrations/webhooks", data={"csrf_token": token, "url": "not a url", "events": "booking.*"}
    )
    assert bad.status_code == 303 and "error=" in bad.headers["location"]
    ok = await client.post(
        f"/factory/{org}/integrations/webhooks",
        data={"csrf_token": token, "url": "http://127.0.0.1:9/hook", "events": "booking.*"},
    )
    assert ok.status_code == 200 and "whsec_" in ok.text  # shown once, in the response itself
    page = await client.get(f"/factory/{org}/integrations")
    assert "http://127.0.0.1:9/hook" in page.text and "whsec_" not in page.text
