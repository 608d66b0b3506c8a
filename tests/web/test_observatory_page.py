"""The observatory page for observers and admins (numbers themselves are tested in tests/analytics)."""

from __future__ import annotations

import re

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import PASSWORD, admin_headers, create_admin, signed_up


async def _sign_in(client: AsyncClient, email: str) -> None:
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    resp = await client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 303


async def test_observer_sees_their_region_table_and_downloads_csv(client: AsyncClient, db: AsyncSession) -> None:
    admin = await admin_headers(client, db)
    reg, _ = await signed_up(client, roles=("buyer",))
    grant = await client.post(
        "/api/v1/admin/observers", headers=admin, json={"user_email": reg["email"], "region_prefixes": ["3205"]}
    )
    assert grant.status_code in (200, 201), grant.text
    await _sign_in(client, reg["email"])
    assert 'href="/observatory"' in (await client.get("/dashboard")).text  # the dashboard shows the way in
    page = await client.get("/observatory")
    assert page.status_code == 200 and 'id="observatory-table"' in page.text and "Regional observatory" in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    await client.post("/lang", data={"locale": "zh-CN", "next": "/observatory", "csrf_token": token})
    zh = await client.get("/observatory")
    assert "区域观测" in zh.text and "按地区和工艺大类" in zh.text
    csv = await client.get("/observatory.csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("month,prefix,region,process_family,suppressed")
    outside = await client.get("/observatory?region=4403")
    assert outside.status_code == 403


async def test_a_user_without_a_grant_cannot_open_the_observatory(client: AsyncClient, db: AsyncSession) -> None:
    reg, _ = await signed_up(client, roles=("supplier",))
    await _sign_in(client, reg["email"])
    assert (await client.get("/observatory")).status_code == 403
    assert 'href="/observatory"' not in (await client.get("/dashboard")).text  # no door that answers 403


async def test_admin_sees_every_region(client: AsyncClient, db: AsyncSession) -> None:
    admin = await create_admin(db)
    await db.commit()
    await _sign_in(client, admin.email)
    page = await client.get("/observatory?region=4403")
    assert page.status_code == 200 and "<svg" in page.text
