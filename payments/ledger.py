"""The double-entry ledger: chart of accounts, pure posting rules, and the one posting function.

Sign convention: an entry's ``amount`` is in integer minor units, positive for a debit and negative for
a credit. Every journal sums to zero per currency. :func:`post` refuses an unbalanced journal, and a
deferred constraint trigger (migration 0005) re-checks every journal at commit.

The posting rules (``issue`` ... ``dispute_lost``) are pure functions returning the lines of one
journal, so the same rules are exercised by the gateways and by the property tests' in-memory model.
See docs/payments.md for the chart of accounts and the journal of each event.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from payments.errors import UnbalancedJournal
from payments.models import Journal, JournalEntry

# -- chart of accounts -------------------------------------------------------------------------------
# Assets (normal debit balance)
CLEARING_BANK = "clearing_bank"  # the platform's bank account (invoice / bank transfer path)
CLEARING_STRIPE = "clearing_stripe"  # the platform's Stripe balance (card path)
BUYER_RECEIVABLE = "buyer_receivable"  # per buyer org: invoiced, not yet paid
PROGRAMME_RECEIVABLE = "programme_receivable"  # per programme org: voucher shares it pays in advance, not yet paid
# Liabilities (normal credit balance)
FUNDS_HELD = "customer_funds_held"  # booking money between invoice/capture and settlement (escrow)
SUPPLIER_PAYABLE = "supplier_payable"  # per supplier org: earned by the supplier, not yet paid out
REFUNDS_PAYABLE = "refunds_payable"  # per buyer org: refunds/credit notes owed, not yet paid back
# Income and expenses
COMMISSION_REVENUE = "commission_revenue"
DISPUTE_LOSSES = "dispute_losses"

# The sub-ledger accounts an organisation's statement shows (its own lines).
ORG_ACCOUNTS = (BUYER_RECEIVABLE, SUPPLIER_PAYABLE, REFUNDS_PAYABLE, PROGRAMME_RECEIVABLE)

ACCOUNTS: dict[str, str] = {
    CLEARING_BANK: "asset",
    CLEARING_STRIPE: "asset",
    BUYER_RECEIVABLE: "asset",
    PROGRAMME_RECEIVABLE: "asset",
    FUNDS_HELD: "liability",
    SUPPLIER_PAYABLE: "liability",
    REFUNDS_PAYABLE: "liability",
    COMMISSION_REVENUE: "income",
    DISPUTE_LOSSES: "expense",
}


@dataclass(frozen=True)
class Line:
    account: str
    org_id: uuid.UUID | None
    currency: str
    amount: int  # + debit, - credit


def round_half_up_div(numerator: int, denominator: int) -> int:
    """Integer division rounding halves up, for non-negative numerators."""
    if numerator < 0 or denominator <= 0:
        raise ValueError("round_half_up_div expects a non-negative numerator and a positive denominator")
    return (2 * numerator + denominator) // (2 * denominator)


def commission(kept: int, rate_bp: int) -> int:
    """THE rounding rule: commission = round half up of (kept amount x rate / 10 000), in minor units.
    ``kept`` is what the buyer finally pays for the booking (captured/invoiced minus refunds)."""
    return round_half_up_div(kept * rate_bp, 10_000)


def subsidy_share(share: int, amount: int, kept: int) -> int:
    """A voucher's share of what the buyer finally keeps paying for: the share booked, in proportion to the kept
    part of the booking amount, rounded half up. Never more than the share booked (``kept <= amount``)."""
    if amount <= 0 or share <= 0:
        return 0
    return min(share, round_half_up_div(share * max(kept, 0), amount))


def check_balanced(lines: Sequence[Line]) -> None:
    sums: dict[str, int] = defaultdict(int)
    for line in lines:
        if line.account not in ACCOUNTS:
            raise UnbalancedJournal(f"Unknown account {line.account!r}.")
        sums[line.currency] += line.amount
    bad = {c: s for c, s in sums.items() if s != 0}
    if bad:
        raise UnbalancedJournal(f"Journal does not balance: {bad}.")


# -- posting rules (pure) -----------------------------------------------------------------------------


def _lines(currency: str, *parts: tuple[str, uuid.UUID | None, int]) -> list[Line]:
    return [Line(a, o, currency, amt) for a, o, amt in parts if amt != 0]


def issue(
    buyer: uuid.UUID, currency: str, amount: int, *, subsidy: int = 0, payer: uuid.UUID | None = None
) -> list[Line]:
    """Invoice issued: the buyer owes the booking amount, held for the booking until settlement. With an
    innovation voucher paid in advance, the programme (``payer``) owes its ``subsidy`` and the buyer the rest."""
    if subsidy and payer is None:
        raise UnbalancedJournal("A voucher share needs the programme that owes it.")
    return _lines(
        currency,
        (BUYER_RECEIVABLE, buyer, amount - subsidy),
        (PROGRAMME_RECEIVABLE, payer, subsidy),
        (FUNDS_HELD, None, -amount),
    )


def received(buyer: uuid.UUID, currency: str, amount: int, *, clearing: str = CLEARING_BANK) -> list[Line]:
    """The buyer's money arrived (bank transfer recorded by an admin)."""
    return _lines(currency, (clearing, None, amount), (BUYER_RECEIVABLE, buyer, -amount))


