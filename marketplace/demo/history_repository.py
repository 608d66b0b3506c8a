"""SQL of the demo's history (:mod:`marketplace.demo.history`): the listings and buyers it books, the invoice
number blocks it draws from the real counters, and the backdating of the demo listings.

The historical rows themselves (bookings, timelines, invoices, transfers, credit notes, reviews, journals) are
ORM objects added to the caller's session; journals are built from the ledger's own posting rules and checked
with :func:`payments.ledger.check_balanced` (the deferred balance trigger re-checks them at commit)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from payments import ledger
from payments.models import DocumentCounter, Journal, JournalEntry


async def published_machines(session: AsyncSession, *, country: str) -> list[dict[str, Any]]:
    """Published machines of verified organisations at sites in ``country``, with their site's region, the
    process family and the terms a booking snapshots."""
    rows = await session.execute(
        sa.text(
            "SELECT a.id, a.org_id, a.title, a.currency, a.hourly_rate, a.setup_fee, a.setup_minutes,"
            " a.buffer_minutes, a.published_at, a.next_free_at, a.cancellation_policy, s.region_code, s.timezone,"
            " split_part(a.process_codes[1], '.', 1) AS family"
            " FROM assets a JOIN sites s ON s.id = a.site_id JOIN organisations o ON o.id = a.org_id"
            " WHERE a.kind = 'machine' AND a.status = 'published' AND o.verification_status = 'verified'"
            " AND s.country = :country AND a.hourly_rate IS NOT NULL AND a.published_at IS NOT NULL"
            " ORDER BY a.id"
        ),
        {"country": country},
    )
    return [dict(r._mapping) for r in rows.all()]


async def buyer_organisations(session: AsyncSession, *, email_domain: str) -> list[uuid.UUID]:
    """Verified organisations that only buy, owned by a user in ``email_domain`` (the generated market's)."""
    rows = await session.execute(
        sa.text(
            "SELECT DISTINCT o.id FROM organisations o JOIN memberships m ON m.org_id = o.id"
            " JOIN users u ON u.id = m.user_id"
            " WHERE o.roles = ARRAY['buyer']::text[] AND o.verification_status = 'verified'"
            " AND lower(u.email) LIKE :pattern ORDER BY o.id"
        ),
        {"pattern": f"%@{email_domain}"},
    )
    return [uuid.UUID(str(r[0])) for r in rows.all()]


async def backdate_listings(
    session: AsyncSession, asset_ids: Sequence[uuid.UUID], *, created: datetime, published: datetime
) -> None:
    """The demo's own listings were listed months ago (their history's bookings come after), and so were
    their sites."""
    ids = list(asset_ids)
    await session.execute(
        sa.text(
            "UPDATE assets SET created_at = :created, submitted_at = :created, published_at = :published"
            " WHERE id = ANY(:ids) AND status = 'published'"
        ),
        {"ids": ids, "created": created, "published": published},
    )
    await session.execute(
        sa.text("UPDATE sites SET created_at = :created WHERE id IN (SELECT site_id FROM assets WHERE id = ANY(:ids))"),
        {"ids": ids, "created": created},
    )


async def reserve_numbers(session: AsyncSession, series: str, count: int) -> int:
    """Draw ``count`` consecutive numbers of ``series`` from the gap-free document counter (the one invoices
    and credit notes use); returns the first."""
    result = await session.execute(
        insert(DocumentCounter)
        .values(series=series, last=count)
        .on_conflict_do_update(index_elements=["series"], set_={"last": DocumentCounter.last + count})
        .returning(col(DocumentCounter.last))
    )
    return int(result.scalar_one()) - count + 1


def add_journal(
    session: AsyncSession,
    *,
    key: str,
    kind: str,
    lines: Sequence[ledger.Line],
    at: datetime,
    booking_id: uuid.UUID,
    invoice_id: uuid.UUID | None,
    memo: str,
) -> None:
    """One journal as :func:`payments.ledger.post` writes it, dated ``at`` (when the event happened)."""
    lines = [line for line in lines if line.amount != 0]
    if not lines:
        return
    ledger.check_balanced(lines)
    journal = Journal(key=key, kind=kind, booking_id=booking_id, invoice_id=invoice_id, memo=memo[:500], created_at=at)
    session.add(journal)
    session.add_all(
        JournalEntry(journal_id=journal.id, account=x.account, org_id=x.org_id, currency=x.currency, amount=x.amount)
        for x in lines
    )
