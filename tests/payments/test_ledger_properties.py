"""Money properties over random booking histories, on both gateways.

What runs:
* **10,000 Hypothesis examples per gateway** (invoice and Stripe) against a pure model: random
  sequences of book / pay / accept / decline / expire / cancel / start / complete / confirm (settle) /
  dispute / resolve (refund) / bank payments, driven through the real booking transition table
  (``marketplace.bookings.transitions``) and the real posting rules (``payments.ledger``), which are the
  functions the gateways post with.
* **DB-backed examples** (seeded, 40 sequences): the same kind of history driven through the real
  ``InvoiceGateway`` methods and admin operations on PostgreSQL; the database ledger must equal the pure
  model's, balance per journal, and the trial balance must be zero. (The Stripe gateway is driven
  against localstripe in test_stripe_localstripe.py.)

Properties: every journal balances; all balances sum to zero per currency; for every settled or
cancelled booking, once the platform has collected what is owed and paid what it owes,
buyer payments = supplier payouts + platform commission + refunds, and the platform keeps exactly the
commission.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.bookings.transitions import TRANSITIONS
from payments import ledger
from payments.invoices import InvoiceGateway
from payments.port import BookingMoney
from tests.bookings.helpers import book, market, slot

BUYER, SUPPLIER = uuid.UUID(int=1), uuid.UUID(int=2)
ACTIONS = ["pay", "accept", "decline", "expire", "cancel", "start", "complete", "confirm", "dispute", "resolve"]
TERMINAL = {"settled", "cancelled", "declined", "expired", "resolved"}


@dataclass
class Model:
    """One booking under one gateway, with the journals it posted (in memory)."""

    gateway: str  # invoice | stripe
    amount: int
    rate_bp: int
    currency: str = "CNY"
    status: str = "held"
    captured: int = 0
    closed: bool = False
    journals: list[list[ledger.Line]] = field(default_factory=list)

    def post(self, lines: list[ledger.Line]) -> None:
        if lines:
            ledger.check_balanced(lines)
            self.journals.append(lines)

    def balance(self, account: str) -> int:
        return sum(x.amount for j in self.journals for x in j if x.account == account)

    @property
    def clearing(self) -> str:
        return ledger.CLEARING_BANK if self.gateway == "invoice" else ledger.CLEARING_STRIPE

    # -- gateway effects ---------------------------------------------------------------------------

    def book(self) -> None:
        if self.gateway == "invoice":
            self.post(ledger.issue(BUYER, self.currency, self.amount))

    def close(self, refund: int) -> None:
        if self.closed:
            return
        self.closed = True
        if self.gateway == "invoice":
            if refund:
                outstanding = self.balance(ledger.BUYER_RECEIVABLE)
                self.post(ledger.credit(BUYER, self.currency, refund, receivable_outstanding=outstanding))
            self.post(ledger.settle(SUPPLIER, self.currency, self.amount - refund, rate_bp=self.rate_bp))
            return
        if refund:
            self.post(ledger.credit(BUYER, self.currency, refund, receivable_outstanding=0))
            self.post(ledger.refund_paid(BUYER, self.currency, refund, clearing=ledger.CLEARING_STRIPE))
        kept = self.captured - refund
        self.post(ledger.settle(SUPPLIER, self.currency, kept, rate_bp=self.rate_bp))
        owed = -self.balance(ledger.SUPPLIER_PAYABLE)
        self.post(ledger.payout_paid(SUPPLIER, self.currency, owed, clearing=ledger.CLEARING_STRIPE))

    def apply(self, action: str, share: int) -> None:
        try:
            to, _ = TRANSITIONS[(self.status, action)]
        except KeyError:
            return
        before, self.status = self.status, to
        refund = self.amount * share // 100
        if action == "accept" and self.gateway == "stripe":
            self.captured = self.amount
            self.post(ledger.captured(self.currency, self.amount))
        elif action in ("decline", "expire") or (action == "cancel" and before == "held"):
            if self.gateway == "invoice":
                self.close(self.amount)
        elif action == "cancel":
            if self.gateway == "stripe" and not self.captured:
                kept = self.amount - refund  # capture only the cancellation fee, release the rest
                if kept:
                    self.captured = kept
                    self.post(ledger.captured(self.currency, kept))
                self.close(0)
            else:
                self.close(refund)
        elif action == "confirm":
            self.close(0)
        elif action == "resolve":
            self.close(refund)

    def bank_payment(self, share: int) -> None:
        """An admin records part of what the buyer still owes (invoice path)."""
        outstanding = self.balance(ledger.BUYER_RECEIVABLE)
        amount = outstanding * share // 100
        if self.gateway == "invoice" and amount > 0:
            self.post(ledger.received(BUYER, self.currency, amount))

    def finish(self) -> None:
        """The back office completes: collect what is owed, pay refunds and payouts."""
        if self.gateway != "invoice":
            return
        self.bank_payment(100)
        self.post(
            ledger.refund_paid(BUYER, self.currency, -self.balance(ledger.REFUNDS_PAYABLE), clearing=self.clearing)
        )
        self.post(
            ledger.payout_paid(SUPPLIER, self.currency, -self.balance(ledger.SUPPLIER_PAYABLE), clearing=self.clearing)
        )


def check(model: Model) -> None:
    totals: dict[str, int] = defaultdict(int)
    for journal in model.journals:
        per: dict[str, int] = defaultdict(int)
        for line in journal:
            per[line.currency] += line.amount
            totals[line.currency] += line.amount
        assert all(v == 0 for v in per.values()), journal
    assert all(v == 0 for v in totals.values())
    if model.status not in TERMINAL:
        return
    model.finish()
    lines = [x for j in model.journals for x in j]

    def flow(account: str, sign: int) -> int:
        return sum(sign * x.amount for x in lines if x.account == account and sign * x.amount > 0)

    paid_in = flow(model.clearing, +1)  # money that came from the buyer
    paid_out = -sum(x.amount for x in lines if x.account == model.clearing and x.amount < 0)
    refunds = sum(x.amount for x in lines if x.account == ledger.REFUNDS_PAYABLE and x.amount > 0)
    payouts = sum(x.amount for x in lines if x.account == ledger.SUPPLIER_PAYABLE and x.amount > 0)
    fee = -model.balance(ledger.COMMISSION_REVENUE)
    assert paid_out == refunds + payouts
    assert paid_in == payouts + fee + refunds
    for account in (ledger.FUNDS_HELD, ledger.BUYER_RECEIVABLE, ledger.SUPPLIER_PAYABLE, ledger.REFUNDS_PAYABLE):
        assert model.balance(account) == 0, account
    assert model.balance(model.clearing) == fee
    kept = paid_in - refunds
    assert fee == ledger.commission(kept, model.rate_bp)  # the one rounding rule, on the kept part
    assert 0 <= fee <= kept


steps = st.lists(
    st.tuples(st.sampled_from([*ACTIONS, "bank_payment"]), st.integers(min_value=0, max_value=100)), max_size=14
)


def run(gateway: str, amount: int, rate: int, history: list[tuple[str, int]]) -> None:
    model = Model(gateway, amount, rate)
    model.book()
    for action, share in history:
        if action == "bank_payment":
            model.bank_payment(share)
        else:
            model.apply(action, share)
    check(model)


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    amount=st.integers(min_value=1, max_value=10**10), rate=st.integers(min_value=0, max_value=10_000), history=steps
)
def test_invoice_gateway_money_properties(amount: int, rate: int, history: list[tuple[str, int]]) -> None:
    run("invoice", amount, rate, history)


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    amount=st.integers(min_value=1, max_value=10**10), rate=st.integers(min_value=0, max_value=10_000), history=steps
)
def test_stripe_gateway_money_properties(amount: int, rate: int, history: list[tuple[str, int]]) -> None:
    run("stripe", amount, rate, history)


@given(kept=st.integers(min_value=0, max_value=10**12), rate=st.integers(min_value=0, max_value=10_000))
def test_commission_rounds_half_up(kept: int, rate: int) -> None:
    from decimal import ROUND_HALF_UP, Decimal

    exact = Decimal(kept) * Decimal(rate) / Decimal(10_000)
    assert ledger.commission(kept, rate) == int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


# -- DB-backed: the real InvoiceGateway on PostgreSQL ---------------------------------------------------


async def _clone_booking(db: AsyncSession, template: uuid.UUID) -> uuid.UUID:
    """A booking row for the gateway's foreign keys (a copy of a real one, in a non-blocking status)."""
    new_id = uuid.uuid4()
    cols = [
        r
        for r in (
            await db.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = 'bookings'"
                    " AND column_name NOT IN ('id', 'status')"
                )
            )
        ).scalars()
    ]
    names = ", ".join(f'"{c}"' for c in cols)
    await db.execute(
        sa.text(
            f"INSERT INTO bookings (id, status, {names}) SELECT :new, 'cancelled', {names} FROM bookings WHERE id = :t"
        ),
        {"new": new_id, "t": template},
    )
    return new_id


