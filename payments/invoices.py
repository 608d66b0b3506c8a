"""The invoice / bank-transfer gateway (B2B 对公转账), the default when no Stripe key is configured.

* booked: an invoice is issued (gap-free number, due date, line items, tax breakdown) and the buyer's
  receivable is posted against "customer funds held";
* the buyer accepts the terms (the bookings service's ``pay`` action), the supplier accepts;
* an admin records the money received (amount, bank reference) and later the payout sent;
* released / cancelled / resolved: refunds are credit notes; the kept part is settled (commission to
  the platform, the rest owed to the supplier); an invoice with nothing kept and nothing paid is void;
* overdue open invoices are flagged by a scheduled job.

Prices are tax-inclusive (含税价): the invoice total is the booking amount; the tax shown is the part of
it at ``tax_rate_bp`` (round half up), and it belongs to the supplier's price, not to the ledger.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from payments import instalments, ledger
from payments.errors import Invalid, NotFound, Overpayment, PaymentConflict
from payments.invoice_lines import line_items as line_items  # re-exported: callers import it from here
from payments.models import BankTransfer, CreditNote, Invoice, utcnow
from payments.port import BookingMoney, PaymentView
from payments.repository import PaymentsRepository, draft_number


@dataclass(frozen=True)
class InvoiceConfig:
    tax_rate_bp: int = 600
    due_days: int = 14
    number_prefix: str = "INV"
    credit_note_prefix: str = "CN"


def tax_included(total: int, rate_bp: int) -> int:
    """The tax contained in a tax-inclusive total, rounded half up: total x rate / (10 000 + rate)."""
    return ledger.round_half_up_div(total * rate_bp, 10_000 + rate_bp)


class InvoiceGateway:
    method = "invoice"

    def __init__(self, config: InvoiceConfig | None = None) -> None:
        self.config = config or InvoiceConfig()

    # -- the port -------------------------------------------------------------------------------------

    async def on_paid(self, session: AsyncSession, money: BookingMoney) -> None:
        """Accepting the invoice terms secures the booking; the money follows by bank transfer."""
        return None

    async def before_booked(self, session: AsyncSession, money: BookingMoney) -> None:
        """Nothing external: the invoice is written in the booking's own transaction (``on_booked``)."""
        return None

    async def booking_abandoned(self, session: AsyncSession, money: BookingMoney) -> None:
        return None  # the rollback removes the invoice with the booking

    async def on_booked(self, session: AsyncSession, money: BookingMoney) -> None:
        """Issue the invoice and post its journal. The invoice's gap-free number is drawn from the counter by
        the transaction's final statement, at commit (:meth:`PaymentsRepository.number_at_commit`), so the
        counter row is locked only for the commit; nothing outside the transaction sees it unnumbered.
        A booking that already has an invoice is left alone (the unique ``booking_id`` decides). A booking with
        a payment schedule gets nothing yet: each instalment is invoiced when it falls due."""
        if money.instalments:
            return
        repo = PaymentsRepository(session)
        # A shallow copy: the terms are immutable, and asdict's recursive deep copy showed in a booking's profile.
        facts = dict(vars(money.terms)) if money.terms is not None else await repo.booking_facts(money.booking_id)
        await self._issue(
            session,
            money,
            instalment=0,
            total=money.amount,
            subsidy=money.subsidy,
            items=line_items(facts, money.amount),
        )

    async def on_instalment_due(self, session: AsyncSession, money: BookingMoney, *, n: int) -> None:
        """Invoice instalment ``n`` (its own number, due date and journal ``booking:{id}:invoice:{n}``); once
        only (the unique (booking_id, instalment) decides). An advance voucher's share is split per instalment
        (:func:`payments.instalments.subsidy_part`)."""
        label, amount, before = instalments.position(money, n)
        facts = await PaymentsRepository(session).booking_facts(money.booking_id)
        subsidy = instalments.subsidy_part(money.subsidy, money.amount, before=before, upto=before + amount)
        item = instalments.line(facts, n=n, label=label, amount=amount, total=money.amount)
        await self._issue(session, money, instalment=n, total=amount, subsidy=subsidy, items=[item])

    async def _issue(
        self,
        session: AsyncSession,
        money: BookingMoney,
        *,
        instalment: int,
        total: int,
        subsidy: int,
        items: list[dict[str, Any]],
    ) -> None:
        repo = PaymentsRepository(session)
        now = utcnow()
        tax = tax_included(total, self.config.tax_rate_bp)
        invoice_id = uuid.uuid4()
        draft = draft_number(invoice_id)
        invoice = {
            "id": invoice_id,
            "number": draft,
            "booking_id": money.booking_id,
            "instalment": instalment,
            "buyer_org_id": money.buyer_org_id,
            "supplier_org_id": money.supplier_org_id,
            "currency": money.currency,
            "line_items": items,
            "subtotal": total - tax,
            "tax_rate_bp": self.config.tax_rate_bp,
            "tax": tax,
            "total": total,
            "status": "open",
            "issued_at": now,
            "due_date": now.date() + timedelta(days=self.config.due_days),
            "overdue_flagged_at": None,
            "updated_at": now,
        }
        if not await repo.issue_invoice(invoice):
            return
        suffix = f":{instalment}" if instalment else ""
        await ledger.post(
            session,
            key=f"booking:{money.booking_id}:invoice{suffix}",
            kind="invoice_issued",
            lines=ledger.issue(
                money.buyer_org_id, money.currency, total, subsidy=subsidy, payer=money.subsidy_payer_org_id
            ),
            booking_id=money.booking_id,
            invoice_id=invoice_id,
            memo=f"Invoice for booking {money.booking_id}" + (f", instalment {instalment}" if instalment else ""),
        )
        repo.number_at_commit(invoice_id, draft, f"{self.config.number_prefix}-{now.year}")

    async def on_accepted(self, session: AsyncSession, money: BookingMoney) -> None:
        """The invoice stays payable; nothing moves until the bank transfer arrives."""
        return None

    async def on_released(self, session: AsyncSession, money: BookingMoney) -> None:
        await self._close(session, money, refund=money.amount, reason="released")

    async def on_cancelled(self, session: AsyncSession, money: BookingMoney, refund: int) -> None:
        await self._close(session, money, refund=refund, reason="cancelled")

    async def on_settled(self, session: AsyncSession, money: BookingMoney) -> None:
        await self._close(session, money, refund=0, reason="settled")

    async def on_resolved(self, session: AsyncSession, money: BookingMoney, refund: int) -> None:
        await self._close(session, money, refund=refund, reason="dispute resolved")

    async def _close(self, session: AsyncSession, money: BookingMoney, *, refund: int, reason: str) -> None:
        """Credit note for ``refund``, settle the kept rest. Runs once per booking (journal keys).

        With a payment schedule only what was invoiced (I) needs a credit note: the part never invoiced
        (A - I) is refunded by not invoicing it, so the credit note covers ``refund - (A - I)`` and attaches
        to the latest invoice; every invoice of the booking is closed (or void). Unscheduled: I = A."""
        if not 0 <= refund <= money.amount:
            raise Invalid(f"refund must be between 0 and {money.amount}.")
        repo = PaymentsRepository(session)
        invoices = await repo.invoices_for_booking(money.booking_id, for_update=True)
        if not invoices:  # booked before invoices existed (or by another gateway), or nothing invoiced yet
            return
        invoice = invoices[-1]
        if invoice.status in ("void", "closed"):
            return
        invoiced = sum(i.total for i in invoices)
        credited = refund - (money.amount - invoiced)
        if credited < 0:
            raise Invalid(f"refund must be at least the {money.amount - invoiced} never invoiced.")
        kept = money.amount - refund
        if credited:
            outstanding = await ledger.booking_balance(session, money.booking_id, ledger.BUYER_RECEIVABLE)
            # The voucher's share follows the kept amount (the redemption in the voucher room uses the same rule).
            issued = ledger.subsidy_share(money.subsidy, money.amount, invoiced)
            returned = issued - ledger.subsidy_share(money.subsidy, money.amount, kept)
            note_no = await repo.next_number(f"{self.config.credit_note_prefix}-{utcnow().year}")
            note = await repo.add(
                CreditNote(
                    number=f"{self.config.credit_note_prefix}-{utcnow().year}-{note_no:06d}",
                    invoice_id=invoice.id,
                    amount=credited,
                    reason=reason,
                )
            )
            await ledger.post(
                session,
                key=f"booking:{money.booking_id}:credit",
                kind="credit_note",
                lines=ledger.credit(
                    money.buyer_org_id,
                    money.currency,
                    credited,
                    receivable_outstanding=outstanding,
                    subsidy_returned=returned,
                    payer=money.subsidy_payer_org_id,
                ),
                booking_id=money.booking_id,
                invoice_id=invoice.id,
                memo=f"Credit note {note.number} ({reason})",
            )
        await ledger.post(
            session,
            key=f"booking:{money.booking_id}:settle",
            kind="settlement",
            lines=ledger.settle(money.supplier_org_id, money.currency, kept, rate_bp=money.commission_rate_bp),
            booking_id=money.booking_id,
            invoice_id=invoice.id,
            memo=f"Settlement ({reason}), commission {money.commission_rate_bp} bp",
        )
        received = 0
        for each in invoices:
            received += sum(t.amount for t in await repo.transfers(each.id) if t.direction == "in")
        for each in invoices:
            each.status = "void" if kept == 0 and received == 0 else "closed"
            each.updated_at = utcnow()
        await session.flush()

    # -- admin operations -----------------------------------------------------------------------------

    async def record_received(
        self, session: AsyncSession, invoice_id: uuid.UUID, *, amount: int, reference: str, actor: uuid.UUID | None
    ) -> BankTransfer:
        invoice = await _invoice(session, invoice_id)
        outstanding = await ledger.booking_balance(session, invoice.booking_id, ledger.BUYER_RECEIVABLE)
        if amount > outstanding:
            raise Overpayment(
                f"The invoice has {outstanding} outstanding; {amount} was recorded.", extra={"outstanding": outstanding}
            )
        transfer = await _record_transfer(
            session,
            invoice,
            direction="in",
            amount=amount,
            reference=reference,
            actor=actor,
            kind="payment_received",
            lines=ledger.received(invoice.buyer_org_id, invoice.currency, amount),
            memo=f"Bank transfer received, ref {reference}",
        )
        if amount == outstanding:  # nothing owed on the booking any more: each of its open invoices is paid
            repo = PaymentsRepository(session)
            for each in await repo.invoices_for_booking(invoice.booking_id) if invoice.instalment else [invoice]:
                if each.status == "open":
                    each.status, each.updated_at = "paid", utcnow()
        await session.flush()
        return transfer

    async def record_payout(
        self, session: AsyncSession, invoice_id: uuid.UUID, *, amount: int, reference: str, actor: uuid.UUID | None
    ) -> BankTransfer:
        invoice = await _invoice(session, invoice_id)
        balances = await ledger.booking_balances(session, invoice.booking_id)
        owed = -balances.get(ledger.SUPPLIER_PAYABLE, 0)
        # Cash of this booking still in the bank, less the platform's commission and refunds owed.
        available = (
            balances.get(ledger.CLEARING_BANK, 0)
            + balances.get(ledger.COMMISSION_REVENUE, 0)
            + balances.get(ledger.REFUNDS_PAYABLE, 0)
        )
        limit = min(owed, available)
        if amount > limit:
            raise Overpayment(
                f"At most {max(limit, 0)} can be paid out now (owed to the supplier: {owed}; received and not"
                f" otherwise owed: {max(available, 0)}).",
                extra={"payable": owed, "available": max(available, 0)},
            )
        return await _record_transfer(
            session,
            invoice,
            direction="payout",
            amount=amount,
            reference=reference,
            actor=actor,
            kind="payout_sent",
            lines=ledger.payout_paid(invoice.supplier_org_id, invoice.currency, amount, clearing=ledger.CLEARING_BANK),
            memo=f"Payout sent, ref {reference}",
        )

    async def record_refund(
        self, session: AsyncSession, invoice_id: uuid.UUID, *, amount: int, reference: str, actor: uuid.UUID | None
    ) -> BankTransfer:
        invoice = await _invoice(session, invoice_id)
        owed = -await ledger.booking_balance(session, invoice.booking_id, ledger.REFUNDS_PAYABLE)
        if amount > owed:
            raise Overpayment(f"Only {owed} is owed back to the buyer.", extra={"refund_due": owed})
        return await _record_transfer(
            session,
            invoice,
            direction="refund",
            amount=amount,
            reference=reference,
            actor=actor,
            kind="refund_sent",
            lines=ledger.refund_paid(invoice.buyer_org_id, invoice.currency, amount, clearing=ledger.CLEARING_BANK),
            memo=f"Refund sent, ref {reference}",
        )