def captured(currency: str, amount: int) -> list[Line]:
    """A card hold was captured: the money sits in the Stripe balance, held for the booking."""
    return _lines(currency, (CLEARING_STRIPE, None, amount), (FUNDS_HELD, None, -amount))


def credit(
    buyer: uuid.UUID,
    currency: str,
    amount: int,
    *,
    receivable_outstanding: int,
    subsidy_returned: int = 0,
    payer: uuid.UUID | None = None,
) -> list[Line]:
    """A credit note / refund of ``amount``. The part of a voucher share no longer due (``subsidy_returned``,
    see :func:`subsidy_share`) comes off the programme's receivable; the buyer's part first reduces what the
    buyer still owes, and the rest is owed back to the buyer until the refund is paid."""
    if subsidy_returned and payer is None:
        raise UnbalancedJournal("A returned voucher share needs the programme that owes it.")
    buyers_part = amount - subsidy_returned
    against_receivable = min(buyers_part, max(receivable_outstanding, 0))
    return _lines(
        currency,
        (FUNDS_HELD, None, amount),
        (PROGRAMME_RECEIVABLE, payer, -subsidy_returned),
        (BUYER_RECEIVABLE, buyer, -against_receivable),
        (REFUNDS_PAYABLE, buyer, -(buyers_part - against_receivable)),
    )


def subsidy_collected(payer: uuid.UUID, currency: str, amount: int, *, clearing: str = CLEARING_BANK) -> list[Line]:
    """The programme paid a voucher share it owed (an approved line of its claim)."""
    return _lines(currency, (clearing, None, amount), (PROGRAMME_RECEIVABLE, payer, -amount))


def subsidy_rebilled(buyer: uuid.UUID, payer: uuid.UUID, currency: str, *, amount: int) -> list[Line]:
    """The programme rejected a voucher share (a claim line): the buyer owes it instead."""
    return _lines(currency, (BUYER_RECEIVABLE, buyer, amount), (PROGRAMME_RECEIVABLE, payer, -amount))


def settle(supplier: uuid.UUID, currency: str, kept: int, *, rate_bp: int) -> list[Line]:
    """The booking's kept amount is earned: commission to the platform, the rest to the supplier."""
    fee = commission(kept, rate_bp)
    return _lines(
        currency,
        (FUNDS_HELD, None, kept),
        (SUPPLIER_PAYABLE, supplier, -(kept - fee)),
        (COMMISSION_REVENUE, None, -fee),
    )


def refund_paid(buyer: uuid.UUID, currency: str, amount: int, *, clearing: str) -> list[Line]:
    return _lines(currency, (REFUNDS_PAYABLE, buyer, amount), (clearing, None, -amount))


def payout_paid(supplier: uuid.UUID, currency: str, amount: int, *, clearing: str) -> list[Line]:
    """Paid to the supplier (bank payout or Stripe transfer); negative ``amount`` = a reversal."""
    return _lines(currency, (SUPPLIER_PAYABLE, supplier, amount), (clearing, None, -amount))


def dispute_lost(currency: str, amount: int) -> list[Line]:
    """A card dispute was lost: the platform's Stripe balance pays it."""
    return _lines(currency, (DISPUTE_LOSSES, None, amount), (CLEARING_STRIPE, None, -amount))


