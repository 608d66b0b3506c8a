"""Split billing with an innovation voucher paid in advance (issue #18), as properties of the posting rules.

A booking of amount A with a voucher share S <= A is invoiced as buyer_receivable A - S and programme_receivable
S; a refund R gives back the part of S no longer due (``ledger.subsidy_share``); the kept amount K = A - R settles
as before. Whatever the history (refund, partial bank payments, the programme paying or rejecting its share),
once everything is collected and paid out:

* every journal balances and every receivable and payable is zero;
* the platform keeps exactly the commission on K;
* the programme paid exactly ``subsidy_share(S, A, K)`` (or nothing, when it rejected the line, and then the
  buyer paid it), and the buyer paid the rest of K.

The gateway's use of these rules on PostgreSQL, through the API, is tested in tests/vouchers/test_split_billing.py.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from payments import ledger

BUYER, SUPPLIER, PROGRAMME = uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)
CUR = "CNY"


@dataclass
class History:
    amount: int
    share: int
    refund: int
    rate_bp: int
    buyer_first_payment_pct: int  # part of the buyer's share paid before the refund
    programme_rejects: bool
    journals: list[list[ledger.Line]] = field(default_factory=list)

    def post(self, lines: list[ledger.Line]) -> None:
        if lines:
            ledger.check_balanced(lines)
            self.journals.append(lines)

    def balance(self, account: str, org: uuid.UUID | None = None) -> int:
        return sum(
            x.amount for j in self.journals for x in j if x.account == account and (org is None or x.org_id == org)
        )

    @property
    def kept(self) -> int:
        return self.amount - self.refund

    def run(self) -> None:
        self.post(ledger.issue(BUYER, CUR, self.amount, subsidy=self.share, payer=PROGRAMME))
        first = self.balance(ledger.BUYER_RECEIVABLE) * self.buyer_first_payment_pct // 100
        if first:
            self.post(ledger.received(BUYER, CUR, first))
        if self.refund:
            returned = self.share - ledger.subsidy_share(self.share, self.amount, self.kept)
            outstanding = self.balance(ledger.BUYER_RECEIVABLE)
            self.post(
                ledger.credit(
                    BUYER,
                    CUR,
                    self.refund,
                    receivable_outstanding=outstanding,
                    subsidy_returned=returned,
                    payer=PROGRAMME,
                )
            )
        self.post(ledger.settle(SUPPLIER, CUR, self.kept, rate_bp=self.rate_bp))
        due = self.balance(ledger.PROGRAMME_RECEIVABLE)
        if due:  # the claim line: approved and paid, or rejected and billed to the buyer
            if self.programme_rejects:
                self.post(ledger.subsidy_rebilled(BUYER, PROGRAMME, CUR, amount=due))
            else:
                self.post(ledger.subsidy_collected(PROGRAMME, CUR, due))
        rest = self.balance(ledger.BUYER_RECEIVABLE)
        if rest:
            self.post(ledger.received(BUYER, CUR, rest))
        self.post(ledger.refund_paid(BUYER, CUR, -self.balance(ledger.REFUNDS_PAYABLE), clearing=ledger.CLEARING_BANK))
        self.post(
            ledger.payout_paid(SUPPLIER, CUR, -self.balance(ledger.SUPPLIER_PAYABLE), clearing=ledger.CLEARING_BANK)
        )


@st.composite
def histories(draw: st.DrawFn) -> History:
    amount = draw(st.integers(min_value=1, max_value=10_000_000))
    return History(
        amount=amount,
        share=draw(st.integers(min_value=0, max_value=amount)),
        refund=draw(st.integers(min_value=0, max_value=amount)),
        rate_bp=draw(st.integers(min_value=0, max_value=3000)),
        buyer_first_payment_pct=draw(st.integers(min_value=0, max_value=100)),
        programme_rejects=draw(st.booleans()),
    )


@settings(max_examples=5000, deadline=None)
@given(histories())
def test_a_voucher_split_always_balances_and_everyone_pays_their_share(h: History) -> None:
    h.run()
    for account in (
        ledger.BUYER_RECEIVABLE,
        ledger.PROGRAMME_RECEIVABLE,
        ledger.FUNDS_HELD,
        ledger.SUPPLIER_PAYABLE,
        ledger.REFUNDS_PAYABLE,
    ):
        assert h.balance(account) == 0, account
    commission = ledger.commission(h.kept, h.rate_bp)
    assert h.balance(ledger.CLEARING_BANK) == commission
    assert -h.balance(ledger.COMMISSION_REVENUE) == commission
    programme_share = ledger.subsidy_share(h.share, h.amount, h.kept)
    paid_by_programme = sum(
        x.amount for j in h.journals for x in j if x.account == ledger.CLEARING_BANK and _is_collection(j)
    )
    assert paid_by_programme == (0 if h.programme_rejects else programme_share)
    paid_by_buyer = sum(x.amount for j in h.journals for x in j if x.account == ledger.CLEARING_BANK and _is_receipt(j))
    refunded = -sum(x.amount for j in h.journals for x in j if x.account == ledger.CLEARING_BANK and _is_refund(j))
    assert paid_by_buyer - refunded + paid_by_programme == h.kept


@settings(max_examples=2000, deadline=None)
@given(st.integers(min_value=1, max_value=10**9), st.data())
def test_the_voucher_share_of_what_is_kept_never_exceeds_the_share_or_the_kept_amount(
    amount: int, data: st.DataObject
) -> None:
    share = data.draw(st.integers(min_value=0, max_value=amount))
    kept = data.draw(st.integers(min_value=0, max_value=amount))
    now = ledger.subsidy_share(share, amount, kept)
    assert 0 <= now <= min(share, kept)
    assert ledger.subsidy_share(share, amount, amount) == share
    assert ledger.subsidy_share(share, amount, 0) == 0


def _is_collection(journal: list[ledger.Line]) -> bool:
    return any(x.account == ledger.PROGRAMME_RECEIVABLE and x.amount < 0 for x in journal) and any(
        x.account == ledger.CLEARING_BANK for x in journal
    )


def _is_receipt(journal: list[ledger.Line]) -> bool:
    return any(x.account == ledger.BUYER_RECEIVABLE and x.amount < 0 for x in journal) and any(
        x.account == ledger.CLEARING_BANK for x in journal
    )


def _is_refund(journal: list[ledger.Line]) -> bool:
    return any(x.account == ledger.REFUNDS_PAYABLE and x.amount > 0 for x in journal)