async def _invoice(session: AsyncSession, invoice_id: uuid.UUID) -> Invoice:
    invoice = await PaymentsRepository(session).invoice(invoice_id, for_update=True)
    if invoice is None:
        raise NotFound("Invoice not found.")
    return invoice


async def _record_transfer(
    session: AsyncSession,
    invoice: Invoice,
    *,
    direction: str,
    amount: int,
    reference: str,
    actor: uuid.UUID | None,
    kind: str,
    lines: list[ledger.Line],
    memo: str,
) -> BankTransfer:
    """Record a bank transfer of the invoice (once per direction and reference) and post its journal."""
    if amount <= 0:
        raise Invalid("amount must be positive.")
    reference = reference.strip()
    if not reference:
        raise Invalid("reference: give the bank reference.")
    repo = PaymentsRepository(session)
    if await repo.transfer_exists(invoice.id, direction, reference):
        raise PaymentConflict(f"A {direction} transfer with reference {reference!r} is already recorded.")
    transfer: BankTransfer = await repo.add(
        BankTransfer(invoice_id=invoice.id, direction=direction, amount=amount, reference=reference, recorded_by=actor)
    )
    await ledger.post(
        session,
        key=f"invoice:{invoice.id}:{direction}:{transfer.id}",
        kind=kind,
        lines=lines,
        booking_id=invoice.booking_id,
        invoice_id=invoice.id,
        memo=memo,
    )
    return transfer


