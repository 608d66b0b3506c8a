"""All SQL of the payments domain that is not the ledger's. Shell tables (bookings, assets,
organisations) are read through lightweight ``sa.table`` clauses: a documented read-only contract."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlmodel import col

from payments.models import (
    BankTransfer,
    CardPayment,
    CommissionOverride,
    CreditNote,
    DocumentCounter,
    Invoice,
    Journal,
    JournalEntry,
    StripeAccount,
    StripeEvent,
    utcnow,
)

_PENDING_NUMBERS = "payments.invoice_numbers_at_commit"
# One statement: lock and bump the series counter, and number the invoice, only if the invoice still carries
# its provisional number in this transaction (rolled back to a savepoint: no row, no increment, no gap).
_NUMBER_INVOICE = sa.text(
    """
    WITH draft AS (SELECT id FROM invoices WHERE id = :id AND number = :draft),
    counter AS (
        INSERT INTO document_counters (series, last) SELECT :series, 1 FROM draft
        ON CONFLICT (series) DO UPDATE SET last = document_counters.last + 1
        RETURNING last
    )
    UPDATE invoices
       SET number = :series || '-' || CASE WHEN counter.last < 1000000 THEN lpad(counter.last::text, 6, '0')
                                           ELSE counter.last::text END
      FROM counter WHERE invoices.id = :id
    RETURNING invoices.number
    """
)


_invoices: sa.Table = Invoice.__table__  # type: ignore[attr-defined]
_ISSUE_INVOICE = (
    insert(_invoices).on_conflict_do_nothing(index_elements=["booking_id", "instalment"]).returning(_invoices.c.id)
)


def draft_number(invoice_id: uuid.UUID) -> str:
    """The provisional number of an invoice until its transaction's final statement (never committed)."""
    return f"DRAFT-{invoice_id.hex}"


@event.listens_for(Session, "before_commit")
def _number_invoices_at_commit(session: Session) -> None:
    """Runs inside ``commit()`` (for ``AsyncSession`` in its greenlet, so SQL may be emitted synchronously),
    after everything else the unit of work did: the counter row lock is taken by the last statement."""
    if session.in_nested_transaction():  # a savepoint is being released, not the transaction committed
        return
    pending = session.info.pop(_PENDING_NUMBERS, None)
    for invoice_id, draft, series in pending or ():
        number = session.execute(_NUMBER_INVOICE, {"id": invoice_id, "draft": draft, "series": series}).scalar()
        invoice = session.identity_map.get(identity_key(Invoice, invoice_id))
        if invoice is not None and number is not None:
            set_committed_value(invoice, "number", number)


@event.listens_for(Session, "after_soft_rollback")
def _forget_numbers(session: Session, previous_transaction: SessionTransaction) -> None:
    if not previous_transaction.nested:
        session.info.pop(_PENDING_NUMBERS, None)


def commission_override_rate(org_id: Any) -> Any:
    """A scalar subquery: the organisation's commission override in basis points, or NULL. For a caller that
    loads a supplier in one query; :func:`payments.commission.rate_for` is the one-off form (override, else
    the platform default)."""
    return sa.select(col(CommissionOverride.rate_bp)).where(col(CommissionOverride.org_id) == org_id).scalar_subquery()


# Read-only views of shell tables.
bookings_t = sa.table(
    "bookings",
    sa.column("id"),
    sa.column("kind"),
    sa.column("asset_id"),
    sa.column("status"),
    sa.column("unit_price"),
    sa.column("setup_fee"),
    sa.column("amount"),
    sa.column("start_at"),
    sa.column("end_at"),
    sa.column("samples"),
    sa.column("drop_off_date"),
    sa.column("payment_method"),
    sa.column("instalments"),
)
assets_t = sa.table("assets", sa.column("id"), sa.column("title"))
orgs_t = sa.table("organisations", sa.column("id"), sa.column("name"), sa.column("legal_name"), sa.column("uscc"))


class PaymentsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- numbering ------------------------------------------------------------------------------------

    async def next_number(self, series: str) -> int:
        """Gap-free within committed transactions: the counter row is locked until commit."""
        result = await self.session.execute(
            insert(DocumentCounter)
            .values(series=series, last=1)
            .on_conflict_do_update(index_elements=["series"], set_={"last": DocumentCounter.last + 1})
            .returning(col(DocumentCounter.last))
        )
        return int(result.scalar_one())

    def number_at_commit(self, invoice_id: uuid.UUID, draft: str, series: str) -> None:
        """Give invoice ``invoice_id`` (inserted with its provisional :func:`draft_number` ``draft``) the next
        number of ``series`` in the transaction's final statement, just before COMMIT: the counter row is then
        locked only for the commit itself instead of for the rest of the request, and numbers stay
        gap-free (a rolled-back transaction rolls its increment back)."""
        self.session.sync_session.info.setdefault(_PENDING_NUMBERS, []).append((invoice_id, draft, series))

    # -- invoices -------------------------------------------------------------------------------------

    async def add(self, obj: Any) -> Any:
        self.session.add(obj)
        await self.session.flush()
        return obj

    async def issue_invoice(self, values: dict[str, Any]) -> bool:
        """INSERT an invoice (every column given) unless its booking already has one; True if inserted.
        One Core statement; the unique ``booking_id`` decides, so a repeated issue is a no-op."""
        inserted = await self.session.execute(_ISSUE_INVOICE, values)
        return inserted.first() is not None

    async def invoice(self, invoice_id: uuid.UUID, *, for_update: bool = False) -> Invoice | None:
        stmt = sa.select(Invoice).where(col(Invoice.id) == invoice_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def invoice_for_booking(self, booking_id: uuid.UUID, *, for_update: bool = False) -> Invoice | None:
        """The booking's invoice: its only one, or with a payment schedule the latest instalment's."""
        stmt = (
            sa.select(Invoice)
            .where(col(Invoice.booking_id) == booking_id)
            .order_by(col(Invoice.instalment).desc())
            .limit(1)
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def invoices_for_booking(self, booking_id: uuid.UUID, *, for_update: bool = False) -> list[Invoice]:
        """Every invoice of the booking, by instalment (one, numbered 0, without a payment schedule)."""
        stmt = sa.select(Invoice).where(col(Invoice.booking_id) == booking_id).order_by(col(Invoice.instalment))
        if for_update:
            stmt = stmt.with_for_update()
        return list((await self.session.execute(stmt)).scalars())

    async def credit_notes(self, invoice_id: uuid.UUID) -> list[CreditNote]:
        rows = await self.session.execute(
            sa.select(CreditNote).where(col(CreditNote.invoice_id) == invoice_id).order_by(col(CreditNote.created_at))
        )
        return list(rows.scalars())

    async def transfers(self, invoice_id: uuid.UUID) -> list[BankTransfer]:
        rows = await self.session.execute(
            sa.select(BankTransfer)
            .where(col(BankTransfer.invoice_id) == invoice_id)
            .order_by(col(BankTransfer.created_at))
        )
        return list(rows.scalars())

    async def transfer_exists(self, invoice_id: uuid.UUID, direction: str, reference: str) -> bool:
        found = await self.session.scalar(
            sa.select(col(BankTransfer.id)).where(
                col(BankTransfer.invoice_id) == invoice_id,
                col(BankTransfer.direction) == direction,
                col(BankTransfer.reference) == reference,
            )
        )
        return found is not None

    async def overdue_invoices(self, today: date) -> list[Invoice]:
        rows = await self.session.execute(
            sa.select(Invoice)
            .where(
                col(Invoice.status) == "open",
                col(Invoice.due_date) < today,
                col(Invoice.overdue_flagged_at).is_(None),
            )
            .with_for_update(skip_locked=True)
        )
        return list(rows.scalars())

    # -- shell reads ----------------------------------------------------------------------------------

    async def booking_facts(self, booking_id: uuid.UUID) -> dict[str, Any]:
        """The booking's invoice facts, its asset's title and ``invoice_id`` (its latest invoice, if any)."""
        latest = (
            sa.select(col(Invoice.id))
            .where(col(Invoice.booking_id) == bookings_t.c.id)
            .order_by(col(Invoice.instalment).desc())
            .limit(1)
            .scalar_subquery()
        )
        row = (
            (
                await self.session.execute(
                    sa.select(bookings_t, assets_t.c.title, latest.label("invoice_id"))
                    .select_from(bookings_t.outerjoin(assets_t, assets_t.c.id == bookings_t.c.asset_id))
                    .where(bookings_t.c.id == booking_id)
                )
            )
            .mappings()
            .one_or_none()
        )
        return dict(row) if row else {}

    async def voucher_issued(self, booking_id: uuid.UUID, *, instalment: int = 0) -> tuple[int, uuid.UUID] | None:
        """The voucher share the booking's invoice (or its invoice of ``instalment``) put on a programme's
        receivable, and that programme's organisation; None without an advance voucher."""
        key = f"booking:{booking_id}:invoice" + (f":{instalment}" if instalment else "")
        row = (
            await self.session.execute(
                sa.select(col(JournalEntry.amount), col(JournalEntry.org_id))
                .join(Journal, col(Journal.id) == col(JournalEntry.journal_id))
                .where(
                    col(Journal.key) == key,
                    col(JournalEntry.account) == "programme_receivable",
                )
            )
        ).first()
        return (int(row[0]), row[1]) if row is not None and row[1] is not None else None

    async def org(self, org_id: uuid.UUID) -> dict[str, Any]:
        row = (await self.session.execute(sa.select(orgs_t).where(orgs_t.c.id == org_id))).mappings().one_or_none()
        return dict(row) if row else {}

    # -- stripe ---------------------------------------------------------------------------------------

    async def journal_sums(self, account: str) -> list[tuple[str, str, int]]:
        """(currency, journal kind, sum of the account's entries) for every currency and kind it was moved by."""
        rows = await self.session.execute(
            sa.select(col(JournalEntry.currency), col(Journal.kind), sa.func.sum(col(JournalEntry.amount)))
            .join(Journal, col(Journal.id) == col(JournalEntry.journal_id))
            .where(col(JournalEntry.account) == account)
            .group_by(col(JournalEntry.currency), col(Journal.kind))
        )
        return [(currency, kind, int(total)) for currency, kind, total in rows.all()]

    async def stripe_account(self, org_id: uuid.UUID) -> StripeAccount | None:
        return await self.session.get(StripeAccount, org_id)

    async def stripe_account_by_id(self, account_id: str) -> StripeAccount | None:
        return (
            await self.session.execute(sa.select(StripeAccount).where(col(StripeAccount.account_id) == account_id))
        ).scalar_one_or_none()

    async def card_payment(self, booking_id: uuid.UUID, *, for_update: bool = False) -> CardPayment | None:
        stmt = sa.select(CardPayment).where(col(CardPayment.booking_id) == booking_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def card_payment_by_intent(self, payment_intent_id: str, *, for_update: bool = False) -> CardPayment | None:
        stmt = sa.select(CardPayment).where(col(CardPayment.payment_intent_id) == payment_intent_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def card_payment_by_charge(self, charge_id: str, *, for_update: bool = False) -> CardPayment | None:
        stmt = sa.select(CardPayment).where(col(CardPayment.charge_id) == charge_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def card_payments(self) -> list[CardPayment]:
        return list((await self.session.execute(sa.select(CardPayment))).scalars())

    async def store_event(self, event_id: str, *, type_: str, object_id: str | None, payload: dict[str, Any]) -> bool:
        """Insert the event once; True if it is new."""
        result = await self.session.execute(
            insert(StripeEvent)
            .values(event_id=event_id, type=type_, object_id=object_id, payload=payload, status="pending")
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(col(StripeEvent.id))
        )
        return result.scalar_one_or_none() is not None

    async def event(self, event_id: str, *, for_update: bool = False) -> StripeEvent | None:
        stmt = sa.select(StripeEvent).where(col(StripeEvent.event_id) == event_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def pending_events(self, limit: int = 100) -> list[str]:
        rows = await self.session.execute(
            sa.select(col(StripeEvent.event_id))
            .where(col(StripeEvent.status) == "pending")
            .order_by(col(StripeEvent.id))
            .limit(limit)
        )
        return list(rows.scalars())

    async def mark_event(self, event: StripeEvent, status: str, error: str | None = None) -> None:
        event.status, event.error, event.processed_at = status, (error or None) and error[:2000], utcnow()
        await self.session.flush()
