"""Reconciliation of the ledger's Stripe clearing account with Stripe's balance transactions: per currency
and category (charges, refunds, transfers, adjustments). Stripe's fees are not booked in the ledger
(docs/payments.md), so they are reported and excluded from the comparison. Pure: the gateway reads both
sides and hands them here."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

_STRIPE_CATEGORIES = {
    "charge": "charges",
    "payment": "charges",
    "refund": "refunds",
    "transfer": "transfers",
    "transfer_refund": "transfers",
    "payment_refund": "refunds",
}
_PAYOUTS = ("payout", "payout_cancel", "payout_failure")
# The ledger's journal kinds on the clearing account, in Stripe's categories.
_LEDGER_CATEGORIES = {
    "card_captured": "charges",
    "refund_sent": "refunds",
    "payout_sent": "transfers",
    "payout_reversed": "transfers",
    "dispute_lost": "adjustments",
}


def stripe_category(transaction_type: str) -> str:
    if transaction_type in _PAYOUTS:
        return "bank_payouts"
    return _STRIPE_CATEGORIES.get(transaction_type, "adjustments")


def compare(
    stripe_sums: Mapping[str, Mapping[str, int]],
    fees: Mapping[str, int],
    clearing: Iterable[tuple[str, str, int]],
) -> dict[str, Any]:
    """``stripe_sums``: currency -> category -> amount; ``clearing``: (currency, journal kind, sum) rows."""
    ledger_sums: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for currency, kind, total in clearing:
        ledger_sums[currency][_LEDGER_CATEGORIES.get(kind, "other")] += int(total)
    report: dict[str, Any] = {}
    for currency in sorted(set(stripe_sums) | set(ledger_sums)):
        s, g = stripe_sums.get(currency, {}), ledger_sums[currency]
        categories = sorted((set(s) | set(g)) - {"bank_payouts"})
        lines = {
            c: {"stripe": s.get(c, 0), "ledger": g.get(c, 0), "difference": s.get(c, 0) - g.get(c, 0)}
            for c in categories
        }
        report[currency] = {
            "categories": lines,
            "stripe_fees": fees.get(currency, 0),
            "bank_payouts": s.get("bank_payouts", 0),
            "matched": all(v["difference"] == 0 for v in lines.values()),
        }
    return {"matched": all(r["matched"] for r in report.values()), "currencies": report}