# -- reads -------------------------------------------------------------------------------------------


def invoice_status(invoice: Invoice, balances: dict[str, int]) -> str:
    receivable = balances.get(ledger.BUYER_RECEIVABLE, 0)
    if invoice.status == "void":
        return "void"
    if invoice.status == "paid" and invoice.instalment:  # an instalment paid while a later one is still owed
        return "paid"
    if receivable > 0:
        received = balances.get(ledger.CLEARING_BANK, 0) > 0
        overdue = invoice.due_date < datetime.now(UTC).date()
        return "overdue" if overdue else ("partially_paid" if received else "awaiting_payment")
    if -balances.get(ledger.REFUNDS_PAYABLE, 0) > 0:
        return "refund_due"
    if invoice.status == "closed":
        return "payout_due" if -balances.get(ledger.SUPPLIER_PAYABLE, 0) > 0 else "settled"
    return "paid"


async def view(session: AsyncSession, booking_id: uuid.UUID, *, amount: int, currency: str) -> PaymentView:
    invoice = await PaymentsRepository(session).invoice_for_booking(booking_id)
    if invoice is None:
        return PaymentView(method="invoice", status="no_invoice", amount_due=0, currency=currency)
    balances = await ledger.booking_balances(session, booking_id)
    return PaymentView(
        method="invoice",
        status=invoice_status(invoice, balances),
        amount_due=max(balances.get(ledger.BUYER_RECEIVABLE, 0), 0),
        currency=invoice.currency,
        invoice_id=invoice.id,
    )


