"""Retention: a closed request's drawings go after the period; an open request's and a booking's stay."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.principal import Principal
from marketplace.core.settings import Settings
from marketplace.documents import retention, service
from marketplace.documents.storage import storage_for
from marketplace.messages.models import Message, MessageThread
from marketplace.requests.models import BuyerRequest
from tests.bookings.helpers import book, market, slot
from tests.documents import samples
from tests.documents.helpers import blobs, run_blob_jobs, uploaded


async def _request(db: AsyncSession, buyer_org: uuid.UUID, *, status: str, closed_at: datetime) -> uuid.UUID:
    req = BuyerRequest(
        buyer_org_id=buyer_org,
        kind="machine",
        process_code="machining.milling.cnc_5axis",
        duration_minutes=60,
        earliest_start=closed_at,
        deadline=closed_at + timedelta(days=7),
        currency="CNY",
        status=status,
        updated_at=closed_at,
    )
    db.add(req)
    await db.flush()
    return req.id


async def _live(db: AsyncSession, ids: dict[str, str]) -> set[str]:
    rows = await db.execute(
        sa.text("SELECT id::text FROM documents WHERE deleted_at IS NULL AND id::text = ANY(:ids)"),
        {"ids": list(ids.values())},
    )
    alive = set(rows.scalars())
    return {name for name, doc_id in ids.items() if doc_id in alive}


async def test_retention_deletes_closed_requests_drawings_and_keeps_open_ones_and_bookings(
    client: AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    m = await market(client, db)
    buyer_org = uuid.UUID(m["buyer_org"])
    buyer = Principal(user_id=None, memberships={buyer_org: "member"})
    bookings = []
    for hours in (48, 96):
        start, end = slot(hours)
        resp = await book(client, m["buyer"], m["asset"]["id"], start, end)
        assert resp.status_code == 201, resp.text
        bookings.append(uuid.UUID(resp.json()["id"]))
    active_booking, ended_booking = bookings

    base = datetime.now(UTC)
    days = settings.drawing_retention_days
    closed = await _request(db, buyer_org, status="closed", closed_at=base)
    open_ = await _request(db, buyer_org, status="open", closed_at=base - timedelta(days=3 * days))
    recent = await _request(db, buyer_org, status="cancelled", closed_at=base + timedelta(days=days - 5))

    docs = {}
    for name in ("closed", "open", "closed+booking", "recent", "ended-booking", "closed-message", "open-message"):
        docs[name] = (await uploaded(client, m["buyer"], samples.PDF + name.encode(), f"{name}.pdf"))["id"]

    async def link(name: str, kind: str, target: uuid.UUID) -> None:
        ids = [uuid.UUID(docs[name])]
        await service.attach(db, principal=buyer, document_ids=ids, target_kind=kind, target_id=target)

    await link("closed", "request", closed)
    await link("open", "request", open_)
    await link("closed+booking", "request", closed)
    await link("closed+booking", "booking", active_booking)
    await link("recent", "request", recent)
    await link("ended-booking", "booking", ended_booking)
    # Files sent in a message belong to the thread's request: they follow its drawings.
    for name, request_id in (("closed-message", closed), ("open-message", open_)):
        thread = MessageThread(
            request_id=request_id, buyer_org_id=buyer_org, supplier_org_id=uuid.UUID(m["asset"]["org_id"])
        )
        db.add(thread)
        await db.flush()
        message = Message(thread_id=thread.id, author_org_id=buyer_org, body="see the file")
        db.add(message)
        await db.flush()
        await link(name, "message", message.id)
    await db.execute(
        sa.text("UPDATE bookings SET status = 'settled', updated_at = :at WHERE id = :id"),
        {"at": base, "id": ended_booking},
    )

    storage = storage_for(settings)
    assert len(blobs(settings.data_dir)) == 7

    # before the period is over nothing goes
    assert await retention.sweep(db, settings=settings, now=base + timedelta(days=days - 1)) == 0

    after_period = base + timedelta(days=days + 1)
    assert await retention.sweep(db, settings=settings, now=after_period) == 2
    assert await _live(db, docs) == {"open", "closed+booking", "recent", "ended-booking", "open-message"}
    await run_blob_jobs(db, storage)
    assert len(blobs(settings.data_dir)) == 5
    assert await retention.sweep(db, settings=settings, now=after_period) == 0  # idempotent

    years_later = base + timedelta(days=365 * settings.booking_document_retention_years + 10)
    assert await retention.sweep(db, settings=settings, now=years_later) == 2
    assert await _live(db, docs) == {"open", "closed+booking", "open-message"}
    await run_blob_jobs(db, storage)
    assert len(blobs(settings.data_dir)) == 3

    audited = await db.execute(
        sa.text("SELECT target_id, reason FROM audit_log WHERE action = 'document.deleted' AND target_id = ANY(:ids)"),
        {"ids": list(docs.values())},
    )
    rows = {str(r[0]): r[1] for r in audited.all()}
    assert set(rows) == {docs["closed"], docs["recent"], docs["ended-booking"], docs["closed-message"]}
    assert set(rows.values()) == {"retention period over"}
