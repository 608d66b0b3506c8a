"""The cascade through a real relay and a real Celery worker on committed PostgreSQL and real Redis: a live
server posts an auto-cascade request, the worker asks the top-ranked factory; a decline passes it to rank 2
and the buyer is told; a lapse (the delayed job) passes it to rank 3; the sweep then tells the buyer, once,
that nobody is left."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from celery import Celery
from sqlalchemy.ext.asyncio import AsyncEngine

from marketplace.core.celery import kombu_url
from tests import processes
from tests.bookings.live_server import (
    LiveServer,
    admin_headers,
    http_client,
    live_settings,
    login,
    published,
    register,
    sql,
    verified_supplier,
    wait_for,
)
from tests.factories import machine_payload
from tests.processes import Proc, running
from tests.quotes.test_invitations_helpers import MILL, request_body

pytestmark = pytest.mark.worker


@pytest.fixture(scope="module")
def queue() -> str:
    return f"test-cascade-{uuid.uuid4().hex[:8]}"


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


def run_task(redis_url: str, queue: str, worker: Proc, name: str, *args: Any) -> Any:
    url = kombu_url(redis_url)
    app = Celery("cascade-test-client", broker=url, backend=url)
    app.conf.task_default_queue = queue
    try:
        return app.send_task(name, args=list(args)).get(timeout=60)
    except Exception:
        raise AssertionError(f"the worker did not answer {name}; its output:\n{worker.output()}") from None


async def _factory(client: httpx.AsyncClient, db_url: str, admin: dict[str, str], rate: int) -> dict[str, Any]:
    reg, headers, site = await verified_supplier(client, db_url)
    mill = {k: v for k, v in MILL.items() if k != "weekly"}
    await published(client, headers, admin, machine_payload(site["id"], **{**mill, "hourly_rate": rate}))
    return {"org": reg["org"]["id"], "headers": headers}


async def test_a_real_worker_cascades_on_decline_and_on_lapse(
    worker: Proc, relay: Proc, server: LiveServer, committed_engine: AsyncEngine, committed_db_url: str, redis_url: str
) -> None:
    db_url = committed_db_url
    async with http_client(server) as client:
        admin = await admin_headers(client, db_url)
        ranked = [await _factory(client, db_url, admin, rate) for rate in (10000, 20000, 30000)]
        buyer_reg = await register(client, ("buyer",), database_url=db_url)
        buyer = await login(client, buyer_reg["email"])
        buyer_org = buyer_reg["org"]["id"]
        resp = await client.post("/api/v1/requests", json=request_body(auto_cascade=True), headers=buyer)
        assert resp.status_code == 201, resp.text
        rid = resp.json()["id"]

        async def invitations(n: int) -> list[tuple[str, str, int]] | None:
            r = await client.get(f"/api/v1/requests/{rid}/invitations", headers=buyer)
            items = [(i["supplier_org_id"], i["status"], i["rank"]) for i in r.json()["items"]]
            return items if len(items) == n and items[-1][1] == "invited" else None

        async def cascaded(kind: str, n: int) -> list[Any] | None:
            rows = await sql(
                db_url,
                "SELECT n.body FROM notifications n JOIN memberships m ON m.user_id = n.user_id "
                "WHERE m.org_id = :org AND n.kind = :kind",
                {"org": buyer_org, "kind": kind},
            )
            return rows if len(rows) == n else None

        # 1. The worker asks the top-ranked factory.
        first = await wait_for(lambda: invitations(1), within=60, what="the first cascade invitation")
        assert first == [(ranked[0]["org"], "invited", 1)], worker.output()

        # 2. It declines: the worker asks rank 2 and tells the buyer.
        declined = await client.post(
            f"/api/v1/requests/{rid}/invitation/decline", json={"reason": "Full"}, headers=ranked[0]["headers"]
        )
        assert declined.status_code == 200, declined.text
        second = await wait_for(lambda: invitations(2), within=60, what="the invitation after the decline")
        assert second == [(ranked[0]["org"], "declined", 1), (ranked[1]["org"], "invited", 2)]
        told = await wait_for(lambda: cascaded("request.cascaded", 1), within=30, what="the buyer's notice")
        assert "ranked 2" in told[0][0]

        # 3. Rank 2 lets it lapse: its delayed job (delivered now) passes the request to rank 3.
        inv_id = await sql(
            db_url,
            "UPDATE quote_invitations SET respond_by = now() - interval '1 minute' "
            "WHERE request_id = :id AND status = 'invited' RETURNING id",
            {"id": rid},
        )
        assert run_task(redis_url, server.settings.celery_queue, worker, "quotes.invitation_lapse", str(inv_id[0][0]))
        third = await wait_for(lambda: invitations(3), within=60, what="the invitation after the lapse")
        assert [(o, s) for o, s, _r in third] == [
            (ranked[0]["org"], "declined"),
            (ranked[1]["org"], "lapsed"),
            (ranked[2]["org"], "invited"),
        ]
        assert third[2][2] == 3
        await wait_for(lambda: cascaded("request.cascaded", 2), within=30, what="the second notice")

        # 4. Rank 3 lapses too; the beat sweep finds it, and the buyer hears once that nobody is left.
        await sql(
            db_url,
            "UPDATE quote_invitations SET respond_by = now() - interval '1 minute' "
            "WHERE request_id = :id AND status = 'invited'",
            {"id": rid},
        )
        for _ in range(2):
            assert run_task(redis_url, server.settings.celery_queue, worker, "quotes.cascade_sweep") == 0
        await wait_for(lambda: cascaded("request.cascade_exhausted", 1), within=30, what="the exhausted notice")
        statuses = await sql(db_url, "SELECT status FROM quote_invitations WHERE request_id = :id", {"id": rid})
        assert sorted(s for (s,) in statuses) == ["declined", "lapsed", "lapsed"]