async def invoice_document(session: AsyncSession, invoice: Invoice) -> dict[str, Any]:
    repo = PaymentsRepository(session)
    balances = await ledger.booking_balances(session, invoice.booking_id)
    transfers = await repo.transfers(invoice.id)
    notes = await repo.credit_notes(invoice.id)
    return {
        "id": invoice.id,
        "number": invoice.number,
        "booking_id": invoice.booking_id,
        "status": invoice_status(invoice, balances),
        "document_status": invoice.status,
        "currency": invoice.currency,
        "issued_at": invoice.issued_at,
        "due_date": invoice.due_date,
        "overdue": invoice.overdue_flagged_at is not None,
        "buyer": {"id": invoice.buyer_org_id, **_party(await repo.org(invoice.buyer_org_id))},
        "supplier": {"id": invoice.supplier_org_id, **_party(await repo.org(invoice.supplier_org_id))},
        "line_items": invoice.line_items,
        "subtotal": invoice.subtotal,
        "tax_rate_bp": invoice.tax_rate_bp,
        "tax": invoice.tax,
        "total": invoice.total,
        "amount_due": max(balances.get(ledger.BUYER_RECEIVABLE, 0), 0),
        **await _voucher_split(repo, invoice, credited=sum(n.amount for n in notes)),
        "amount_received": sum(t.amount for t in transfers if t.direction == "in"),
        "credit_notes": [
            {"number": n.number, "amount": n.amount, "reason": n.reason, "created_at": n.created_at} for n in notes
        ],
        "transfers": [
            {"direction": t.direction, "amount": t.amount, "reference": t.reference, "created_at": t.created_at}
            for t in transfers
        ],
    }


async def _voucher_split(repo: PaymentsRepository, invoice: Invoice, *, credited: int) -> dict[str, Any]:
    """An innovation voucher paid in advance (issue #18): its share of what is kept now, the buyer's share and
    the programme that pays it. Zero shares and no payer without one."""
    issued = await repo.voucher_issued(invoice.booking_id, instalment=invoice.instalment)
    credited = min(credited, invoice.total)  # a schedule's credit note may exceed its (latest) invoice
    if issued is None:
        return {"voucher_share": 0, "buyer_share": invoice.total - credited, "voucher_payer": None}
    share, payer = issued
    current = ledger.subsidy_share(share, invoice.total, invoice.total - credited)
    org = await repo.org(payer)
    return {
        "voucher_share": current,
        "buyer_share": invoice.total - credited - current,
        "voucher_payer": {"id": payer, "name": org.get("legal_name") or org.get("name")},
    }


def _party(org: dict[str, Any]) -> dict[str, Any]:
    return {"name": org.get("name"), "legal_name": org.get("legal_name"), "uscc": org.get("uscc")}


async def flag_overdue(session: AsyncSession, today: date | None = None) -> list[uuid.UUID]:
    """Flag open invoices past their due date that still have money outstanding."""
    today = today or datetime.now(UTC).date()
    flagged = []
    for invoice in await PaymentsRepository(session).overdue_invoices(today):
        if await ledger.booking_balance(session, invoice.booking_id, ledger.BUYER_RECEIVABLE) > 0:
            invoice.overdue_flagged_at = utcnow()
            flagged.append(invoice.id)
    await session.flush()
    return flagged
