"""Factories for booking tests: a published machine open around the clock, a buyer, aligned times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import admin_headers, published_asset, signed_up

ALWAYS_OPEN = [{"weekday": d, "start": "00:00", "end": "00:00"} for d in range(7)]  # 24 h every day


def slot(hours_from_now: float, minutes: int = 120, grid: int = 30) -> tuple[datetime, datetime]:
    """A [start, end) on the grid, starting about ``hours_from_now`` from now."""
    t = datetime.now(UTC) + timedelta(hours=hours_from_now)
    t = t.replace(second=0, microsecond=0)
    t += timedelta(minutes=(grid - t.minute % grid) % grid)
    return t, t + timedelta(minutes=minutes)


async def market(client: AsyncClient, db: AsyncSession, **asset_overrides: Any) -> dict[str, Any]:
    admin = await admin_headers(client, db)
    overrides: dict[str, Any] = {"weekly": ALWAYS_OPEN}
    overrides.update(asset_overrides)
    asset, supplier, site = await published_asset(client, db, admin, **overrides)
    buyer_reg, buyer = await signed_up(client, roles=("buyer",))
    return {
        "admin": admin,
        "asset": asset,
        "supplier": supplier,
        "site": site,
        "buyer": buyer,
        "buyer_org": buyer_reg["org"]["id"],
    }


async def book(
    client: AsyncClient, headers: dict[str, str], asset_id: str, start: datetime, end: datetime, key: str | None = None
) -> Any:
    return await client.post(
        "/api/v1/bookings",
        headers={**headers, "Idempotency-Key": key or f"k-{start}-{end}"},
        json={"asset_id": asset_id, "start": start.isoformat(), "end": end.isoformat()},
    )
