"""The factory dashboard shows when each listing is next free in the listing's site zone, with the zone named,
whatever zone the viewer reads the site in."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import BERLIN, PASSWORD, create_asset, csrf_token, machine_payload, supplier


async def test_next_free_is_shown_in_the_site_zone(client: AsyncClient, db: AsyncSession) -> None:
    reg, headers, site = await supplier(client, db, site=BERLIN)
    asset = await create_asset(client, headers, machine_payload(site["id"], title="Berlin mill"))
    await db.execute(
        sa.text("UPDATE assets SET next_free_at = :t WHERE id = :id"),
        {"t": datetime(2026, 7, 1, 8, 0, tzinfo=UTC), "id": uuid.UUID(asset["id"])},
    )
    await db.commit()
    client.cookies.clear()
    token = csrf_token((await client.get("/login")).text)
    resp = await client.post("/login", data={"email": reg["email"], "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 303, resp.text

    page = await client.get(f"/factory/{reg['org']['id']}", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    row = re.search(r"<tr>\s*<td><a href=\"/listings/" + asset["id"] + r"\">.*?</tr>", page.text, re.S)
    assert row, "the listing's row is missing"
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), re.S)
    assert "10:00" in cells[2] and "Europe/Berlin" in cells[2]  # 08:00 UTC is 10:00 in Berlin in summer
