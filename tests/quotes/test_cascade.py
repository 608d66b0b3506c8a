"""The cascade's steps in one process (the real worker runs them in tests/quotes/test_cascade_worker.py): the
top-ranked factory is asked, a decline or a lapse passes the request on and the buyer is told, the end is
told once, redelivered jobs invite nobody twice, and a quote stops the cascade."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.quotes import cascade, invitations
from tests.quotes.test_invitations import notes
from tests.quotes.test_invitations_helpers import build, post_request


@pytest.fixture
async def market(client: AsyncClient, db: AsyncSession) -> dict[str, Any]:
    return await build(client, db)


async def _invitations(client: AsyncClient, market: dict[str, Any], request_id: str) -> list[tuple[str, str, int]]:
    resp = await client.get(f"/api/v1/requests/{request_id}/invitations", headers=market["buyer"])
    assert resp.status_code == 200, resp.text
    return [(i["supplier_org_id"], i["status"], i["rank"]) for i in resp.json()["items"]]


async def _jobs(db: AsyncSession, task: str, arg: str) -> int:
    found = await db.execute(
        sa.text("SELECT count(*) FROM outbox WHERE task = :task AND args->>0 = :arg"), {"task": task, "arg": arg}
    )
    return int(found.scalar_one())


async def _overdue(db: AsyncSession, request_id: str) -> None:
    await db.execute(
        sa.text(
            "UPDATE quote_invitations SET respond_by = now() - interval '1 minute' "
            "WHERE request_id = :id AND status = 'invited'"
        ),
        {"id": request_id},
    )
    await db.commit()


async def test_decline_then_lapse_walks_down_the_ranking_and_tells_the_buyer(
    client: AsyncClient, db: AsyncSession, market: dict[str, Any]
) -> None:
    cheap_org, dear_org = market["cheap"]["org_id"], market["dear"]["org_id"]
    req = await post_request(client, market["buyer"], auto_cascade=True)
    rid = uuid.UUID(req["id"])
    assert await _jobs(db, "quotes.cascade_start", req["id"]) == 1  # enqueued by the requests service

    first = await cascade.advance(db, rid)
    assert first is not None and first.via == "cascade" and first.rank == 1
    assert await cascade.advance(db, rid) is None  # a redelivered job: the pending invitation holds
    await db.commit()
    assert await _invitations(client, market, req["id"]) == [(cheap_org, "invited", 1)]
    assert await notes(db, market["buyer_org"], "request.cascaded") == []

    url = f"/api/v1/requests/{req['id']}/invitation/decline"
    resp = await client.post(url, json={"reason": "No capacity"}, headers=market["cheap_owner"])
    assert resp.status_code == 200, resp.text
    assert await _jobs(db, "quotes.cascade_start", req["id"]) == 2
    second = await cascade.advance(db, rid)
    assert second is not None and second.rank == 2
    await db.commit()
    assert await _invitations(client, market, req["id"]) == [(cheap_org, "declined", 1), (dear_org, "invited", 2)]
    told = await notes(db, market["buyer_org"], "request.cascaded")
    assert len(told) == 1 and "ranked 2" in told[0][2] and "machining." not in told[0][2]
    assert await notes(db, market["buyer_org"], "quote.invitation_declined") == []  # the cascade notice says it

    # The second factory lets it lapse: the sweep lapses it; nobody is left, the buyer hears it once.
    await _overdue(db, req["id"])
    assert await cascade.sweep(db) == 0
    assert await cascade.sweep(db) == 0
    await db.commit()
    assert await _invitations(client, market, req["id"]) == [(cheap_org, "declined", 1), (dear_org, "lapsed", 2)]
    assert len(await notes(db, market["buyer_org"], "request.cascade_exhausted")) == 1


async def test_the_delayed_lapse_job_passes_the_request_on(
    client: AsyncClient, db: AsyncSession, market: dict[str, Any]
) -> None:
    req = await post_request(client, market["buyer"], auto_cascade=True)
    first = await cascade.advance(db, uuid.UUID(req["id"]))
    assert first is not None
    assert not await cascade.lapse_one(db, first.id)  # not due yet: nothing happens
    await _overdue(db, req["id"])
    assert await cascade.lapse_one(db, first.id)
    assert not await cascade.lapse_one(db, first.id)  # redelivered
    await db.commit()
    statuses = [(s, r) for _o, s, r in await _invitations(client, market, req["id"])]
    assert statuses == [("lapsed", 1), ("invited", 2)]


async def test_a_quote_stops_the_cascade_and_a_plain_request_never_cascades(
    client: AsyncClient, db: AsyncSession, market: dict[str, Any]
) -> None:
    req = await post_request(client, market["buyer"], auto_cascade=True)
    first = await cascade.advance(db, uuid.UUID(req["id"]))
    assert first is not None
    await invitations.on_quoted(db, request_id=first.request_id, supplier_org_id=first.supplier_org_id)
    await db.commit()
    await _overdue(db, req["id"])
    assert await cascade.sweep(db) == 0
    await db.commit()
    assert [s for _o, s, _r in await _invitations(client, market, req["id"])] == ["quoted"]

    plain = await post_request(client, market["buyer"])
    assert await _jobs(db, "quotes.cascade_start", plain["id"]) == 0
    assert await cascade.advance(db, uuid.UUID(plain["id"])) is None
    # Switching auto-cascade on later starts it.
    url = f"/api/v1/requests/{plain['id']}"
    patched = await client.patch(url, json={"auto_cascade": True}, headers=market["buyer"])
    assert patched.status_code == 200, patched.text
    assert await _jobs(db, "quotes.cascade_start", plain["id"]) == 1
    assert await cascade.advance(db, uuid.UUID(plain["id"])) is not None


async def test_the_sweep_restarts_a_cascade_whose_job_was_lost_and_skips_closed_requests(
    client: AsyncClient, db: AsyncSession, market: dict[str, Any]
) -> None:
    lost = await post_request(client, market["buyer"], auto_cascade=True)
    closed = await post_request(client, market["buyer"], auto_cascade=True)
    assert (await client.post(f"/api/v1/requests/{closed['id']}/cancel", headers=market["buyer"])).status_code == 200
    assert await cascade.sweep(db) == 1
    await db.commit()
    assert [r for _o, _s, r in await _invitations(client, market, lost["id"])] == [1]
    assert await _invitations(client, market, closed["id"]) == []
