"""A voucher spent on a booking (the redeemer ``hooks.redeem_voucher`` calls) and the redemption following the
booking's later moves (an ``after_move`` reaction). Both are registered by ``gate.py``.

The share is computed and inserted under ``SELECT ... FOR UPDATE`` of the programme row: every redemption of a
programme is serialised, so neither its budget nor a buyer's yearly cap (per programme) is ever overspent by
concurrent bookings (tests/vouchers/test_caps_race.py, with its control).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from listings.models import Asset, Site
from marketplace.bookings.models import Booking
from marketplace.vouchers import eligibility as rules
from marketplace.vouchers.eligibility import (
    ProgrammeNotFound,
    VoucherExhausted,
    VoucherInvoiceOnly,
    VoucherNotEligible,
    VoucherNotFound,
    VoucherNotGranted,
)
from marketplace.vouchers.models import (
    PaymentMode,
    RedemptionStatus,
    Voucher,
    VoucherProgramme,
    VoucherRedemption,
    VoucherStatus,
)
from marketplace.vouchers.repository import VoucherRepository

RELEASING = ("decline", "expire")
SETTLING = ("cancel", "confirm", "resolve")


async def redeem(
    session: AsyncSession, booking: Booking, *, voucher_id: uuid.UUID, asset: Asset, site: Site
) -> tuple[int, uuid.UUID | None]:
    """Reserve the voucher's share of ``booking`` (inserted, not yet invoiced); returns the share and, when the
    programme pays in advance, its organisation (None: after use, the buyer pays in full)."""
    voucher = await VoucherRepository(session).voucher(voucher_id)
    if voucher is None or voucher.buyer_org_id != booking.buyer_org_id:
        raise VoucherNotFound("voucher_id: no voucher of the booking's buyer has this id.")
    if voucher.status != VoucherStatus.granted:
        raise VoucherNotGranted(f"voucher_id: the voucher is {voucher.status}, not granted.")
    redemption, programme = await reserve(session, booking, voucher=voucher, asset=asset, site=site)
    return redemption.amount, programme.org_id if programme.payment_mode == PaymentMode.advance else None


async def reserve(
    session: AsyncSession, booking: Booking, *, voucher: Voucher, asset: Asset, site: Site, lock: bool = True
) -> tuple[VoucherRedemption, VoucherProgramme]:
    """Check the voucher against the booking and insert its redemption, under the programme's row lock.

    ``lock=False`` only for the race test's control, which shows what the lock prevents."""
    repo = VoucherRepository(session)
    programme = await repo.programme(voucher.programme_id, for_update=lock)
    if programme is None:  # voucher_programmes.id is referenced ON DELETE RESTRICT
        raise ProgrammeNotFound("Programme not found.")
    if lock:  # a revocation committed meanwhile counts (lock order: the programme, then the voucher)
        current = await repo.voucher(voucher.id, for_update=True)
        if current is None or current.status != VoucherStatus.granted:
            raise VoucherNotGranted("voucher_id: the voucher was revoked.")
    await _check_eligible(repo, programme, booking=booking, asset=asset, site=site)
    if programme.payment_mode == PaymentMode.advance and booking.payment_method == "stripe":
        raise VoucherInvoiceOnly(
            "voucher_id: this programme pays its share on the invoice; vouchers of it are used with the "
            "bank-transfer (invoice) payment, not by card."
        )
    year = rules.china_day(booking.created_at).year
    budget_used = await repo.used_by_programme(programme.id)
    buyer_used = (await repo.used_by_buyer(booking.buyer_org_id, year=year, programme_ids=[programme.id]))[programme.id]
    amount = rules.share(
        booking.amount,
        rate_bp=programme.rate_bp,
        cap_per_booking=programme.cap_per_booking,
        buyer_left=programme.cap_per_buyer_year - buyer_used,
        budget_left=programme.budget - budget_used,
    )
    if amount <= 0:
        raise VoucherExhausted(
            "voucher_id: nothing is left on this voucher: the buyer's yearly cap or the programme's budget is used up.",
            extra={
                "buyer_cap_left": max(programme.cap_per_buyer_year - buyer_used, 0),
                "budget_left": max(programme.budget - budget_used, 0),
            },
        )
    redemption = VoucherRedemption(
        voucher_id=voucher.id,
        programme_id=programme.id,
        booking_id=booking.id,
        buyer_org_id=booking.buyer_org_id,
        supplier_org_id=booking.supplier_org_id,
        year=year,
        currency=booking.currency,
        booked_amount=amount,
        amount=amount,
        payment_mode=programme.payment_mode,
        status=RedemptionStatus.active,
    )
    await repo.add(redemption)
    return redemption, programme


async def _check_eligible(
    repo: VoucherRepository, programme: VoucherProgramme, *, booking: Booking, asset: Asset, site: Site
) -> None:
    reason = rules.terms_reason(
        status=programme.status,
        valid_from=programme.valid_from,
        valid_until=programme.valid_until,
        currency=programme.currency,
        booking_currency=booking.currency,
        today=rules.china_day(booking.created_at),
    ) or rules.service_reason(
        programme.eligible_kinds, programme.eligible_families, kind=asset.kind, process_codes=asset.process_codes
    )
    if reason is None and not site.region_code.startswith(programme.region_prefix):
        # Only now the partners' regions (one more statement, for the G60 case only).
        reason = rules.spend_reason(
            programme.region_prefix,
            site_region=site.region_code,
            partner_prefixes=await repo.partner_prefixes(programme.id),
        )
    if reason is not None:
        raise VoucherNotEligible(reason)


async def follow(session: AsyncSession, booking: Booking, *, action: str, role: str) -> None:
    """The redemption follows the booking: released when it is declined, expires or is cancelled with nothing
    kept; settled at the share of what the buyer keeps paying for when it settles, is resolved or is cancelled
    with a fee. A booking without a voucher costs no statement at all (the hot path)."""
    if booking.voucher_id is None or (action not in RELEASING and action not in SETTLING):
        return
    redemption = await VoucherRepository(session).redemption_of_booking(booking.id)
    if redemption is None or redemption.status != RedemptionStatus.active:
        return
    kept = booking.amount - booking.refund_amount
    if action == "cancel" and booking.hold_expires_at is not None:
        kept = 0  # cancelled while held: never paid, its invoice is released (a paid booking's hold is cleared)
    if action in RELEASING or (action == "cancel" and kept <= 0):
        redemption.status = RedemptionStatus.released
        redemption.amount = 0
    else:
        redemption.status = RedemptionStatus.settled
        redemption.amount = rules.subsidy_share(redemption.booked_amount, booking.amount, kept)
        redemption.settled_at = datetime.now(UTC)
    await session.flush()