async def test_invoice_gateway_on_postgres_matches_the_model(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db)
    start, end = slot(200)
    template = uuid.UUID((await book(client, m["buyer"], m["asset"]["id"], start, end)).json()["id"])
    buyer, supplier = uuid.UUID(m["buyer_org"]), uuid.UUID(m["asset"]["org_id"])
    gateway = InvoiceGateway()
    rng = random.Random(20261126)
    for _ in range(40):
        booking_id = await _clone_booking(db, template)
        amount, rate = rng.randint(1, 10**9), rng.randint(0, 10_000)
        money = BookingMoney(booking_id, buyer, supplier, amount, "CNY", rate)
        model = Model("invoice", amount, rate)
        await gateway.on_booked(db, money)
        model.book()
        invoice_id = (
            await db.execute(sa.text("SELECT id FROM invoices WHERE booking_id = :b"), {"b": booking_id})
        ).scalar_one()
        refs = iter(range(10_000))
        for _ in range(rng.randint(0, 12)):
            action, share = rng.choice([*ACTIONS, "bank_payment"]), rng.randint(0, 100)
            if action == "bank_payment":
                amount_in = model.balance(ledger.BUYER_RECEIVABLE) * share // 100
                if amount_in > 0:
                    await gateway.record_received(
                        db, invoice_id, amount=amount_in, reference=f"r{next(refs)}", actor=None
                    )
                model.bank_payment(share)
                continue
            before = model.status
            if (before, action) not in TRANSITIONS:
                continue
            model.apply(action, share)
            refund = amount * share // 100
            if action in ("decline", "expire") or (action == "cancel" and before == "held"):
                await gateway.on_released(db, money)
            elif action == "cancel":
                await gateway.on_cancelled(db, money, refund)
            elif action == "confirm":
                await gateway.on_settled(db, money)
            elif action == "resolve":
                await gateway.on_resolved(db, money, refund)
            elif action == "accept":
                await gateway.on_accepted(db, money)
        if model.status in TERMINAL:
            outstanding = model.balance(ledger.BUYER_RECEIVABLE)
            owed_back = -model.balance(ledger.REFUNDS_PAYABLE)
            check(model)  # runs the model's back-office completion, then asserts the properties
            if outstanding > 0:
                await gateway.record_received(db, invoice_id, amount=outstanding, reference="final", actor=None)
            if owed_back > 0:
                await gateway.record_refund(db, invoice_id, amount=owed_back, reference="refund", actor=None)
            payable = -await ledger.booking_balance(db, booking_id, ledger.SUPPLIER_PAYABLE)
            if payable > 0:
                await gateway.record_payout(db, invoice_id, amount=payable, reference="payout", actor=None)
        db_balances = {k: v for k, v in (await ledger.booking_balances(db, booking_id)).items() if v}
        model_balances = {a: model.balance(a) for a in ledger.ACCOUNTS if model.balance(a)}
        assert db_balances == model_balances
    async with db.begin_nested():
        await db.execute(sa.text("SET CONSTRAINTS ALL IMMEDIATE"))  # the deferred balance trigger runs now
    trial: dict[str, Any] = await ledger.trial_balance(db)
    assert trial["balanced"] and all(
        sum(a["balance"] for a in c["accounts"]) == 0 for c in trial["currencies"].values()
    )
