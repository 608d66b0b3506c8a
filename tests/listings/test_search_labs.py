"""Lab services in search results: every lab's next free drop-off day comes from two queries for the whole page
(its exceptions and its booked samples), not two per lab, and each lab's day is still its own."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from tests.bookings.helpers import ALWAYS_OPEN
from tests.factories import BERLIN, admin_headers, published_asset, signed_up
from tests.statements import statements


async def _labs(client: AsyncClient, db: AsyncSession, n: int, **overrides: Any) -> None:
    """Publish ``n`` lab services."""
    admin = await admin_headers(client, db)
    for _ in range(n):
        await published_asset(client, db, admin, kind="lab_service", **overrides)


async def _search(client: AsyncClient, limit: int) -> list[dict[str, Any]]:
    resp = await client.get("/api/v1/assets", params={"kind": "lab_service", "limit": limit})
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def test_a_page_of_five_labs_sends_as_many_statements_as_a_page_of_two(
    client: AsyncClient, db: AsyncSession, connection: AsyncConnection
) -> None:
    await _labs(client, db, 5)
    await _search(client, 5)  # warm: the first request of a test loads settings and caches
    with statements(connection) as two:
        small = await _search(client, 2)
    with statements(connection) as five:
        big = await _search(client, 5)
    assert len(small) == 2 and len(big) == 5
    assert all(item["next_free_slot"] is not None for item in big)
    # One query per lab (its exceptions, then its bookings) would add six statements for the three more labs.
    assert len(five) == len(two), (len(two), len(five))


async def test_a_full_day_moves_only_that_labs_next_free_day(client: AsyncClient, db: AsyncSession) -> None:
    admin = await admin_headers(client, db)
    shanghai_lab, shanghai_owner, _ = await published_asset(
        client, db, admin, kind="lab_service", daily_sample_capacity=5
    )
    berlin_lab, berlin_owner, _ = await published_asset(
        client, db, admin, kind="lab_service", site=BERLIN, daily_sample_capacity=5
    )
    for lab, owner in ((shanghai_lab, shanghai_owner), (berlin_lab, berlin_owner)):
        plan = await client.put(
            f"/api/v1/assets/{lab['id']}/availability", headers=owner, json={"weekly": ALWAYS_OPEN, "exceptions": []}
        )
        assert plan.status_code == 200, plan.text
    _, buyer = await signed_up(client, roles=("buyer",))
    shanghai = ZoneInfo("Asia/Shanghai")
    today = datetime.now(UTC).astimezone(shanghai).date()
    full = await client.post(
        "/api/v1/bookings",
        headers={**buyer, "Idempotency-Key": uuid.uuid4().hex},
        json={"asset_id": shanghai_lab["id"], "drop_off_date": today.isoformat(), "samples": 5},
    )
    assert full.status_code == 201, full.text

    slots = {item["id"]: item["next_free_slot"] for item in await _search(client, 20)}
    tomorrow = datetime.combine(today + timedelta(days=1), datetime.min.time(), shanghai)
    assert datetime.fromisoformat(slots[shanghai_lab["id"]]["start"]) == tomorrow
    berlin = ZoneInfo("Europe/Berlin")
    berlin_start = datetime.fromisoformat(slots[berlin_lab["id"]]["start"])
    assert berlin_start.astimezone(berlin).date() == datetime.now(UTC).astimezone(berlin).date()
