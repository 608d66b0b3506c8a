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
    assert flags[0].reason_code == "misleading_description"  # shown as a translated reason on /admin/flags
    owner = await _values(
        db,
        "SELECT u.email FROM organisations o JOIN memberships m ON m.org_id = o.id JOIN users u ON u.id = m.user_id "
        "WHERE o.verification_status = 'pending'",
    )
    assert owner == [PENDING_EMAIL]

    # Bookings in every state the state machine reaches today, with their real timelines.
    states = await _values(db, "SELECT status FROM bookings")
    assert set(states) >= STATES, set(STATES) - set(states)
    history = summary.history.bookings if summary.history else {}
    made = {s: summary.bookings.get(s, 0) + history.get(s, 0) for s in {*summary.bookings, *history}}
    assert made == {s: states.count(s) for s in set(states)}
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
    transfers = await _values(db, "SELECT count(*) FROM bank_transfers WHERE reference LIKE 'DEMO-TRANSFER-%'")
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

    # A voucher programme of the Guangdong department, with the demo buyer's voucher granted (issue #18).
    programmes = (await db.execute(sa.text("SELECT id, region_prefix, status FROM voucher_programmes"))).all()
    assert [(p.region_prefix, p.status) for p in programmes] == [("44", "active")]
    holders = await _values(
        db,
        "SELECT u.email FROM vouchers v JOIN memberships m ON m.org_id = v.buyer_org_id JOIN users u"
        " ON u.id = m.user_id WHERE v.status = 'granted'",
    )
    assert holders == ["buyer@example.com"]

    # Loading again into the loaded database adds nothing.
    before = await _counts(db)
    assert await load_demo(db, settings=settings, market=False) is None
    assert await _counts(db) == before


async def test_demo_history_fills_past_months_with_a_balanced_ledger_and_unsuppressed_observatory_cells(
    db: AsyncSession, settings: Settings
) -> None:
    from datetime import UTC, datetime, timedelta

    from marketplace.analytics.observatory import observatory_indicators
    from marketplace.demo.activity import load_cast

    summary = await load_demo(db, settings=settings, market=True)
    assert summary is not None and summary.history is not None
    await db.flush()
    now = datetime.now(UTC)

    # Months of bookings in every terminal state, on the demo factory's listings and across the market.
    past = (
        await db.execute(
            sa.text(
                "SELECT status, count(*), count(DISTINCT buyer_org_id), count(DISTINCT supplier_org_id),"
                " min(coalesce(start_at, drop_off_date::timestamptz)) FROM bookings"
                " WHERE coalesce(end_at, due_date::timestamptz) < now() - interval '3 days' GROUP BY status"
            )
        )
    ).all()
    by_status = {str(s): (int(n), int(b), int(o), first) for s, n, b, o, first in past}
    assert {"settled", "cancelled", "declined", "expired", "resolved"} <= set(by_status), by_status
    assert by_status["settled"][1] >= 5 and by_status["settled"][2] >= 5  # several buyers and suppliers
    assert min(first for *_, first in by_status.values()) < now - timedelta(days=120)

    # Every history booking has its timeline ending in its status, and one invoice.
    assert (
        await _values(
            db,
            "SELECT b.id FROM bookings b WHERE NOT EXISTS (SELECT 1 FROM invoices i WHERE i.booking_id = b.id)"
            " OR (SELECT e.to_status FROM booking_events e WHERE e.booking_id = b.id"
            "     ORDER BY e.created_at DESC, e.id DESC LIMIT 1) <> b.status",
        )
        == []
    )
    # Journals are dated when they happened, in the past, and the whole ledger balances.
    assert await _values(db, "SELECT count(*) FROM journals WHERE created_at < now() - interval '60 days'") != ["0"]
    balance = await trial_balance(db)
    assert balance["balanced"] is True
    kinds = set(await _values(db, "SELECT DISTINCT kind FROM journals"))
    assert {"invoice_issued", "payment_received", "settlement", "credit_note", "payout_sent", "refund_sent"} <= kinds
    # Invoices numbered gap-free in issue order; paid, open, overdue, closed and void ones.
    numbers = await _values(
        db, "SELECT number FROM invoices WHERE number NOT LIKE 'DRAFT-%' ORDER BY issued_at, number"
    )
    assert numbers == sorted(numbers) and len(numbers) == len(set(numbers))
    assert {"paid", "open", "closed", "void"} <= set(await _values(db, "SELECT status FROM invoices"))
    assert await _values(db, "SELECT count(*) FROM reviews") != ["0"]

    # The factory's machines were booked in each of the last four weeks.
    weeks = await _values(
        db,
        "SELECT DISTINCT date_trunc('week', start_at) FROM bookings b"
        " JOIN memberships m ON m.org_id = b.supplier_org_id JOIN users u ON u.id = m.user_id"
        " WHERE u.email = 'factory@example.com' AND start_at < now()"
        " AND start_at > now() - interval '35 days'",
    )
    assert len(weeks) >= 4

    # The observatory shows real numbers: cells backed by enough organisations, with utilisation.
    cast = await load_cast(db, admin_email=settings.demo_admin_email)
    out = await observatory_indicators(
        db, cast.admin, settings, region=None, start=(now - timedelta(days=150)).date(), end=now.date()
    )
    shown = [c for c in out.cells if not c.suppressed and c.region != "*" and c.indicators and c.indicators.utilization]
    assert len({(c.region, c.process_family) for c in shown}) >= 3, out.cells
    months = {c.month for c in shown}
    assert len(months) >= 5 and now.strftime("%Y-%m") in months
