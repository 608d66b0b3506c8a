"""Stripe Connect gateway: separate charges and transfers, card holds captured on acceptance.

* Suppliers onboard with Express accounts and account links; ``account.updated`` copies the
  ``charges_enabled`` / ``payouts_enabled`` flags. Card bookings need both.
* booked: a PaymentIntent with ``capture_method=manual``, created by ``before_booked`` before the booking
  row is written or the lab-day lock taken (an HTTP call never runs while they are held), stored by
  ``on_booked``, and cancelled by ``booking_abandoned`` when the booking then fails (a refused slot, no
  capacity left). Its idempotency key is the booking's id, drawn before the insert. If the commit itself
  fails afterwards, the intent is left unconfirmed (``requires_payment_method``): it never held money, and
  its client secret was never shown to anyone. The buyer confirms it with the client secret
  (Stripe.js). When the hold is in place (``requires_capture``, seen by re-fetching the intent after a
  webhook or a refresh call) the shell performs the ``pay`` action: held → requested.
* accepted: capture (the whole amount: a deposit schedule is not used on cards). Declined / expired: cancel
  the PaymentIntent (the hold is released). Cancelled before capture: capture only the kept part (or cancel);
  after capture: refund per policy.
* settled / resolved: a Transfer of the kept amount minus commission to the supplier's account with
  ``source_transaction`` (the charge) and ``transfer_group`` ``booking:{id}``; an excess is reversed.
* disputes: the booking's payout is held until the dispute closes; a lost dispute is a dispute loss.

Every call carries an idempotency key ``booking:{id}:<step>`` and every journal the same key, so retries and
replays move money once. The SDK is used asynchronously (``*_async``) over ``stripe.HTTPXClient``; a fresh HTTP
client per operation, because loop binding applies to httpx pools too (Celery tasks run each in their own loop).
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy.ext.asyncio import AsyncSession
from stripe.params import (
    AccountCreateParams,
    AccountLinkCreateParams,
    BalanceTransactionListParams,
    PaymentIntentCaptureParams,
    PaymentIntentCreateParams,
    RefundCreateParams,
    TransferCreateParams,
    TransferReversalCreateParams,
)

from payments import ledger, stripe_reconcile
from payments.errors import CardDeclined, GatewayError, Invalid, NotAuthorised, PaymentConflict, SupplierNotOnboarded
from payments.ledger import CLEARING_STRIPE
from payments.models import CardPayment, StripeAccount, utcnow
from payments.port import BookingMoney, PaymentView
from payments.repository import PaymentsRepository

HOLDABLE = ("requires_payment_method", "requires_confirmation", "requires_action", "requires_capture")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StripeConfig:
    secret_key: str
    api_base: str | None = None
    max_network_retries: int = 2
    public_url: str = "http://127.0.0.1:8000"
    country: str = "CN"


def idempotency_key(booking_id: uuid.UUID, step: str) -> str:
    return f"booking:{booking_id}:{step}"


def _opts(key: str) -> stripe.RequestOptions:
    return {"idempotency_key": key}


def _prepared_key(booking_id: uuid.UUID) -> tuple[str, uuid.UUID]:
    """Where ``before_booked`` leaves the created intent for ``on_booked`` (the request's ``session.info``)."""
    return ("stripe_hold", booking_id)


class StripeGateway:
    method = "stripe"

    def __init__(self, config: StripeConfig, http_client: Callable[[], stripe.HTTPClient] | None = None) -> None:
        self.config = config
        self._http_client = http_client or (lambda: stripe.HTTPXClient())

    @asynccontextmanager
    async def client(self) -> AsyncIterator[stripe.StripeClient]:
        http = self._http_client()
        try:
            yield stripe.StripeClient(
                self.config.secret_key,
                http_client=http,
                base_addresses={"api": self.config.api_base} if self.config.api_base else None,
                max_network_retries=self.config.max_network_retries,
            )
        finally:
            await http.close_async()

    # -- onboarding -----------------------------------------------------------------------------------

    async def onboarding_link(self, session: AsyncSession, org_id: uuid.UUID, email: str | None = None) -> str:
        repo = PaymentsRepository(session)
        account = await repo.stripe_account(org_id)
        async with self.client() as client:
            try:
                if account is None:
                    params: AccountCreateParams = {
                        "type": "express",
                        "country": self.config.country,
                        "capabilities": {"transfers": {"requested": True}, "card_payments": {"requested": True}},
                        "metadata": {"org_id": str(org_id)},
                    }
                    if email:
                        params["email"] = email
                    created = await client.v1.accounts.create_async(params, _opts(f"org:{org_id}:stripe-account"))
                    account = StripeAccount(org_id=org_id, account_id=created.id)
                    await repo.add(account)
                base = self.config.public_url.rstrip("/")
                link_params: AccountLinkCreateParams = {
                    "account": account.account_id,
                    "type": "account_onboarding",
                    "refresh_url": f"{base}/api/v1/orgs/{org_id}/payments/stripe-account/refresh",
                    "return_url": f"{base}/api/v1/orgs/{org_id}/payments/stripe-account/return",
                }
                link = await client.v1.account_links.create_async(link_params)
            except stripe.StripeError as exc:
                raise GatewayError(f"Stripe refused the onboarding request: {exc.user_message or exc}") from None
        return str(link.url)

    async def sync_account(self, session: AsyncSession, account_id: str) -> StripeAccount | None:
        """Re-fetch an account (never trust the event's copy) and store its flags."""
        repo = PaymentsRepository(session)
        account = await repo.stripe_account_by_id(account_id)
        if account is None:
            return None
        async with self.client() as client:
            fresh = await client.v1.accounts.retrieve_async(account_id)
        account.charges_enabled = bool(fresh.charges_enabled)
        account.payouts_enabled = bool(fresh.payouts_enabled)
        account.details_submitted = bool(fresh.details_submitted)
        account.updated_at = utcnow()
        await session.flush()
        return account

    # -- the port -------------------------------------------------------------------------------------

    async def before_booked(self, session: AsyncSession, money: BookingMoney) -> None:
        """Create the hold's PaymentIntent (HTTP) before the booking is written or locked; kept for on_booked."""
        account = await self._onboarded_account(session, money.supplier_org_id)
        intent = await self._create_hold(money)
        session.info[_prepared_key(money.booking_id)] = (intent, account.account_id)

    async def booking_abandoned(self, session: AsyncSession, money: BookingMoney) -> None:
        """Cancel the intent ``before_booked`` created for a booking that was not placed (best effort: an
        unconfirmed intent holds no money, so a failure here is only logged)."""
        prepared = session.info.pop(_prepared_key(money.booking_id), None)
        if prepared is None:
            return
        intent, _account = prepared
        try:
            async with self.client() as client:
                await client.v1.payment_intents.cancel_async(
                    intent.id, options=_opts(idempotency_key(money.booking_id, "cancel"))
                )
        except stripe.StripeError as exc:
            logger.warning("could not cancel the abandoned PaymentIntent %s: %s", intent.id, exc)

    async def on_booked(self, session: AsyncSession, money: BookingMoney) -> None:
        """Store the card hold. Normally ``before_booked`` created it; a caller that skipped that step gets
        it created here."""
        repo = PaymentsRepository(session)
        if await repo.card_payment(money.booking_id) is not None:
            return
        prepared = session.info.pop(_prepared_key(money.booking_id), None)
        if prepared is None:
            account = await self._onboarded_account(session, money.supplier_org_id)
            prepared = (await self._create_hold(money), account.account_id)
        intent, destination = prepared
        await repo.add(
            CardPayment(
                booking_id=money.booking_id,
                payment_intent_id=intent.id,
                client_secret=intent.client_secret,
                status=intent.status,
                amount=money.amount,
                currency=money.currency,
                buyer_org_id=money.buyer_org_id,
                supplier_org_id=money.supplier_org_id,
                destination_account=destination,
            )
        )

    async def _onboarded_account(self, session: AsyncSession, org_id: uuid.UUID) -> StripeAccount:
        account = await PaymentsRepository(session).stripe_account(org_id)
        if account is None or not (account.charges_enabled and account.payouts_enabled):
            raise SupplierNotOnboarded()
        return account

    async def _create_hold(self, money: BookingMoney) -> stripe.PaymentIntent:
        params: PaymentIntentCreateParams = {
            "amount": money.amount,
            "currency": money.currency.lower(),
            "capture_method": "manual",
            "metadata": {
                "booking_id": str(money.booking_id),
                "buyer_org_id": str(money.buyer_org_id),
                "supplier_org_id": str(money.supplier_org_id),
            },
        }
        async with self.client() as client:
            try:
                return await client.v1.payment_intents.create_async(
                    params, _opts(idempotency_key(money.booking_id, "hold"))
                )
            except stripe.StripeError as exc:
                raise GatewayError(f"Stripe refused the payment: {exc.user_message or exc}") from None

    async def on_paid(self, session: AsyncSession, money: BookingMoney) -> None:
        """A card booking becomes a request only with the hold in place (re-fetched, never assumed)."""
        payment = await self._payment(session, money.booking_id)
        if payment.captured:
            return
        intent = await self._intent(payment.payment_intent_id)
        payment.status = intent.status
        await session.flush()
        if intent.status != "requires_capture":
            raise NotAuthorised(f"The card payment is {intent.status}, not authorised yet.")

    async def on_accepted(self, session: AsyncSession, money: BookingMoney) -> None:
        payment = await self._payment(session, money.booking_id)
        if payment.captured:
            return
        await self._capture(session, payment, money.amount)

    async def on_instalment_due(self, session: AsyncSession, money: BookingMoney, *, n: int) -> None:
        return None

    async def on_released(self, session: AsyncSession, money: BookingMoney) -> None:
        payment = await PaymentsRepository(session).card_payment(money.booking_id, for_update=True)
        if payment is None:
            return
        if payment.captured:  # cannot happen through the booking rules; refund everything then
            await self._close(session, money, payment, refund=payment.captured)
            return
        await self._cancel_intent(payment)
        await session.flush()

    async def on_cancelled(self, session: AsyncSession, money: BookingMoney, refund: int) -> None:
        payment = await self._payment(session, money.booking_id)
        if not payment.captured:
            kept = money.amount - refund
            intent = await self._intent(payment.payment_intent_id)
            if kept > 0 and intent.status == "requires_capture":
                await self._capture(session, payment, kept)  # capture the cancellation fee, release the rest
            else:
                await self._cancel_intent(payment)
                await session.flush()
                return
            refund = 0
        await self._close(session, money, payment, refund=refund)

    async def on_settled(self, session: AsyncSession, money: BookingMoney) -> None:
        await self._close(session, money, await self._payment(session, money.booking_id), refund=0)

    async def on_resolved(self, session: AsyncSession, money: BookingMoney, refund: int) -> None:
        await self._close(session, money, await self._payment(session, money.booking_id), refund=refund)

    # -- steps ----------------------------------------------------------------------------------------

    async def _payment(self, session: AsyncSession, booking_id: uuid.UUID) -> CardPayment:
        payment = await PaymentsRepository(session).card_payment(booking_id, for_update=True)
        if payment is None:
            raise NotAuthorised("This booking has no card payment.")
        return payment

    async def _intent(self, payment_intent_id: str) -> stripe.PaymentIntent:
        async with self.client() as client:
            return await client.v1.payment_intents.retrieve_async(payment_intent_id)

    async def _capture(self, session: AsyncSession, payment: CardPayment, amount: int) -> None:
        intent = await self._intent(payment.payment_intent_id)
        if intent.status != "requires_capture":
            payment.status = intent.status
            raise NotAuthorised(f"The card payment is {intent.status}, not authorised.")
        params: PaymentIntentCaptureParams = {}
        if amount != intent.amount:
            params["amount_to_capture"] = amount
        async with self.client() as client:
            try:
                intent = await client.v1.payment_intents.capture_async(
                    payment.payment_intent_id, params, _opts(idempotency_key(payment.booking_id, "capture"))
                )
            except stripe.CardError as exc:
                raise CardDeclined(str(exc.user_message or exc)) from None
            except stripe.StripeError as exc:
                raise GatewayError(f"Stripe refused the capture: {exc.user_message or exc}") from None
        charge = intent.latest_charge
        payment.charge_id = charge if isinstance(charge, str) or charge is None else charge.id
        payment.captured = amount
        payment.status = intent.status
        payment.updated_at = utcnow()
        await ledger.post(
            session,
            key=idempotency_key(payment.booking_id, "capture"),
            kind="card_captured",
            lines=ledger.captured(payment.currency, amount),
            booking_id=payment.booking_id,
            memo=f"Captured {payment.payment_intent_id}",
        )
        await session.flush()

    async def _cancel_intent(self, payment: CardPayment) -> None:
        intent = await self._intent(payment.payment_intent_id)
        if intent.status in HOLDABLE:
            async with self.client() as client:
                intent = await client.v1.payment_intents.cancel_async(
                    payment.payment_intent_id, options=_opts(idempotency_key(payment.booking_id, "cancel"))
                )
        payment.status = intent.status
        payment.updated_at = utcnow()

    async def _close(self, session: AsyncSession, money: BookingMoney, payment: CardPayment, *, refund: int) -> None:
        """Refund ``refund`` of the captured amount, settle the rest, pay the supplier out."""
        if not 0 <= refund <= payment.captured:
            raise Invalid(f"refund must be between 0 and the captured {payment.captured}.")
        if refund and not await ledger.has_journal(session, idempotency_key(payment.booking_id, "refund")):
            params: RefundCreateParams = {
                "payment_intent": payment.payment_intent_id,
                "amount": refund,
                "metadata": {"booking_id": str(payment.booking_id)},
            }
            async with self.client() as client:
                try:
                    await client.v1.refunds.create_async(params, _opts(idempotency_key(payment.booking_id, "refund")))
                except stripe.StripeError as exc:
                    raise GatewayError(f"Stripe refused the refund: {exc.user_message or exc}") from None
            await ledger.post(
                session,
                key=idempotency_key(payment.booking_id, "credit"),
                kind="credit_note",
                lines=ledger.credit(payment.buyer_org_id, payment.currency, refund, receivable_outstanding=0),
                booking_id=payment.booking_id,
                memo="Card refund owed",
            )
            await ledger.post(
                session,
                key=idempotency_key(payment.booking_id, "refund"),
                kind="refund_sent",
                lines=ledger.refund_paid(payment.buyer_org_id, payment.currency, refund, clearing=CLEARING_STRIPE),
                booking_id=payment.booking_id,
                memo=f"Refunded to card ({payment.payment_intent_id})",
            )
            payment.refunded = refund
        kept = payment.captured - refund
        await ledger.post(
            session,
            key=idempotency_key(payment.booking_id, "settle"),
            kind="settlement",
            lines=ledger.settle(payment.supplier_org_id, payment.currency, kept, rate_bp=money.commission_rate_bp),
            booking_id=payment.booking_id,
            memo=f"Settlement, commission {money.commission_rate_bp} bp",
        )
        payment.updated_at = utcnow()
        await session.flush()
        await self.pay_out(session, payment)

    async def pay_out(self, session: AsyncSession, payment: CardPayment) -> int:
        """Transfer what the supplier is owed for this booking (or reverse an excess). Held while disputed."""
        if payment.payout_held:
            return 0
        owed = -await ledger.booking_balance(session, payment.booking_id, ledger.SUPPLIER_PAYABLE)
        if owed > 0 and payment.transfer_id is None:
            if payment.destination_account is None or payment.charge_id is None:
                raise PaymentConflict("The payment has no charge or destination account to pay out from.")
            params: TransferCreateParams = {
                "amount": owed,
                "currency": payment.currency.lower(),
                "destination": payment.destination_account,
                "source_transaction": payment.charge_id,
                "transfer_group": f"booking:{payment.booking_id}",
                "metadata": {"booking_id": str(payment.booking_id)},
            }
            async with self.client() as client:
                try:
                    transfer = await client.v1.transfers.create_async(
                        params, _opts(idempotency_key(payment.booking_id, "transfer"))
                    )
                except stripe.StripeError as exc:
                    raise GatewayError(f"Stripe refused the transfer: {exc.user_message or exc}") from None
            payment.transfer_id, payment.transferred = transfer.id, owed
            await ledger.post(
                session,
                key=idempotency_key(payment.booking_id, "transfer"),
                kind="payout_sent",
                lines=ledger.payout_paid(payment.supplier_org_id, payment.currency, owed, clearing=CLEARING_STRIPE),
                booking_id=payment.booking_id,
                memo=f"Transfer {transfer.id} to {payment.destination_account}",
            )
        elif owed < 0 and payment.transfer_id is not None:
            excess = -owed
            reversal: TransferReversalCreateParams = {
                "amount": excess,
                "metadata": {"booking_id": str(payment.booking_id)},
            }
            async with self.client() as client:
                await client.v1.transfers.reversals.create_async(
                    payment.transfer_id, reversal, _opts(idempotency_key(payment.booking_id, "reversal"))
                )
            payment.transferred -= excess
            await ledger.post(
                session,
                key=idempotency_key(payment.booking_id, "reversal"),
                kind="payout_reversed",
                lines=ledger.payout_paid(payment.supplier_org_id, payment.currency, -excess, clearing=CLEARING_STRIPE),
                booking_id=payment.booking_id,
                memo=f"Reversal of {payment.transfer_id}",
            )
        await session.flush()
        return owed

    # -- webhooks' helpers ----------------------------------------------------------------------------

    async def sync_intent(self, session: AsyncSession, payment_intent_id: str) -> tuple[CardPayment | None, str]:
        """Re-fetch the intent and store its status. Returns the payment and the intent's status."""
        payment = await PaymentsRepository(session).card_payment_by_intent(payment_intent_id, for_update=True)
        if payment is None:
            return None, "unknown"
        intent = await self._intent(payment_intent_id)
        payment.status = intent.status
        payment.updated_at = utcnow()
        await session.flush()
        return payment, intent.status

    async def sync_dispute(self, session: AsyncSession, dispute_id: str) -> tuple[CardPayment | None, str]:
        """Re-fetch a dispute; hold the payout while it is open; book the loss when it is lost, and
        release the payout when it is won. Returns the payment and the dispute's status."""
        async with self.client() as client:
            dispute = await client.v1.disputes.retrieve_async(dispute_id)
        repo = PaymentsRepository(session)
        charge = dispute.charge if isinstance(dispute.charge, str) else dispute.charge.id
        intent = dispute.payment_intent
        intent_id = intent if isinstance(intent, str) or intent is None else intent.id
        payment = await repo.card_payment_by_charge(charge, for_update=True)
        if payment is None and intent_id:
            payment = await repo.card_payment_by_intent(intent_id, for_update=True)
        if payment is None:
            return None, dispute.status
        payment.disputed, payment.dispute_id, payment.dispute_status = True, dispute.id, dispute.status
        if dispute.status == "lost":
            payment.payout_held = False
            await ledger.post(
                session,
                key=f"dispute:{dispute.id}:lost",
                kind="dispute_lost",
                lines=ledger.dispute_lost(payment.currency, int(dispute.amount)),
                booking_id=payment.booking_id,
                memo=f"Dispute {dispute.id} lost",
            )
        elif dispute.status in ("won", "warning_closed"):
            payment.payout_held = False
            await self.pay_out(session, payment)
        else:
            payment.payout_held = True
        payment.updated_at = utcnow()
        await session.flush()
        return payment, dispute.status

    # -- reads ----------------------------------------------------------------------------------------

    async def reconcile(self, session: AsyncSession) -> dict[str, Any]:
        """Compare the ledger's Stripe clearing account with Stripe's balance transactions, per currency
        and category (see ``payments.stripe_reconcile``)."""
        stripe_sums: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        fees: dict[str, int] = defaultdict(int)
        params: BalanceTransactionListParams = {"limit": 100}
        async with self.client() as client:
            page = await client.v1.balance_transactions.list_async(params)
            async for txn in page.auto_paging_iter():
                stripe_sums[txn.currency.upper()][stripe_reconcile.stripe_category(txn.type)] += int(txn.amount)
                fees[txn.currency.upper()] += int(txn.fee)
        clearing = await PaymentsRepository(session).journal_sums(CLEARING_STRIPE)
        return stripe_reconcile.compare(stripe_sums, fees, clearing)


async def view(session: AsyncSession, booking_id: uuid.UUID, *, amount: int, currency: str) -> PaymentView:
    payment = await PaymentsRepository(session).card_payment(booking_id)
    if payment is None:
        return PaymentView(method="stripe", status="no_payment", amount_due=0, currency=currency)
    authorised = payment.status == "requires_capture" or payment.captured > 0
    return PaymentView(
        method="stripe",
        status="disputed" if payment.disputed else payment.status,
        amount_due=0 if authorised or payment.status == "canceled" else payment.amount,
        currency=payment.currency,
        payment_intent_id=payment.payment_intent_id,
        client_secret=payment.client_secret if payment.status in HOLDABLE else None,
    )
