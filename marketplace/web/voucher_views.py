"""What the buyer's pages show of innovation vouchers (issue #18): the vouchers a buyer may pay part of a booking
with (the booking form's select), the split of a booking or invoice placed with a voucher (full price, the
voucher's share, the buyer's share; or the reimbursement after use), a programme's terms in words, and the
voucher errors of a form in the page's language."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.bookings.models import Booking
from marketplace.bookings.repository import BookingRepository
from marketplace.core.errors import AppError
from marketplace.core.principal import Principal
from marketplace.orgs.models import Organisation
from marketplace.vouchers import service as vouchers
from marketplace.vouchers.models import PaymentMode, Voucher, VoucherProgramme
from marketplace.web import i18n
from marketplace.web.labels import N_
from payments import ledger

Translate = Callable[[str], str]

# The kinds of service a programme pays part of.
KINDS = {"machine": N_("machine time"), "lab_service": N_("lab testing")}

# Voucher errors of the booking form and the application form, by code.
_ERRORS = {
    "voucher_exhausted": N_(
        "This voucher has nothing left to pay with: its yearly limit or the programme's budget is used up. "
        "Book without it or choose another voucher."
    ),
    "voucher_not_eligible": N_("This voucher cannot be used for this booking."),
    "voucher_not_granted": N_("This voucher has not been granted, or it was revoked."),
    "voucher_not_found": N_("This voucher no longer exists. Reload the page."),
    "programme_not_found": N_("This programme no longer exists. Reload the page."),
    "voucher_invoice_only": N_(
        "This programme pays its share on the invoice: book with payment by bank transfer, not by card."
    ),
    "voucher_exists": N_("Your organisation has already applied for this programme's voucher."),
    "vouchers_unavailable": N_("Vouchers cannot be used at the moment. Book without one or try again later."),
}
_GENERIC = N_("This voucher cannot be used for this booking.")
# Why ``voucher_not_eligible`` refused (marketplace.vouchers.eligibility's reasons, in its detail): the pattern of
# the English reason and the sentence shown, with the pattern's named groups as its values.
_REASONS = [
    (
        r"has no unified social credit code",
        N_(
            "Your organisation has no Unified Social Credit Code, so its region is unknown. "
            "Add the code to your organisation's details first."
        ),
    ),
    (
        r"registered in region (?P<region>\w+), outside the programme's region (?P<prefix>\w+)",
        N_("Your organisation is registered in region %(region)s, outside the programme's region %(prefix)s."),
    ),
    (r"does not pay for (?P<kind>[\w ]+) bookings", N_("This programme does not pay for this kind of service.")),
    (r"pays only for (?P<families>.+) services", N_("This programme does not pay for this kind of process.")),
    (
        r"site \(region (?P<region>\w+)\) is outside",
        N_("This factory (region %(region)s) is outside the regions where this voucher can be spent."),
    ),
    (r"the organisation is not a buyer", N_("Only buyer organisations can hold a voucher.")),
    (r"the programme is closed", N_("This programme is closed.")),
    (r"the programme opens on (?P<day>[\d-]+)", N_("This programme opens on %(day)s.")),
    (r"the programme ended on (?P<day>[\d-]+)", N_("This programme ended on %(day)s.")),
    (r"the programme pays in (?P<currency>[A-Z]{3})", N_("This programme pays in %(currency)s only.")),
]


def is_voucher_error(exc: Exception) -> bool:
    code = str(getattr(exc, "code", "") or "")
    return code in _ERRORS or code.startswith("voucher") or str(getattr(exc, "detail", "")).startswith("voucher_id")


def voucher_error(exc: Exception, *, locale: str) -> str:
    """A voucher error as one sentence in ``locale``, naming why a voucher was refused where the error says it."""
    gettext = i18n.translations(locale).gettext
    code = str(getattr(exc, "code", "") or "")
    detail = str(getattr(exc, "detail", "") or "")
    if code == "voucher_not_eligible":
        for pattern, message in _REASONS:
            found = re.search(pattern, detail, re.IGNORECASE)
            if found:
                return gettext(message) % found.groupdict()
    return gettext(_ERRORS.get(code, _GENERIC))


# -- terms -----------------------------------------------------------------------------------------------------


def percent(rate_bp: int) -> str:
    return f"{rate_bp / 100:g}%"


def mode_words(mode: str, gettext: Translate) -> str:
    """How the programme pays, in a sentence for the buyer."""
    if mode == PaymentMode.after_use:
        return gettext(
            N_(
                "Reimbursed after use: you pay the invoice in full; the programme pays its share back "
                "to you once the work is done and its claim is approved."
            )
        )
    return gettext(
        N_("Paid on the invoice: the programme pays its share to the platform; you pay only the rest of the invoice.")
    )


def service_words(programme: VoucherProgramme, *, gettext: Translate, tname: Callable[[str], str]) -> str:
    """What the programme pays part of: the kinds of service and, when it names them, the process families."""
    kinds = ", ".join(gettext(KINDS[k]) if k in KINDS else k for k in programme.eligible_kinds)
    if not programme.eligible_families:
        return kinds
    return f"{kinds} ({', '.join(tname(f) for f in programme.eligible_families)})"


# -- the booking form ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoucherChoice:
    """One voucher the booking form offers: its id, whose it is and the words of its option."""

    voucher_id: uuid.UUID
    buyer_org_id: uuid.UUID
    programme: str
    rate: str
    cap_per_booking: int
    remaining: int
    currency: str


async def voucher_choices(
    session: AsyncSession, user: Principal, *, buyers: Iterable[Organisation], asset_id: uuid.UUID
) -> list[VoucherChoice]:
    """The granted vouchers of the person's buyer organisations that could pay part of ``asset_id`` now."""
    out: list[VoucherChoice] = []
    for org in buyers:
        for view in await vouchers.usable_vouchers(session, user, buyer_org_id=org.id, asset_id=asset_id):
            out.append(
                VoucherChoice(
                    voucher_id=view.voucher.id,
                    buyer_org_id=org.id,
                    programme=view.programme.name,
                    rate=percent(view.programme.rate_bp),
                    cap_per_booking=view.programme.cap_per_booking,
                    remaining=view.remaining_this_year,
                    currency=view.programme.currency,
                )
            )
    return out


