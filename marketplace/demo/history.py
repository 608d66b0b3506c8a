"""Past bookings of the demo market, written as the real flow would have left them (docs/seeding.md, "The demo's
history").

The booking services only place bookings in the future, so the history cannot be played through them. Each
past booking is written here with what the state machine, the invoice gateway and the admin's bank transfers
would have written at the time: the booking in its final state, its timeline (one event per transition, by the
party the transition table allows), the invoice (line items and tax by :mod:`payments.invoices`' own functions,
numbered from the real gap-free counter in the order the invoices were issued), bank transfers, credit notes,
reviews, and one ledger journal per money event built by the ledger's posting rules (``issue``, ``received``,
``credit``, ``settle``, ``payout_paid``, ``refund_paid``) with the keys and memos the gateway uses, dated when the
event happened. The ledger therefore balances journal by journal, and the trial balance with it.

Outcomes (the booking's last transition):

========== ==========================================================================================
settled    paid by bank transfer, done, confirmed by the buyer (older ones are paid out to the supplier)
unpaid     done and settled, but the buyer's transfer never arrived: the invoice is overdue
cancelled  the buyer cancelled after accepting the terms; refund by the listing's cancellation policy
declined   the supplier declined: the invoice is voided by a full credit note
expired    the supplier did not answer in time: voided like a declined one
resolved   disputed after completion; the admin refunded a quarter
confirmed  booked for the coming days, invoice paid (``confirmed_open``: invoice still open)
========== ==========================================================================================
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.bookings import policy
from marketplace.bookings.models import Booking, BookingEvent, Review
from marketplace.demo import history_repository as repo
from payments import ledger
from payments.invoices import InvoiceConfig, line_items, tax_included
from payments.models import BankTransfer, CreditNote, Invoice

OUTCOMES = ("settled", "unpaid", "cancelled", "declined", "expired", "resolved", "confirmed", "confirmed_open")
# Final booking status of each outcome.
STATUS = {
    "settled": "settled",
    "unpaid": "settled",
    "cancelled": "cancelled",
    "declined": "declined",
    "expired": "expired",
    "resolved": "resolved",
    "confirmed": "confirmed",
    "confirmed_open": "confirmed",
}
DECLINE_REASONS = (
    "The machine is booked for a customer order that week.",
    "The material grade is not one we can machine to that tolerance.",
    "Our operator is on leave that day.",
)
CANCEL_REASONS = ("The customer postponed the order.", "We found the parts in stock.", "The drawing was revised.")
DISPUTE_REASONS = (
    "Three parts are out of tolerance on the flatness.",
    "The surface finish does not meet Ra 1.6 on the sealing face.",
    "The test report is missing the yield strength.",
)
RESOLVE_REASON = "Partial refund for the rejected parts, agreed with both parties."
REVIEW_COMMENTS = (
    "Parts on time and within tolerance. 准时交货，质量稳定。",
    "Good communication, clean parts, will book again.",
    "交期准确，包装很好。",
    "Fast turnaround; the inspection report was complete.",
    "Solid work, a small delay at pickup.",
    "",
)


@dataclass(frozen=True)
class Job:
    """One booking of the history before its outcome is played: who books which listing, when."""

    asset: dict[str, Any]  # id, org_id, kind, title, currency, unit price, setup fee/minutes, buffer, policy, tz
    buyer_org_id: uuid.UUID
    start: datetime  # machine: the booked start; lab: the drop-off day's opening time
    end: datetime  # machine: the booked end; lab: when the results were due
    outcome: str
    booked_by: uuid.UUID | None = None
    samples: int | None = None


@dataclass
class _Journal:
    at: datetime
    key: str
    kind: str
    lines: list[ledger.Line]
    booking_id: uuid.UUID
    invoice_id: uuid.UUID | None
    memo: str
    note: CreditNote | None = None  # its number goes into the memo once numbered


@dataclass
class HistoryWriter:
    """Collects the history's rows, then numbers the documents and adds everything to the session."""

    session: AsyncSession
    config: InvoiceConfig
    commission_bp: int
    now: datetime
    rng: random.Random
    admin_user_id: uuid.UUID | None = None
    bookings: list[Booking] = field(default_factory=list)
    events: list[BookingEvent] = field(default_factory=list)
    invoices: list[Invoice] = field(default_factory=list)
    notes: list[CreditNote] = field(default_factory=list)
    transfers: list[BankTransfer] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    journals: list[_Journal] = field(default_factory=list)
    transfer_count: int = 0
    _by_booking: dict[uuid.UUID, list[_Journal]] = field(default_factory=lambda: defaultdict(list))
    _booking_of: dict[uuid.UUID, Booking] = field(default_factory=dict)

    # -- one booking ----------------------------------------------------------------------------------

    def write(self, job: Job) -> Booking:
        a, rng = job.asset, self.rng
        b = self._booking(job)
        self.bookings.append(b)
        self._booking_of[b.id] = b
        if job.outcome.startswith("confirmed"):
            created = max(self.now - timedelta(days=rng.uniform(1, 6)), job.start - timedelta(days=12))
        else:
            created = job.start - timedelta(days=rng.uniform(3, 12))
        b.created_at = created
        invoice = self._invoice(b, a, at=created)
        self._event(b, "book", "buyer", move=(None, "held"), at=created, user=job.booked_by)
        paid_at = created + timedelta(minutes=rng.randint(5, 40))
        self._event(b, "pay", "buyer", move=("held", "requested"), at=paid_at, user=job.booked_by)
        answer = paid_at + timedelta(hours=rng.uniform(1, 18))
        if job.outcome == "declined":
            self._event(
                b,
                "decline",
                "supplier",
                move=("requested", "declined"),
                at=answer,
                user=None,
                reason=rng.choice(DECLINE_REASONS),
            )
            return self._close(b, invoice, at=answer, refund=b.amount, reason="released")
        if job.outcome == "expired":
            at = paid_at + timedelta(hours=24)
            self._event(
                b, "expire", "system", move=("requested", "expired"), at=at, user=None, reason="deadline passed"
            )
            return self._close(b, invoice, at=at, refund=b.amount, reason="released")
        self._event(b, "accept", "supplier", move=("requested", "confirmed"), at=answer, user=None)
        received = None
        if job.outcome not in ("unpaid", "confirmed_open") and not (job.outcome == "cancelled" and rng.random() < 0.5):
            received = min(answer + timedelta(days=rng.uniform(0.5, 4)), job.start - timedelta(hours=2))
            received = min(received, self.now - timedelta(hours=1))
            received = max(received, answer + timedelta(minutes=30))
            self._transfer(invoice, "in", b.amount, at=received)
        if job.outcome.startswith("confirmed"):
            b.updated_at = answer
            return b
        if job.outcome == "cancelled":
            at = min(job.start - timedelta(days=rng.uniform(1, 6)), self.now - timedelta(hours=1))
            at = max(at, (received or answer) + timedelta(hours=1))
            percent = policy.refund_percent(b.cancellation_policy, start=job.start, now=at, by="buyer")
            b.refund_amount, b.cancelled_by = policy.refund_amount(b.amount, percent), "buyer"
            self._event(
                b,
                "cancel",
                "buyer",
                move=("confirmed", "cancelled"),
                at=at,
                user=job.booked_by,
                reason=rng.choice(CANCEL_REASONS),
            )
            self._close(b, invoice, at=at, refund=b.refund_amount, reason="cancelled")
            if received is not None and b.refund_amount:
                self._later(invoice, "refund", b.refund_amount, after=at)
            return b
        self._event(b, "start", "supplier", move=("confirmed", "in_progress"), at=job.start, user=None)
        done = job.end - timedelta(minutes=rng.choice((0, 0, 10, 25)))
        self._event(b, "complete", "supplier", move=("in_progress", "completed"), at=done, user=None)
        b.completed_at = done
        if job.outcome == "resolved":
            disputed = done + timedelta(hours=rng.uniform(3, 40))
            reason = rng.choice(DISPUTE_REASONS)
            b.dispute_reason = reason
            self._event(
                b, "dispute", "buyer", move=("completed", "disputed"), at=disputed, user=job.booked_by, reason=reason
            )
            at = disputed + timedelta(days=rng.uniform(1, 4))
            self._event(
                b,
                "resolve",
                "admin",
                move=("disputed", "resolved"),
                at=at,
                user=self.admin_user_id,
                reason=RESOLVE_REASON,
            )
            b.refund_amount = b.amount // 4
            self._close(b, invoice, at=at, refund=b.refund_amount, reason="dispute resolved")
            if received is not None:
                self._later(invoice, "refund", b.refund_amount, after=at)
        else:
            at = done + timedelta(hours=rng.uniform(2, 40))
            if rng.random() < 0.3:  # nobody confirmed: the dispute window closed
                at = done + timedelta(hours=72, seconds=1)
                self._event(
                    b,
                    "confirm",
                    "system",
                    move=("completed", "settled"),
                    at=at,
                    user=None,
                    reason="no dispute within the window",
                )
            else:
                self._event(b, "confirm", "buyer", move=("completed", "settled"), at=at, user=job.booked_by)
            self._close(b, invoice, at=at, refund=0, reason="settled")
            self._review(b, after=at)
        b.settled_at = at
        if received is not None and rng.random() < 0.85:
            kept = b.amount - b.refund_amount
            self._later(invoice, "payout", kept - ledger.commission(kept, b.commission_rate_bp), after=at)
        return b

    def _booking(self, job: Job) -> Booking:
        a = job.asset
        machine = a["kind"] == "machine"
        if machine:
            minutes = int((job.end - job.start).total_seconds() // 60)
            amount = policy.machine_price(a["unit_price"], minutes, a["setup_fee"])
            period = Range(
                job.start - timedelta(minutes=a["setup_minutes"]),
                job.end + timedelta(minutes=a["buffer_minutes"]),
                bounds="[)",
            )
        else:
            amount, period = policy.lab_price(a["unit_price"], job.samples or 1), None
        zone = ZoneInfo(a["timezone"])
        return Booking(
            asset_id=a["id"],
            kind=a["kind"],
            supplier_org_id=a["org_id"],
            buyer_org_id=job.buyer_org_id,
            created_by=job.booked_by,
            status=STATUS[job.outcome],
            start_at=job.start if machine else None,
            end_at=job.end if machine else None,
            period=period,
            drop_off_date=None if machine else job.start.astimezone(zone).date(),
            samples=None if machine else job.samples,
            due_date=None if machine else job.end.astimezone(zone).date(),
            currency=a["currency"],
            unit_price=a["unit_price"],
            setup_fee=a["setup_fee"] if machine else 0,
            amount=amount,
            commission_rate_bp=self.commission_bp,
            cancellation_policy=dict(a["cancellation_policy"]),
            site_timezone=a["timezone"],
            payment_method="invoice",
        )

    # -- its records ----------------------------------------------------------------------------------

    def _event(
        self,
        b: Booking,
        action: str,
        actor: str,
        *,
        move: tuple[str | None, str],
        at: datetime,
        user: uuid.UUID | None,
        reason: str | None = None,
    ) -> None:
        before, after = move
        self.events.append(
            BookingEvent(
                booking_id=b.id,
                from_status=before,
                to_status=after,
                action=action,
                actor_kind=actor,
                actor_user_id=user,
                reason=reason,
                created_at=at,
            )
        )
        b.updated_at = at

    def _invoice(self, b: Booking, a: dict[str, Any], *, at: datetime) -> Invoice:
        facts = {
            "title": a["title"],
            "kind": b.kind,
            "unit_price": b.unit_price,
            "setup_fee": b.setup_fee,
            "start_at": b.start_at,
            "end_at": b.end_at,
            "samples": b.samples,
            "drop_off_date": b.drop_off_date,
        }
        tax = tax_included(b.amount, self.config.tax_rate_bp)
        invoice = Invoice(
            number="",  # numbered in issue order by :meth:`add_all`
            booking_id=b.id,
            buyer_org_id=b.buyer_org_id,
            supplier_org_id=b.supplier_org_id,
            currency=b.currency,
            line_items=line_items(facts, b.amount),
            subtotal=b.amount - tax,
            tax_rate_bp=self.config.tax_rate_bp,
            tax=tax,
            total=b.amount,
            status="open",
            issued_at=at,
            due_date=at.date() + timedelta(days=self.config.due_days),
            updated_at=at,
        )
        self.invoices.append(invoice)
        self._journal(
            b,
            invoice,
            at=at,
            key=f"booking:{b.id}:invoice",
            kind="invoice_issued",
            lines=ledger.issue(b.buyer_org_id, b.currency, b.amount),
            memo=f"Invoice for booking {b.id}",
        )
        return invoice

    def _journal(
        self,
        b: Booking,
        invoice: Invoice,
        *,
        at: datetime,
        key: str,
        kind: str,
        lines: list[ledger.Line],
        memo: str,
        note: CreditNote | None = None,
    ) -> None:
        journal = _Journal(at, key, kind, lines, b.id, invoice.id, memo, note)
        self.journals.append(journal)
        self._by_booking[b.id].append(journal)

    def _balance(self, booking_id: uuid.UUID, account: str) -> int:
        return sum(x.amount for j in self._by_booking[booking_id] for x in j.lines if x.account == account)

    def _transfer(self, invoice: Invoice, direction: str, amount: int, *, at: datetime) -> None:
        if amount <= 0:
            return
        self.transfer_count += 1
        reference = f"{at:%Y%m%d}-{self.transfer_count:05d}"
        t = BankTransfer(
            invoice_id=invoice.id,
            direction=direction,
            amount=amount,
            reference=reference,
            recorded_by=self.admin_user_id,
            created_at=at,
        )
        self.transfers.append(t)
        b = self._booking_of[invoice.booking_id]
        kind, lines, memo = {
            "in": (
                "payment_received",
                ledger.received(invoice.buyer_org_id, invoice.currency, amount),
                f"Bank transfer received, ref {reference}",
            ),
            "payout": (
                "payout_sent",
                ledger.payout_paid(invoice.supplier_org_id, invoice.currency, amount, clearing=ledger.CLEARING_BANK),
                f"Payout sent, ref {reference}",
            ),
            "refund": (
                "refund_sent",
                ledger.refund_paid(invoice.buyer_org_id, invoice.currency, amount, clearing=ledger.CLEARING_BANK),
                f"Refund sent, ref {reference}",
            ),
        }[direction]
        self._journal(
            b, invoice, at=at, key=f"invoice:{invoice.id}:{direction}:{t.id}", kind=kind, lines=lines, memo=memo
        )
        if direction == "in" and self._balance(b.id, ledger.BUYER_RECEIVABLE) == 0 and invoice.status == "open":
            invoice.status, invoice.updated_at = "paid", at

    def _later(self, invoice: Invoice, direction: str, amount: int, *, after: datetime) -> None:
        """A payout or refund the admin sent some days after the booking closed (if that day has come)."""
        at = after + timedelta(days=self.rng.uniform(2, 8))
        if at < self.now - timedelta(hours=1):
            self._transfer(invoice, direction, amount, at=at)

    def _close(self, b: Booking, invoice: Invoice, *, at: datetime, refund: int, reason: str) -> Booking:
        """What ``InvoiceGateway._close`` posts: a credit note for ``refund``, the kept rest settled."""
        if refund:
            note = CreditNote(number="", invoice_id=invoice.id, amount=refund, reason=reason, created_at=at)
            self.notes.append(note)
            outstanding = self._balance(b.id, ledger.BUYER_RECEIVABLE)
            lines = ledger.credit(b.buyer_org_id, b.currency, refund, receivable_outstanding=outstanding)
            memo = f"Credit note {{note}} ({reason})"
            self._journal(
                b, invoice, at=at, key=f"booking:{b.id}:credit", kind="credit_note", lines=lines, memo=memo, note=note
            )
        kept = b.amount - refund
        self._journal(
            b,
            invoice,
            at=at,
            key=f"booking:{b.id}:settle",
            kind="settlement",
            lines=ledger.settle(b.supplier_org_id, b.currency, kept, rate_bp=b.commission_rate_bp),
            memo=f"Settlement ({reason}), commission {b.commission_rate_bp} bp",
        )
        received = sum(t.amount for t in self.transfers if t.invoice_id == invoice.id and t.direction == "in")
        invoice.status = "void" if kept == 0 and received == 0 else "closed"
        invoice.updated_at = at
        return b

    def _review(self, b: Booking, *, after: datetime) -> None:
        rng = self.rng
        if rng.random() < 0.55:
            self.reviews.append(
                Review(
                    booking_id=b.id,
                    author_org_id=b.buyer_org_id,
                    subject_org_id=b.supplier_org_id,
                    rating=rng.choices((5, 4, 3, 2), weights=(55, 30, 10, 5))[0],
                    comment=rng.choice(REVIEW_COMMENTS),
                    created_at=after + timedelta(hours=rng.uniform(1, 48)),
                )
            )
        if rng.random() < 0.2:
            self.reviews.append(
                Review(
                    booking_id=b.id,
                    author_org_id=b.supplier_org_id,
                    subject_org_id=b.buyer_org_id,
                    rating=rng.choice((5, 5, 4)),
                    comment="Clear drawings, paid on time. 图纸清楚，付款及时。",
                    created_at=after + timedelta(hours=rng.uniform(1, 48)),
                )
            )

    # -- into the session -----------------------------------------------------------------------------

    async def add_all(self) -> None:
        """Number the invoices and credit notes in the order they were issued (gap-free, from the real
        counters), then add every row; journals in the order they happened, so ledger line ids follow time."""
        await self._number(self.invoices, lambda i: i.issued_at, self.config.number_prefix)
        await self._number(self.notes, lambda n: n.created_at, self.config.credit_note_prefix)
        s = self.session
        s.add_all(self.bookings)
        await s.flush()
        s.add_all(self.invoices)
        await s.flush()
        s.add_all([*self.events, *self.notes, *self.transfers, *self.reviews])
        for j in sorted(self.journals, key=lambda j: j.at):
            memo = j.memo.replace("{note}", j.note.number) if j.note is not None else j.memo
            repo.add_journal(
                s,
                key=j.key,
                kind=j.kind,
                lines=j.lines,
                at=j.at,
                booking_id=j.booking_id,
                invoice_id=j.invoice_id,
                memo=memo,
            )
        await s.flush()  # inserts keep the order they were added in: ledger line ids follow time

    async def _number(self, docs: list[Any], when: Any, prefix: str) -> None:
        by_series: dict[str, list[Any]] = defaultdict(list)
        for doc in sorted(docs, key=when):
            by_series[f"{prefix}-{when(doc).year}"].append(doc)
        for series, items in by_series.items():
            first = await repo.reserve_numbers(self.session, series, len(items))
            for n, doc in enumerate(items, start=first):
                doc.number = f"{series}-{n:06d}" if n < 1_000_000 else f"{series}-{n}"