# -- posting ------------------------------------------------------------------------------------------


async def post(
    session: AsyncSession,
    *,
    key: str,
    kind: str,
    lines: Sequence[Line],
    booking_id: uuid.UUID | None = None,
    invoice_id: uuid.UUID | None = None,
    memo: str = "",
) -> uuid.UUID | None:
    """Post one journal, at most once per ``key``. Returns its id, or None if ``key`` was already
    posted (or there is nothing to post). Only flushes: the caller's unit of work commits."""
    lines = [line for line in lines if line.amount != 0]
    if not lines:
        return None
    check_balanced(lines)
    journal_id = uuid.uuid4()
    posted = await session.execute(
        _POST_JOURNAL,
        {
            "id": journal_id,
            "key": key,
            "kind": kind,
            "booking_id": booking_id,
            "invoice_id": invoice_id,
            "memo": memo[:500],
            "accounts": [x.account for x in lines],
            "org_ids": [x.org_id for x in lines],
            "currencies": [x.currency for x in lines],
            "amounts": [x.amount for x in lines],
        },
    )
    return journal_id if posted.first() is not None else None


# One round trip per journal: the journal row (skipped when ``key`` was already posted) and, only if it was
# inserted, its entries in the order of the lines.
_POST_JOURNAL = sa.text(
    """
    WITH journal AS (
        INSERT INTO journals (id, key, kind, booking_id, invoice_id, memo)
        VALUES (:id, :key, :kind, :booking_id, :invoice_id, :memo)
        ON CONFLICT (key) DO NOTHING
        RETURNING id
    )
    INSERT INTO journal_entries (journal_id, account, org_id, currency, amount)
    SELECT journal.id, line.account, line.org_id, line.currency, line.amount
      FROM journal,
           unnest(:accounts, :org_ids, :currencies, :amounts) WITH ORDINALITY
               AS line(account, org_id, currency, amount, n)
     ORDER BY line.n
    RETURNING journal_id
    """
).bindparams(
    sa.bindparam("id", type_=sa.Uuid()),
    sa.bindparam("key", type_=sa.String()),
    sa.bindparam("kind", type_=sa.String()),
    sa.bindparam("booking_id", type_=sa.Uuid()),
    sa.bindparam("invoice_id", type_=sa.Uuid()),
    sa.bindparam("memo", type_=sa.String()),
    sa.bindparam("accounts", type_=ARRAY(sa.String())),
    sa.bindparam("org_ids", type_=ARRAY(sa.Uuid())),
    sa.bindparam("currencies", type_=ARRAY(sa.String())),
    sa.bindparam("amounts", type_=ARRAY(sa.BigInteger())),
)


async def booking_balance(session: AsyncSession, booking_id: uuid.UUID, account: str) -> int:
    """The balance (debits - credits) of one account for one booking's journals."""
    total = await session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(col(JournalEntry.amount)), 0))
        .join(Journal, col(Journal.id) == col(JournalEntry.journal_id))
        .where(col(Journal.booking_id) == booking_id, col(JournalEntry.account) == account)
    )
    return int(total or 0)


async def booking_balances(session: AsyncSession, booking_id: uuid.UUID) -> dict[str, int]:
    rows = await session.execute(
        sa.select(col(JournalEntry.account), sa.func.sum(col(JournalEntry.amount)))
        .join(Journal, col(Journal.id) == col(JournalEntry.journal_id))
        .where(col(Journal.booking_id) == booking_id)
        .group_by(col(JournalEntry.account))
    )
    return {a: int(s) for a, s in rows.all()}


async def has_journal(session: AsyncSession, key: str) -> bool:
    return (await session.scalar(sa.select(col(Journal.id)).where(col(Journal.key) == key))) is not None


