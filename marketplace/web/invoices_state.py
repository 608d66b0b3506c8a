"""What the web shows about a booking's money: the payment state of its invoice or card payment in words,
the amounts behind it, and what cancelling now would cost. Shared by the invoice pages, the booking pages
and the CSV exports."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.bookings.models import Booking
from marketplace.web import i18n, labels
from marketplace.web.core import N_
from payments import invoices, ledger
from payments.models import Invoice
from payments.port import PaymentView
from payments.repository import PaymentsRepository

logger = logging.getLogger(__name__)

# The invoice document's own status (payments.models.Invoice.status).
INVOICE_STATUS = {
    "open": N_("unpaid"),
    "paid": N_("paid"),
    "void": N_("void"),
    "closed": N_("invoice closed"),
}

# Where the money of a booking stands (payments.invoices.invoice_status and the card payment's status).
PAYMENT_STATE = {
    "no_invoice": N_("no invoice yet"),
    "awaiting_payment": N_("awaiting payment"),
    "partially_paid": N_("partially paid"),
    "overdue": N_("overdue"),
    "paid": N_("paid"),
    "refund_due": N_("refund due to the buyer"),
    "payout_due": N_("paid, payout to the factory pending"),
    "settled": N_("settled"),
    "void": N_("void (nothing to pay)"),
    "no_payment": N_("no card payment yet"),
    "requires_payment_method": N_("awaiting card details"),
    "requires_confirmation": N_("waiting for card confirmation"),
    "requires_action": N_("waiting for card confirmation"),
    "processing": N_("card payment processing"),
    "requires_capture": N_("card hold in place"),
    "succeeded": N_("paid by card"),
    "canceled": N_("card hold released"),
    "disputed": N_("card payment disputed"),
}

# Line item units on an invoice (payments.invoices.line_items).
UNITS = {"hour": N_("hours"), "sample": N_("samples"), "job": N_("job"), "instalment": N_("instalment")}


def labeller(locale: str, table: dict[str, str]) -> Callable[[str], str]:
    """A function turning a code of ``table`` into words in ``locale``. An unknown code is never shown: it reads
    "Other" (and is logged, so it gets a name); an empty one is a dash."""
    gettext = i18n.translations(locale).gettext

    def label(code: str) -> str:
        if code in table:
            return gettext(table[code])
        if code is None or code == "":
            return "–"
        logger.warning("no name for code %r; showing 'Other'", code)
        return gettext(labels.OTHER)

    return label


def payment_state(invoice: Invoice, balances: dict[str, int]) -> str:
    """The payment state code of an invoice given its booking's ledger balances."""
    return invoices.invoice_status(invoice, balances)


@dataclass(frozen=True)
class PaymentSummary:
    """The money of one booking as its pages show it (amounts in minor units of ``currency``)."""

    state: str
    currency: str
    total: int
    received: int
    due: int
    credited: int
    refund_owed: int
    invoice_id: uuid.UUID | None
    invoice_number: str | None


async def payment_summary(session: AsyncSession, booking: Booking, view: PaymentView) -> PaymentSummary:
    """The booking's payment state with the amounts behind it: for the invoice path what was received, is
    still due, was credited (credit notes) and is owed back; for a card, what the hold covers."""
    invoice = await PaymentsRepository(session).invoice_for_booking(booking.id)
    if invoice is None:
        captured = booking.amount if view.status in ("succeeded", "requires_capture") else 0
        return PaymentSummary(
            state=view.status,
            currency=view.currency,
            total=booking.amount,
            received=captured,
            due=view.amount_due,
            credited=booking.refund_amount or 0,
            refund_owed=0,
            invoice_id=None,
            invoice_number=None,
        )
    repo = PaymentsRepository(session)
    balances = await ledger.booking_balances(session, booking.id)
    # A booking paid in instalments (deposit, milestones) has one invoice each: the money of all of them.
    issued = await repo.invoices_for_booking(booking.id) if booking.instalments else [invoice]
    received = credited = 0
    for each in issued:
        received += sum(t.amount for t in await repo.transfers(each.id) if t.direction == "in")
        credited += sum(n.amount for n in await repo.credit_notes(each.id))
    return PaymentSummary(
        state=payment_state(invoice, balances),
        currency=invoice.currency,
        total=booking.amount if booking.instalments else invoice.total,
        received=received,
        due=max(balances.get(ledger.BUYER_RECEIVABLE, 0), 0),
        credited=credited,
        refund_owed=max(-balances.get(ledger.REFUNDS_PAYABLE, 0), 0),
        invoice_id=invoice.id,
        invoice_number=invoice.number,
    )


@dataclass(frozen=True)
class CancelTerms:
    """What cancelling now means for the buyer: ``free`` when nothing is kept; otherwise ``fee`` is what the
    factory keeps; ``refund`` is what comes back of money already paid."""

    free: bool
    paid_nothing: bool
    fee: int
    refund: int


def cancel_terms(booking: Booking, summary: PaymentSummary, refund_now: int | None) -> CancelTerms | None:
    """None when the booking cannot be cancelled now. A held booking has not been charged: cancelling it is
    free. Otherwise the cancellation policy keeps ``amount - refund_now``; of money already received, the
    part above that fee comes back."""
    if refund_now is None:
        return None
    if booking.status == "held":
        return CancelTerms(free=True, paid_nothing=summary.received == 0, fee=0, refund=0)
    fee = max(booking.amount - refund_now, 0)
    paid = summary.received
    return CancelTerms(free=fee == 0, paid_nothing=paid == 0, fee=fee, refund=max(paid - fee, 0))


# Confirmations shown on the buyer's booking page after an action (?notice=...; only these codes are shown).
BOOKING_NOTICES = {"reviewed": N_("Thank you: your review has been published.")}