def voucher_field(form: Mapping[str, Any]) -> dict[str, str]:
    """``{"voucher_id": ...}`` of BookingCreate when the booking form chose a voucher; nothing for "none"."""
    value = str(form.get("voucher_id") or "").strip()
    return {"voucher_id": value} if value else {}


def booking_errors(exc: Exception, *, locale: str) -> dict[str, str]:
    """A voucher's refusal on the booking form, beside the voucher select; empty for any other error."""
    return {"voucher_id": voucher_error(exc, locale=locale)} if is_voucher_error(exc) else {}


# -- the split of a booking or an invoice --------------------------------------------------------------------


@dataclass(frozen=True)
class VoucherSplit:
    """A booking placed with a voucher: ``full`` price, the voucher's ``share`` of it now and the buyer's
    share. ``advance``: the share is on the invoice (the programme pays it); otherwise the buyer pays in full and
    the programme reimburses ``share`` after use."""

    programme: str
    payer: str
    advance: bool
    currency: str
    full: int
    share: int

    @property
    def buyer_share(self) -> int:
        return self.full - self.share if self.advance else self.full


async def _programme(session: AsyncSession, voucher_id: uuid.UUID) -> VoucherProgramme | None:
    voucher = await session.get(Voucher, voucher_id)
    if voucher is None:
        return None
    try:
        return await vouchers.get_programme(session, voucher.programme_id)
    except AppError:
        return None


async def booking_split(session: AsyncSession, booking: Booking) -> VoucherSplit | None:
    """The split of ``booking`` (None without a voucher): the share follows what the buyer keeps paying for
    (``ledger.subsidy_share``, the rule of the redemption and the ledger)."""
    if booking.voucher_id is None:
        return None
    programme = await _programme(session, booking.voucher_id)
    kept = booking.amount - (booking.refund_amount or 0)
    return VoucherSplit(
        programme=programme.name if programme else "",
        payer="",
        advance=booking.voucher_payer_org_id is not None,
        currency=booking.currency,
        full=booking.amount,
        share=ledger.subsidy_share(booking.voucher_share, booking.amount, kept),
    )


async def invoice_split(session: AsyncSession, doc: Mapping[str, Any]) -> VoucherSplit | None:
    """The split of an invoice document (``payments.invoices.invoice_document``): its ``voucher_share`` where the
    document has one (advance vouchers), else the booking's."""
    booking = await BookingRepository(session).get(doc["booking_id"])
    if booking is None:
        return None
    split = await booking_split(session, booking)
    if split is None:
        return None
    payer = doc.get("voucher_payer") or {}
    share = doc.get("voucher_share")
    return VoucherSplit(
        programme=split.programme,
        payer=str(payer.get("name") or ""),
        advance=split.advance,
        currency=str(doc["currency"]),
        full=int(doc["total"]),
        share=int(share) if split.advance and isinstance(share, int) else split.share,
    )
