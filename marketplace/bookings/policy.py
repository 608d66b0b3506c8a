"""Money rules of a booking that need no database: price and cancellation refunds."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def round_half_up_div(numerator: int, denominator: int) -> int:
    """Integer division rounding halves up (all amounts are non-negative minor units)."""
    return (2 * numerator + denominator) // (2 * denominator)


def machine_price(hourly_rate: int, minutes: int, setup_fee: int) -> int:
    """rate x hours, rounded half up to the minor unit, plus the setup fee."""
    return round_half_up_div(hourly_rate * minutes, 60) + setup_fee


def lab_price(price_per_sample: int, samples: int) -> int:
    return price_per_sample * samples


def refund_percent(policy: dict[str, Any], *, start: datetime, now: datetime, by: str) -> int:
    """Share of the price refunded on cancellation. A supplier (or admin) cancellation always refunds
    in full; a buyer gets 100 % with at least ``full_refund_hours`` notice, ``partial_refund_percent`` with
    at least ``partial_refund_hours``, else nothing. Boundaries are inclusive: exactly 72 h is a full refund."""
    if by != "buyer":
        return 100
    notice_hours = (start - now).total_seconds() / 3600
    if notice_hours >= policy.get("full_refund_hours", 72):
        return 100
    if notice_hours >= policy.get("partial_refund_hours", 24):
        return int(policy.get("partial_refund_percent", 50))
    return 0


def refund_amount(amount: int, percent: int) -> int:
    return round_half_up_div(amount * percent, 100)
