"""Quote expiry through real processes: a live server writes the ``quotes.expire_one`` timer into the outbox
with the quote, a real relay sends it when due and a real Celery worker expires the quote and notifies both
parties. The sweep (``quotes.sweep``) run by the same worker expires a quote whose timer was lost."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from celery import Celery
from sqlalchemy.ext.asyncio import AsyncEngine

from marketplace.core.celery import kombu_url
from tests import processes
from tests.bookings.helpers import slot
from tests.bookings.live_server import LiveServer, Market, build_market, http_client, live_settings, sql, wait_for
from tests.processes import Proc, running
from tests.quotes.test_quotes_api import request_body

pytestmark = pytest.mark.worker


@pytest.fixture(scope="module")
def queue() -> str:
    return f"test-quotes-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def worker(committed_db_url: str, redis_url: str, queue: str) -> Iterator[Proc]:
    with running(processes.worker(committed_db_url, redis_url, queue)) as proc:
        yield proc


@pytest.fixture(scope="module")
def relay(committed_db_url: str, redis_url: str, queue: str) -> Iterator[Proc]:
    with running(processes.relay(committed_db_url, redis_url, queue)) as proc:
        yield proc


@pytest.fixture(scope="module")
def server(committed_db_url: str, redis_url: str, queue: str) -> Iterator[LiveServer]:
    with LiveServer(committed_db_url, redis_url, live_settings(celery_queue=queue)) as s:
        yield s


async def _quote(client: httpx.AsyncClient, market: Market, valid_for: timedelta) -> tuple[str, str]:
    r = await client.post("/api/v1/requests", json=request_body(), headers=market.buyer)
    assert r.status_code == 201, r.text
    start, end = slot(48)
    body: dict[str, Any] = {
        "asset_id": market.machine["id"],
        "amount": 99_000,
        "currency": "CNY",
        "start": start.isoformat(),
        "end": end.isoformat(),
        "valid_until": (datetime.now(UTC) + valid_for).isoformat(),
    }
    request_id = r.json()["id"]
    q = await client.post(f"/api/v1/requests/{request_id}/quotes", json=body, headers=market.supplier)
    assert q.status_code == 201, q.text
    return request_id, q.json()["id"]


async def _status(client: httpx.AsyncClient, market: Market, request_id: str) -> str:
    r = await client.get(f"/api/v1/requests/{request_id}/quotes", headers=market.buyer)
    assert r.status_code == 200, r.text
    return str(r.json()["items"][0]["status"])


async def test_the_worker_expires_a_quote_at_valid_until_and_notifies_both_parties(
    worker: Proc, relay: Proc, server: LiveServer, committed_engine: AsyncEngine, committed_db_url: str
) -> None:
    async with http_client(server) as client:
        market = await build_market(client, committed_db_url)
        request_id, quote_id = await _quote(client, market, timedelta(seconds=3))
        assert await _status(client, market, request_id) == "submitted"

        async def expired() -> bool:
            return await _status(client, market, request_id) == "expired"

        await wait_for(expired, within=45, what="the worker's expiry of the quote")
        for org in (market.buyer_org, market.supplier_org):
            rows = await sql(
                committed_db_url,
                "SELECT n.subject FROM notifications n JOIN memberships m ON m.user_id = n.user_id "
                "WHERE m.org_id = :org AND n.kind = 'quote.expired' AND n.data->>'quote_id' = :quote",
                {"org": org, "quote": quote_id},
            )
            assert len(rows) == 1 and rows[0][0].startswith("Quote expired"), rows
        audit = await sql(
            committed_db_url,
            "SELECT action, actor_user_id FROM audit_log WHERE target_type = 'quote' AND target_id = :id ORDER BY id",
            {"id": quote_id},
        )
        assert audit == [("quote.submitted", audit[0][1]), ("quote.expired", None)]
        # Expired: nobody can accept it any more.
        late = await client.post(f"/api/v1/quotes/{quote_id}/accept", headers=market.buyer)
        assert late.status_code == 409 and late.json()["error"] == "quote_not_open"


async def test_the_sweep_expires_a_quote_whose_timer_was_lost(
    worker: Proc, server: LiveServer, committed_engine: AsyncEngine, committed_db_url: str, redis_url: str, queue: str
) -> None:
    async with http_client(server) as client:
        market = await build_market(client, committed_db_url)
        request_id, quote_id = await _quote(client, market, timedelta(hours=1))
        # The timer is lost (its outbox row deleted) and the validity has passed in the meantime.
        await sql(
            committed_db_url, "DELETE FROM outbox WHERE task = 'quotes.expire_one' AND args->>0 = :id", {"id": quote_id}
        )
        await sql(
            committed_db_url,
            "UPDATE quotes SET valid_until = now() - interval '1 second' WHERE id = :id",
            {"id": quote_id},
        )
        celery = Celery("quotes-test-client", broker=kombu_url(redis_url), backend=kombu_url(redis_url))
        celery.conf.task_default_queue = queue
        try:
            assert celery.send_task("quotes.sweep").get(timeout=60) >= 1, worker.output()
            assert celery.send_task("quotes.sweep").get(timeout=60) == 0  # idempotent
        finally:
            celery.close()
        assert await _status(client, market, request_id) == "expired"
