"""The accept race: two quotes (on two requests) for overlapping slots on one machine, accepted at the same
time through a live server on committed PostgreSQL by two HTTP clients. The exclusion constraint decides: one
booking, one 409 and that quote still open. Controls: the same race without the constraint double-books, and
non-overlapping slots both book (so the 409 comes from the overlap, not from the race machinery)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from marketplace.bookings.models import BLOCKING
from tests.bookings.helpers import slot
from tests.bookings.live_server import LiveServer, Market, build_market, http_client, live_settings, scalar
from tests.conftest import _admin, create_migrated_database
from tests.quotes.test_quotes_api import request_body

ROUNDS = 4
BLOCKING_SQL = "(" + ", ".join(f"'{s}'" for s in BLOCKING) + ")"
OVERLAPS = f"""
    SELECT count(*) FROM bookings a JOIN bookings b
      ON a.asset_id = b.asset_id AND a.id < b.id AND a.period && b.period
     WHERE a.status IN {BLOCKING_SQL} AND b.status IN {BLOCKING_SQL}
"""


@pytest.fixture(scope="module")
async def unprotected_db_url(server_url: str) -> AsyncIterator[str]:
    """A freshly migrated database without the exclusion constraint, dropped afterwards (the control)."""
    name = f"mk_qrace_{uuid.uuid4().hex[:10]}"
    url = await create_migrated_database(server_url, name)
    try:
        await _admin(url, "ALTER TABLE bookings DROP CONSTRAINT ex_bookings_no_overlap")
        yield url
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _quoted(client: httpx.AsyncClient, market: Market, start: datetime, end: datetime) -> str:
    """A new request by the buyer and the supplier's quote on it for [start, end); returns the quote id."""
    r = await client.post("/api/v1/requests", json=request_body(), headers=market.buyer)
    assert r.status_code == 201, r.text
    body = {
        "asset_id": market.machine["id"],
        "amount": 88_000,
        "currency": "CNY",
        "start": start.isoformat(),
        "end": end.isoformat(),
        "valid_until": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
    }
    q = await client.post(f"/api/v1/requests/{r.json()['id']}/quotes", json=body, headers=market.supplier)
    assert q.status_code == 201, q.text
    return str(q.json()["id"])


async def _race(
    server: LiveServer, client: httpx.AsyncClient, market: Market, *, offset_minutes: int, base_hours: int = 72
) -> list[Any]:
    """Per round: two quotes whose slots start ``offset_minutes`` apart (120 minutes long each), accepted at
    once by two clients. Returns per round the two (status, error, quote id) outcomes."""
    rounds = []
    for i in range(ROUNDS):
        start, end = slot(base_hours + 12 * i)
        shift = timedelta(minutes=offset_minutes)
        ids = [await _quoted(client, market, start, end), await _quoted(client, market, start + shift, end + shift)]
        async with http_client(server) as one, http_client(server) as two:
            responses = await asyncio.gather(
                *(
                    c.post(f"/api/v1/quotes/{qid}/accept", headers=market.buyer)
                    for c, qid in zip((one, two), ids, strict=True)
                )
            )
        rounds.append(
            sorted(
                (r.status_code, r.json().get("error") if r.status_code != 201 else None, qid)
                for r, qid in zip(responses, ids, strict=True)
            )
        )
    return rounds


async def _quote_status(client: httpx.AsyncClient, market: Market, quote_id: str) -> str:
    requests = (await client.get("/api/v1/requests", headers=market.buyer)).json()["items"]
    for req in requests:
        items = (await client.get(f"/api/v1/requests/{req['id']}/quotes", headers=market.buyer)).json()["items"]
        for q in items:
            if q["id"] == quote_id:
                return str(q["status"])
    raise AssertionError(f"quote {quote_id} not found")


async def test_overlapping_quote_acceptances_race_one_booking_one_409(
    committed_db_url: str, committed_engine: AsyncEngine, redis_url: str
) -> None:
    with LiveServer(committed_db_url, redis_url, live_settings()) as server:
        async with http_client(server) as client:
            market = await build_market(client, committed_db_url)
            rounds = await _race(server, client, market, offset_minutes=60)
            for outcome in rounds:
                assert [(s, e) for s, e, _ in outcome] == [(201, None), (409, "slot_unavailable")], outcome
                assert await _quote_status(client, market, outcome[1][2]) == "submitted"  # the loser stays open
                assert await _quote_status(client, market, outcome[0][2]) == "accepted"
            assert await scalar(committed_db_url, OVERLAPS) == 0
            assert await scalar(committed_db_url, "SELECT count(*) FROM bookings WHERE quote_id IS NOT NULL") == ROUNDS
            # Control in the same database: slots that do not overlap both book.
            apart = await _race(server, client, market, offset_minutes=6 * 60, base_hours=200)
            assert all([(s, e) for s, e, _ in outcome] == [(201, None), (201, None)] for outcome in apart), apart


async def test_without_the_exclusion_constraint_the_same_race_double_books(
    unprotected_db_url: str, redis_url: str
) -> None:
    """Control: proves the race above would catch a missing constraint."""
    with LiveServer(unprotected_db_url, redis_url, live_settings()) as server:
        async with http_client(server) as client:
            market = await build_market(client, unprotected_db_url)
            rounds = await _race(server, client, market, offset_minutes=60)
    assert any([(s, e) for s, e, _ in outcome] == [(201, None), (201, None)] for outcome in rounds), rounds
    assert await scalar(unprotected_db_url, OVERLAPS) > 0