async def trial_balance(session: AsyncSession) -> dict[str, Any]:
    amount = col(JournalEntry.amount)
    rows = await session.execute(
        sa.select(
            col(JournalEntry.currency),
            col(JournalEntry.account),
            sa.func.coalesce(sa.func.sum(sa.case((amount > 0, amount), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case((amount < 0, -amount), else_=0)), 0),
        )
        .group_by(col(JournalEntry.currency), col(JournalEntry.account))
        .order_by(col(JournalEntry.currency), col(JournalEntry.account))
    )
    currencies: dict[str, dict[str, Any]] = {}
    for currency, account, debits, credits in rows.all():
        c = currencies.setdefault(currency, {"debits": 0, "credits": 0, "accounts": []})
        c["debits"] += int(debits)
        c["credits"] += int(credits)
        c["accounts"].append(
            {
                "account": account,
                "type": ACCOUNTS.get(account, "unknown"),
                "debits": int(debits),
                "credits": int(credits),
                "balance": int(debits) - int(credits),
            }
        )
    return {"balanced": all(c["debits"] == c["credits"] for c in currencies.values()), "currencies": currencies}


# An organisation's statement: its own sub-ledger lines (buyer receivable, supplier payable, refunds owed).
# Lines are immutable and numbered by the entry's identity, so the line id is the keyset: "newest first" is
# ``id DESC`` on the (org_id, id) index, and paging never skips or repeats a line.
_STATEMENT_LINES: Any = (
    sa.select(
        col(JournalEntry.id).label("line_id"),
        col(Journal.id).label("journal_id"),
        col(Journal.kind),
        col(Journal.booking_id),
        col(Journal.invoice_id),
        col(JournalEntry.account),
        col(JournalEntry.currency),
        col(JournalEntry.amount),
        col(Journal.created_at),
        col(Journal.memo),
    )
    .join(Journal, col(Journal.id) == col(JournalEntry.journal_id))
    .where(col(JournalEntry.org_id) == sa.bindparam("org_id", type_=sa.Uuid()))
)


async def statement_lines(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    limit: int,
    after_id: int | None = None,
    newest_first: bool = True,
    account: str | None = None,
) -> list[dict[str, Any]]:
    """Up to ``limit`` of the organisation's ledger lines after line ``after_id`` in the chosen order
    (newest first, or oldest first for exports); only ``account``'s lines if given."""
    line_id = col(JournalEntry.id)
    stmt = _STATEMENT_LINES
    if after_id is not None:
        stmt = stmt.where(line_id < after_id if newest_first else line_id > after_id)
    if account is not None:
        stmt = stmt.where(col(JournalEntry.account) == account)
    stmt = stmt.order_by(line_id.desc() if newest_first else line_id.asc()).limit(limit)
    rows = await session.execute(stmt, {"org_id": org_id})
    return [dict(row) for row in rows.mappings()]


_STATEMENT_TOTALS = (
    sa.select(
        col(JournalEntry.currency),
        col(JournalEntry.account),
        sa.func.coalesce(sa.func.sum(sa.case((col(JournalEntry.amount) > 0, col(JournalEntry.amount)), else_=0)), 0),
        sa.func.coalesce(sa.func.sum(sa.case((col(JournalEntry.amount) < 0, -col(JournalEntry.amount)), else_=0)), 0),
    )
    .where(col(JournalEntry.org_id) == sa.bindparam("org_id", type_=sa.Uuid()))
    .group_by(col(JournalEntry.currency), col(JournalEntry.account))
    .order_by(col(JournalEntry.currency), col(JournalEntry.account))
)


async def statement_totals(session: AsyncSession, *, org_id: uuid.UUID) -> dict[str, dict[str, dict[str, int]]]:
    """currency -> account -> {debits, credits, balance} over ALL of the organisation's lines, summed in SQL
    (balance = debits - credits, the ledger's sign convention)."""
    rows = await session.execute(_STATEMENT_TOTALS, {"org_id": org_id})
    out: dict[str, dict[str, dict[str, int]]] = {}
    for currency, account, debits, credits in rows.all():
        out.setdefault(currency, {})[account] = {
            "debits": int(debits),
            "credits": int(credits),
            "balance": int(debits) - int(credits),
        }
    return out


async def statement_balances(session: AsyncSession, *, org_id: uuid.UUID) -> dict[str, dict[str, int]]:
    """currency -> account -> balance (debits - credits) over all of the organisation's lines."""
    totals = await statement_totals(session, org_id=org_id)
    return {cur: {acc: t["balance"] for acc, t in accounts.items()} for cur, accounts in totals.items()}


def balances_by_account(lines: Iterable[Line]) -> dict[tuple[str, str], int]:
    """(account, currency) -> balance of an in-memory set of lines (used by the property tests)."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    for line in lines:
        out[(line.account, line.currency)] += line.amount
    return dict(out)
