"""Concurrent redemptions on one programme (committed PostgreSQL, one session each) never spend more than the
programme's budget nor a buyer's yearly cap: the programme's row lock serialises them. The control runs the same
concurrent redemptions without the lock and shows both limits overspent."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import ASGITransport, AsyncClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from listings.models import Asset, Site
from marketplace.bookings.models import Booking
from marketplace.core.settings import Settings
from marketplace.vouchers import redemption
from marketplace.vouchers.eligibility import VoucherExhausted
from marketplace.vouchers.models import Voucher
from tests.conftest import build_app
from tests.vouchers.conftest import book, buyer_in, granted_voucher, lab_booking_body, voucher_market

BUYERS, EACH = 2, 4  # eight bookings of 30 000, each asking a 15 000 share
BUDGET, BUYER_CAP = 50_000, 40_000


@pytest.fixture
def maker(committed_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(committed_engine, expire_on_commit=False, autoflush=False)


@pytest.fixture
async def committed_client(
    settings: Settings,
    maker: async_sessionmaker[AsyncSession],
    committed_engine: AsyncEngine,
    redis: Redis,
    redis_url: str,
) -> AsyncIterator[AsyncClient]:
    app = build_app(settings, maker, committed_engine, redis, redis_url)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


async def _market(client: AsyncClient, maker: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
    """A programme (budget 50 000, yearly cap 40 000) and two buyers with a granted voucher and four bookings each
    (placed without the voucher); returns (booking id, voucher id) pairs."""
    async with maker() as db:
        m = await voucher_market(client, db, budget=BUDGET, cap_per_buyer_year=BUYER_CAP)
    buyers = [(m["buyer"], m["voucher"]["id"])]
    for _ in range(BUYERS - 1):
        reg, headers = await buyer_in(client)
        voucher = await granted_voucher(client, m["programme_headers"], m["programme"]["id"], reg["org"]["id"])
        buyers.append((headers, voucher["id"]))
    pairs = []
    for headers, voucher_id in buyers:
        for _ in range(EACH):
            booking = await book(client, headers, lab_booking_body(m["lab"]["id"]))
            pairs.append((booking["id"], voucher_id))
    return pairs


async def _reserve(session: AsyncSession, booking_id: str, voucher_id: str, *, lock: bool) -> None:
    booking = await session.get(Booking, uuid.UUID(booking_id))
    voucher = await session.get(Voucher, uuid.UUID(voucher_id))
    assert booking is not None and voucher is not None
    asset = await session.get(Asset, booking.asset_id)
    assert asset is not None
    site = await session.get(Site, asset.site_id)
    assert site is not None
    await redemption.reserve(session, booking, voucher=voucher, asset=asset, site=site, lock=lock)


async def _totals(maker: async_sessionmaker[AsyncSession]) -> tuple[int, list[int]]:
    async with maker() as session:
        rows = (
            await session.execute(
                sa.text(
                    "SELECT buyer_org_id, sum(amount) FROM voucher_redemptions "
                    "WHERE status IN ('active', 'settled', 'claimed') GROUP BY buyer_org_id"
                )
            )
        ).all()
    per_buyer = [int(r[1]) for r in rows]
    return sum(per_buyer), per_buyer


async def test_concurrent_redemptions_never_overspend_the_budget_or_a_buyers_cap(
    committed_client: AsyncClient, maker: async_sessionmaker[AsyncSession]
) -> None:
    pairs = await _market(committed_client, maker)

    async def redeem(booking_id: str, voucher_id: str) -> bool:
        async with maker() as session:
            try:
                await _reserve(session, booking_id, voucher_id, lock=True)
            except VoucherExhausted:
                await session.rollback()
                return False
            await session.commit()
            return True

    made = await asyncio.gather(*(redeem(b, v) for b, v in pairs))
    total, per_buyer = await _totals(maker)
    assert total == BUDGET  # filled exactly, never beyond
    assert all(used <= BUYER_CAP for used in per_buyer), per_buyer
    assert 0 < made.count(True) < len(pairs)


async def test_control_without_the_programme_lock_both_limits_are_overspent(
    committed_client: AsyncClient, maker: async_sessionmaker[AsyncSession]
) -> None:
    pairs = await _market(committed_client, maker)
    ready = asyncio.Barrier(len(pairs))

    async def redeem(booking_id: str, voucher_id: str) -> Any:
        async with maker() as session:
            await _reserve(session, booking_id, voucher_id, lock=False)
            await ready.wait()  # nobody commits before everybody has read the sums
            await session.commit()

    await asyncio.gather(*(redeem(b, v) for b, v in pairs))
    total, per_buyer = await _totals(maker)
    assert total > BUDGET  # the check of the real test would fail
    assert any(used > BUYER_CAP for used in per_buyer), per_buyer
