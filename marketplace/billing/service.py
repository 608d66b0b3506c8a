"""Billing's side effects, so the endpoints only parse, authorise and render: an admin's bank-transfer record
or commission change (each on the audit log), a card payment's refresh, and a received Stripe event (stored
once, its processing enqueued in the same transaction)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.bookings import service as bookings
from marketplace.bookings.models import Booking
from marketplace.core import audit
from marketplace.core.errors import NotFound
from marketplace.core.jobs import enqueue
from marketplace.core.principal import Principal
from marketplace.orgs.repository import OrgRepository
from payments import commission, ledger, webhooks
from payments.invoices import InvoiceGateway
from payments.models import BankTransfer
from payments.repository import PaymentsRepository
from payments.stripe_gateway import StripeGateway

Direction = Literal["in", "payout", "refund"]


async def record_bank_transfer(
    *,
    session: AsyncSession,
    admin: Principal,
    gateway: InvoiceGateway,
    invoice_id: uuid.UUID,
    direction: Direction,
    amount: int,
    reference: str,
) -> BankTransfer:
    """Record money that moved by bank transfer for an invoice (received, paid out, refunded), audited with
    the booking's balances before."""
    invoice = await PaymentsRepository(session).invoice(invoice_id)
    if invoice is None:
        raise NotFound("Invoice not found.")
    op = {"in": gateway.record_received, "payout": gateway.record_payout, "refund": gateway.record_refund}[direction]
    before = await ledger.booking_balances(session, invoice.booking_id)
    transfer = await op(session, invoice_id, amount=amount, reference=reference, actor=admin.user_id)
    await audit.record(
        session,
        actor_user_id=admin.user_id,
        actor_api_key_id=admin.api_key_id,
        action=f"invoice.{'payment' if direction == 'in' else direction}",
        target_type="invoice",
        target_id=invoice_id,
        before={"balances": before},
        after={"amount": amount, "reference": reference, "transfer_id": str(transfer.id)},
    )
    return transfer


async def set_commission(
    *,
    session: AsyncSession,
    admin: Principal,
    org_id: uuid.UUID,
    rate_bp: int | None,
    reason: str | None,
    default_rate_bp: int,
) -> int:
    """Set (or, with None, remove) the organisation's commission override, audited; returns the rate its
    new bookings now get."""
    if await OrgRepository(session).get(org_id) is None:
        raise NotFound("Organisation not found.")
    before = await commission.set_override(session, org_id, rate_bp)
    await audit.record(
        session,
        actor_user_id=admin.user_id,
        actor_api_key_id=admin.api_key_id,
        action="org.commission",
        target_type="organisation",
        target_id=org_id,
        before={"rate_bp": before},
        after={"rate_bp": rate_bp},
        reason=reason,
    )
    return await commission.rate_for(session, org_id, default_rate_bp)


async def refresh_card_payment(
    *, session: AsyncSession, booking: Booking, gateway: StripeGateway, deps: bookings.Deps
) -> None:
    """Re-check the booking's PaymentIntent; a hold in place performs the ``pay`` action (held → requested)."""
    payment = await PaymentsRepository(session).card_payment(booking.id)
    if payment is None:
        return
    _, intent_status = await gateway.sync_intent(session, payment.payment_intent_id)
    if intent_status == "requires_capture":
        await bookings.system_act(
            session=session, booking=booking, action="pay", deps=deps, reason="card hold in place"
        )


async def receive_stripe_event(*, session: AsyncSession, event: dict[str, Any]) -> bool:
    """Store a verified Stripe event once and enqueue its processing; False for a duplicate."""
    new = await webhooks.store(session, event)
    if new:
        await enqueue(session, "payments.process_stripe_event", str(event["id"]))
    return new
