"""The demo market looks alive: after the demo accounts, ``load_demo`` leaves something in every admin queue,
bookings in every reachable state, invoices open and paid, a balanced ledger and an open negotiation, all made
through the real services; a second load adds nothing."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from listings import service as listings
from marketplace.core.settings import Settings
from marketplace.demo.activity import load_demo
from marketplace.demo.activity_market import PENDING_EMAIL
from payments.ledger import trial_balance

STATES = {
    "held",
    "requested",
    "confirmed",
    "in_progress",
    "completed",
    "settled",
    "cancelled",
    "declined",
    "disputed",
    "resolved",
}
COUNTED = (
    "organisations",
    "users",
    "assets",
    "bookings",
    "booking_events",
    "invoices",
    "journal_entries",
    "bank_transfers",
    "audit_log",
    "quotes",
    "quote_versions",
    "listing_flags",
    "requests",
    "outbox",
)


async def _counts(db: AsyncSession) -> dict[str, int]:
    return {t: int((await db.execute(sa.text(f"SELECT count(*) FROM {t}"))).scalar_one()) for t in COUNTED}


async def _values(db: AsyncSession, sql: str) -> list[str]:
    return [str(r[0]) for r in (await db.execute(sa.text(sql))).all()]


async def test_demo_activity_fills_every_queue_and_a_second_load_adds_nothing(
    db: AsyncSession, settings: Settings
) -> None:
    summary = await load_demo(db, settings=settings, market=False)
    assert summary is not None
    await db.flush()

    # Admin queues: a pending verification, a listing to moderate, an open flag, an open dispute.
    assert await _values(db, "SELECT verification_status FROM organisations WHERE verification_status='pending'")
    pending, flags = await listings.moderation_queue(db)
    assert len(pending) == 1 and len(flags) == 1
    owner = await _values(
        db,
        "SELECT u.email FROM organisations o JOIN memberships m ON m.org_id = o.id JOIN users u ON u.id = m.user_id "
        "WHERE o.verification_status = 'pending'",
    )
    assert owner == [PENDING_EMAIL]

    # Bookings in every state the state machine reaches today, with their real timelines.
    states = await _values(db, "SELECT status FROM bookings")
    assert set(states) >= STATES, set(STATES) - set(states)
    assert summary.bookings == {s: states.count(s) for s in set(states)}
    assert (
        await _values(
            db, "SELECT id FROM bookings b WHERE NOT EXISTS (SELECT 1 FROM booking_events e WHERE e.booking_id = b.id)"
        )
        == []
    )
    assert await _values(db, "SELECT id FROM audit_log WHERE action = 'booking.resolve'")

    # The ledger is not empty and balances; invoices are open and paid (bank transfers recorded, audited).
    balance = await trial_balance(db)
    assert balance["balanced"] is True and balance["currencies"]
    invoice_states = set(await _values(db, "SELECT status FROM invoices"))
    assert {"open", "paid"} <= invoice_states, invoice_states
    transfers = await _values(db, "SELECT count(*) FROM bank_transfers")
    assert int(transfers[0]) == summary.invoices_paid > 0
    assert len(await _values(db, "SELECT id FROM audit_log WHERE action = 'invoice.payment'")) == summary.invoices_paid

    # An open negotiation: a quote with the supplier's offer and the buyer's counter-offer, and a message.
    quotes = (
        await db.execute(
            sa.text(
                "SELECT q.status, count(v.*) FROM quotes q JOIN quote_versions v ON v.quote_id = q.id GROUP BY q.id"
            )
        )
    ).all()
    assert [(str(s), int(n)) for s, n in quotes] == [("countered", 2)]
    assert await _values(db, "SELECT status FROM requests") == ["open"]
    assert await _values(db, "SELECT count(*) FROM messages") == ["1"]

    # Loading again into the loaded database adds nothing.
    before = await _counts(db)
    assert await load_demo(db, settings=settings, market=False) is None
    assert await _counts(db) == before
