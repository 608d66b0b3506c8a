"""The admin batch optimiser runs as a job (issue #12, item 7): the request stores a queued plan and its outbox
row and answers 202 at once; a worker claims the plan, solves it with no transaction open and stores the
result; the status endpoint shows queued → running → done. A redelivered job does nothing; a plan left
``running`` by a killed worker is solved again by the redelivered job."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from celery import Celery
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from marketplace.core.celery import kombu_url
from marketplace.requests.tasks import run_batch_plan_job
from tests import processes
from tests.bookings.live_server import LiveServer, build_market, http_client, live_settings, scalar
from tests.factories import SUZHOU, admin_headers, published_asset, signed_up
from tests.processes import Proc, running
from tests.requests.test_requests_api import MILL, request_body


def _horizon(days: int = 30) -> dict[str, str]:
    now = datetime.now(UTC)
    return {"horizon_start": now.isoformat(), "horizon_end": (now + timedelta(days=days)).isoformat()}


@pytest.fixture
async def batch_market(client: AsyncClient, db: AsyncSession) -> dict[str, Any]:
    admin = await admin_headers(client, db)
    mill, _, _ = await published_asset(client, db, admin, site=SUZHOU, **MILL)
    _, buyer = await signed_up(client, roles=("buyer",), country="CN")
    created = await client.post("/api/v1/requests", json=request_body(), headers=buyer)
    assert created.status_code == 201, created.text
    return {"admin": admin, "buyer": buyer, "mill": mill, "request": created.json()}


async def test_batch_request_answers_at_once_with_a_queued_plan_and_its_job(
    client: AsyncClient, db: AsyncSession, batch_market: dict[str, Any]
) -> None:
    resp = await client.post("/api/v1/admin/matching/batch", json=_horizon(), headers=batch_market["admin"])
    assert resp.status_code == 202, resp.text
    plan = resp.json()
    assert plan["status"] == "queued" and plan["objective"] is None and plan["assignments"] == []
    assert resp.headers["location"] == f"/api/v1/admin/matching/plans/{plan['id']}"
    # The job is an outbox row of the request's transaction; nothing was solved in the request.
    jobs = (await db.execute(sa.text("SELECT task, args FROM outbox WHERE task = 'requests.run_batch_plan'"))).all()
    assert [(t, a) for t, a in jobs] == [("requests.run_batch_plan", [plan["id"]])]
    status = await client.get(resp.headers["location"], headers=batch_market["admin"])
    assert status.status_code == 200 and status.json()["status"] == "queued"
    # Admins only, and an unknown plan is 404.
    assert (await client.get(resp.headers["location"], headers=batch_market["buyer"])).status_code == 403
    unknown = await client.get(f"/api/v1/admin/matching/plans/{uuid.uuid4()}", headers=batch_market["admin"])
    assert unknown.status_code == 404


async def test_batch_job_is_idempotent_and_reruns_a_plan_a_killed_worker_left_running(
    client: AsyncClient,
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    batch_market: dict[str, Any],
) -> None:
    resp = await client.post("/api/v1/admin/matching/batch", json=_horizon(), headers=batch_market["admin"])
    plan_id = uuid.UUID(resp.json()["id"])
    assert await run_batch_plan_job(sessionmaker, plan_id=plan_id) == "done"
    done = (await client.get(resp.headers["location"], headers=batch_market["admin"])).json()
    assert done["status"] == "done" and done["requests"] == 1, done
    assert [a["request_id"] for a in done["assignments"]] == [batch_market["request"]["id"]]
    assert done["started_at"] and done["finished_at"] and done["error"] is None

    # A redelivered job finds the plan done: nothing changes.
    assert await run_batch_plan_job(sessionmaker, plan_id=plan_id) == "skipped"
    assert (await client.get(resp.headers["location"], headers=batch_market["admin"])).json() == done

    # A plan still being solved by another delivery is left alone...
    await db.execute(
        sa.text("UPDATE match_plans SET status = 'running', started_at = now() WHERE id = :id"), {"id": plan_id}
    )
    await db.commit()
    assert await run_batch_plan_job(sessionmaker, plan_id=plan_id) == "skipped"
    # ...but one whose worker died long ago (running far beyond its time limit) is solved again.
    await db.execute(
        sa.text("UPDATE match_plans SET started_at = now() - interval '1 hour' WHERE id = :id"), {"id": plan_id}
    )
    await db.commit()
    assert await run_batch_plan_job(sessionmaker, plan_id=plan_id) == "done"
    again = (await client.get(resp.headers["location"], headers=batch_market["admin"])).json()
    assert again["status"] == "done" and again["assignments"] == done["assignments"]
    attempts = await db.scalar(sa.text("SELECT attempts FROM match_plans WHERE id = :id"), {"id": plan_id})
    assert attempts == 2


async def test_a_batch_job_that_fails_marks_the_plan_failed(
    client: AsyncClient,
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    batch_market: dict[str, Any],
) -> None:
    resp = await client.post("/api/v1/admin/matching/batch", json=_horizon(), headers=batch_market["admin"])
    plan_id = uuid.UUID(resp.json()["id"])
    # Fault injection in the database: the job cannot load the requests (the table is gone for a moment).
    await db.execute(sa.text("ALTER TABLE requests RENAME TO requests_away"))
    try:
        assert await run_batch_plan_job(sessionmaker, plan_id=plan_id) == "failed"
    finally:
        await db.execute(sa.text("ALTER TABLE requests_away RENAME TO requests"))
    failed = (await client.get(resp.headers["location"], headers=batch_market["admin"])).json()
    assert failed["status"] == "failed" and "requests" in failed["error"], failed
    assert failed["objective"] is None and failed["finished_at"]


# -- through the real relay and a real worker --------------------------------------------------------------


@pytest.fixture
def queue(redis_url: str) -> Iterator[str]:
    name = f"test-batch-{uuid.uuid4().hex[:8]}"
    yield name
    processes.drop_queue(redis_url, name)


@pytest.fixture
def relay(committed_db_url: str, redis_url: str, queue: str) -> Iterator[Proc]:
    with running(processes.relay(committed_db_url, redis_url, queue)) as proc:
        yield proc


@pytest.fixture
def worker(committed_db_url: str, redis_url: str, queue: str) -> Iterator[Proc]:
    with running(processes.worker(committed_db_url, redis_url, queue)) as proc:
        yield proc


@pytest.mark.worker
async def test_batch_plan_is_computed_by_a_worker_and_shown_by_the_status_endpoint(
    committed_db_url: str,
    committed_engine: AsyncEngine,
    redis_url: str,
    queue: str,
    relay: Proc,
    worker: Proc,
) -> None:
    with LiveServer(committed_db_url, redis_url, live_settings()) as live:
        async with http_client(live) as client:
            market = await build_market(client, committed_db_url)
            body = request_body(
                process_code="machining.milling.cnc_5axis",
                part_envelope_mm={"x": 300, "y": 200, "z": 100},
                location={"latitude": 31.3, "longitude": 120.62},
            )
            created = await client.post("/api/v1/requests", json=body, headers=market.buyer)
            assert created.status_code == 201, created.text
            request_id = created.json()["id"]

            asked = await client.post(
                "/api/v1/admin/matching/batch", json={**_horizon(), "objective": "hours"}, headers=market.admin
            )
            assert asked.status_code == 202 and asked.json()["status"] == "queued", asked.text
            url = asked.headers["location"]

            async def finished() -> dict[str, Any] | None:
                got = await client.get(url, headers=market.admin)
                assert got.status_code == 200, got.text
                plan: dict[str, Any] = got.json()
                return plan if plan["status"] in ("done", "failed") else None

            try:
                plan = await _wait(finished, within=90)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{relay.output()[-3000:]}\n{worker.output()[-3000:]}") from None
            assert plan["status"] == "done", plan
            assert [a["request_id"] for a in plan["assignments"]] == [request_id]
            assert plan["assignments"][0]["asset_id"] == market.machine["id"]
            assert plan["method"] in ("milp", "greedy") and plan["matched_hours"] == 4.0

            suggestion = await client.get(f"/api/v1/requests/{request_id}/suggestion", headers=market.buyer)
            assert suggestion.status_code == 200 and suggestion.json()["plan_id"] == plan["id"], suggestion.text

            # The same job delivered again (at least once): the worker does nothing.
            celery_client = Celery("batch-test-client", broker=kombu_url(redis_url), backend=kombu_url(redis_url))
            celery_client.conf.task_default_queue = queue
            result = celery_client.send_task("requests.run_batch_plan", args=[plan["id"]])
            assert await asyncio.to_thread(result.get, timeout=60) == "skipped"
            assert (await client.get(url, headers=market.admin)).json() == plan
            attempts = await scalar(
                committed_db_url, "SELECT attempts FROM match_plans WHERE id = :id", {"id": uuid.UUID(plan["id"])}
            )
            assert attempts == 1


async def _wait(probe: Any, *, within: float) -> Any:
    from tests.bookings.live_server import wait_for

    return await wait_for(probe, within=within, interval=0.5, what="the plan finished")
