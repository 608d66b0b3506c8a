"""The voucher rules that need no database (issue #18; see docs/vouchers.md):

* a buyer is eligible when its USCC's region code (positions 3-8, GB/T 2260) starts with the programme's prefix;
* a voucher is spent at a supplier whose site's region code starts with the programme's prefix, or with the
  prefix of an active programme that lists it as a partner;
* the service must be of an eligible kind and, when the programme names families, of one of them;
* the share when booked is ``min(rate, per-booking cap, yearly cap left, budget left)``.

Each check returns None when it passes, else the reason in plain English (it goes into the 422's message).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from marketplace.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from payments.ledger import round_half_up_div, subsidy_share

CHINA = ZoneInfo("Asia/Shanghai")  # a programme's days and years are China Standard Time

__all__ = [
    "CHINA",
    "buyer_reason",
    "china_day",
    "families_of",
    "remaining",
    "service_reason",
    "share",
    "spend_reason",
    "subsidy_share",
    "terms_reason",
]


def china_day(moment: datetime | None = None) -> date:
    return (moment or datetime.now(UTC)).astimezone(CHINA).date()


def buyer_region(uscc: str | None) -> str | None:
    """The GB/T 2260 region code in a USCC (positions 3-8)."""
    if not uscc or len(uscc) < 8:
        return None
    return uscc[2:8]


def buyer_reason(region_prefix: str, *, uscc: str | None) -> str | None:
    region = buyer_region(uscc)
    if region is None:
        return "the buyer organisation has no Unified Social Credit Code (USCC), so its region is unknown"
    if not region.startswith(region_prefix):
        return f"the buyer is registered in region {region}, outside the programme's region {region_prefix}"
    return None


def families_of(process_codes: Iterable[str]) -> set[str]:
    """The process families of a listing: the first dotted segment of each process code."""
    return {code.split(".", 1)[0] for code in process_codes if code}


def service_reason(
    kinds: Sequence[str], families: Sequence[str], *, kind: str, process_codes: Iterable[str]
) -> str | None:
    if kind not in kinds:
        return f"the programme does not pay for {kind.replace('_', ' ')} bookings"
    if families and not families_of(process_codes) & set(families):
        return f"the programme pays only for {', '.join(families)} services"
    return None


def spend_reason(region_prefix: str, *, site_region: str, partner_prefixes: Iterable[str]) -> str | None:
    """Where a voucher may be spent: its own programme's region, or a partner programme's region."""
    if site_region.startswith(region_prefix):
        return None
    if any(site_region.startswith(prefix) for prefix in partner_prefixes):
        return None
    return f"the supplier's site (region {site_region}) is outside the programme's region and its partners' regions"


def terms_reason(
    *, status: str, valid_from: date, valid_until: date, currency: str, booking_currency: str, today: date
) -> str | None:
    if status != "active":
        return "the programme is closed"
    if today < valid_from:
        return f"the programme opens on {valid_from}"
    if today > valid_until:
        return f"the programme ended on {valid_until}"
    if booking_currency != currency:
        return f"the programme pays in {currency}, the booking is in {booking_currency}"
    return None


def share(amount: int, *, rate_bp: int, cap_per_booking: int, buyer_left: int, budget_left: int) -> int:
    """The voucher's share of a booking when booked (0 or less: nothing left)."""
    by_rate = round_half_up_div(max(amount, 0) * rate_bp, 10_000)
    return min(by_rate, cap_per_booking, buyer_left, budget_left)


def remaining(*, cap_per_buyer_year: int, used_by_buyer: int, budget: int, used_by_programme: int) -> int:
    """What a voucher can still pay this year: the yearly cap left, at most the programme's budget left."""
    return max(0, min(cap_per_buyer_year - used_by_buyer, budget - used_by_programme))


# -- the room's errors (raised by the service and the redeemer) -----------------------------------------------


class VoucherNotFound(NotFound):
    """Voucher not found."""

    code = "voucher_not_found"


class ProgrammeNotFound(NotFound):
    """Programme not found."""

    code = "programme_not_found"


class VoucherNotGranted(Conflict):
    """The voucher is not granted (applied, rejected or revoked)."""

    code = "voucher_not_granted"


class VoucherNotEligible(Unprocessable):
    """The voucher cannot be used here."""

    code = "voucher_not_eligible"

    def __init__(self, reason: str, *, field: str = "voucher_id") -> None:
        super().__init__(f"{field}: {reason}.", extra={"fields": [{"field": field, "message": reason}]})


class VoucherExhausted(Conflict):
    """Nothing is left on this voucher: the buyer's yearly cap or the programme's budget is used up."""

    code = "voucher_exhausted"


class VoucherInvoiceOnly(Conflict):
    """This programme pays its share on the invoice: book with bank transfer (invoice), not by card."""

    code = "voucher_invoice_only"


class VoucherExists(Conflict):
    """This organisation already has a voucher of this programme."""

    code = "voucher_exists"


class NotProgrammeOrg(Forbidden):
    """Only a programme organisation runs voucher programmes."""

    code = "not_programme_org"


class ProgrammeOrgUnverified(Conflict):
    """The programme organisation is not verified yet: the platform verifies it before it runs programmes."""

    code = "programme_org_unverified"


class InvalidVoucherState(Conflict):
    """The voucher is not in a state that allows this decision."""

    code = "invalid_voucher_state"
