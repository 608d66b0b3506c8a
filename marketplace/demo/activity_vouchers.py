"""The demo's innovation-voucher programme (issue #18): the Guangdong department's programme, created and its
voucher granted to the demo buyer through the voucher service, as an operator would in the browser."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.vouchers import service as vouchers
from marketplace.vouchers.schemas import ProgrammeCreate, VoucherRequest

if TYPE_CHECKING:
    from marketplace.demo.activity import DemoCast


async def voucher_programme(session: AsyncSession, *, cast: DemoCast, today: date) -> None:
    """A province-wide programme (buyers registered in Guangdong, spent at Guangdong suppliers): 30 % of a booking,
    at most ¥20,000 a booking and ¥100,000 a buyer a year, from a ¥5,000,000 budget, paid in advance; eligible
    buyers who apply are granted at once. The demo buyer (Dongguan) holds a granted voucher."""
    programme = await vouchers.create_programme(
        session,
        cast.programme,
        data=ProgrammeCreate(
            org_id=cast.org_of(cast.programme),
            name="广东省科技创新券 Guangdong innovation vouchers",
            region_prefix="44",
            eligible_kinds=["machine", "lab_service"],
            rate_bp=3000,
            cap_per_booking=2_000_000,
            cap_per_buyer_year=10_000_000,
            budget=500_000_000,
            valid_from=date(today.year, 1, 1),
            valid_until=date(today.year + 1, 12, 31),
            payment_mode="advance",
            auto_grant=True,
        ),
    )
    await vouchers.request_voucher(
        session,
        cast.programme,
        programme_id=programme.id,
        data=VoucherRequest(buyer_org_id=cast.org_of(cast.buyer), note="演示：东莞中小企业 demo SME"),
    )
