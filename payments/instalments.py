"""A booking's payment schedule as the invoice gateway sees it (issue #18): which instalment is which, its
invoice line, and its part of an innovation voucher paid in advance. Pure; the gateway does the writing."""

from __future__ import annotations

from typing import Any

from payments import ledger
from payments.errors import Invalid
from payments.port import BookingMoney


def position(money: BookingMoney, n: int) -> tuple[str, int, int]:
    """Instalment ``n``'s label, amount and the sum of the instalments before it."""
    before = 0
    for number, label, amount in money.instalments:
        if number == n:
            return label, amount, before
        before += amount
    raise Invalid(f"The booking has no instalment {n}.")


def subsidy_part(subsidy: int, amount: int, *, before: int, upto: int) -> int:
    """The voucher's share of one instalment: S_n = share(cum_n) - share(cum_(n-1)), so the shares of all
    instalments add up to the voucher's share of the booking (``ledger.subsidy_share`` rounds each cumulative
    figure, never the parts)."""
    return ledger.subsidy_share(subsidy, amount, upto) - ledger.subsidy_share(subsidy, amount, before)


def percent_of(facts: dict[str, Any], n: int, *, amount: int, total: int) -> int:
    """The instalment's percent as scheduled (the booking's ``instalments``), else its share of the total."""
    for item in facts.get("instalments") or ():
        if item.get("n") == n:
            return int(item["percent"])
    return ledger.round_half_up_div(amount * 100, total) if total else 0


def line(facts: dict[str, Any], *, n: int, label: str, amount: int, total: int) -> dict[str, Any]:
    """The one line of an instalment invoice: which instalment of which booking. ``label`` is ``deposit``,
    ``balance`` or the milestone's own words; ``description`` is the English text the API shows."""
    percent = percent_of(facts, n, amount=amount, total=total)
    title = facts.get("title") or ""
    start, end, drop_off = facts.get("start_at"), facts.get("end_at"), facts.get("drop_off_date")
    words = {"deposit": "Deposit", "balance": "Balance"}.get(label, label)
    return {
        "kind": "instalment",
        "n": n,
        "label": label,
        "percent": percent,
        "title": title,
        "start_at": start.isoformat() if start is not None else None,
        "end_at": end.isoformat() if end is not None else None,
        "samples": facts.get("samples"),
        "drop_off_date": drop_off.isoformat() if drop_off is not None else None,
        "description": f"{words} {percent} % of booking: {title or 'Booking'}",
        "quantity": 1,
        "unit": "instalment",
        "unit_price": amount,
        "amount": amount,
    }
