"""All SQL of a programme's monthly claims and statistics (``claims.py``, ``stats.py``).

Shell tables (bookings, organisations, assets, invoices, inspection reports) are read through lightweight
``sa.table`` clauses: the evidence of a claim line is a read-only copy of what they held when it was built.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.vouchers.models import (
    COUNTING_SQL,
    ClaimStatus,
    LineStatus,
    RedemptionStatus,
    VoucherClaim,
    VoucherClaimLine,
    VoucherProgramme,
    VoucherRedemption,
)

# One row of evidence per booking: the parties, the service, the times, the invoice and the lab's report (if any).
_EVIDENCE = sa.text(
    """
    SELECT b.id AS booking_id, b.kind AS booking_kind, b.amount, b.refund_amount, b.currency,
           b.completed_at, b.settled_at, b.result_reference, b.created_at AS booked_at,
           s.id AS supplier_id, s.name AS supplier_name, s.legal_name AS supplier_legal_name, s.uscc AS supplier_uscc,
           u.id AS buyer_id, u.name AS buyer_name, u.legal_name AS buyer_legal_name, u.uscc AS buyer_uscc,
           a.title AS service_title, a.kind AS service_kind, a.process_codes,
           (SELECT string_agg(i.number, ', ' ORDER BY i.instalment) FROM invoices i WHERE i.booking_id = b.id)
               AS invoice_number,
           r.id AS report_id, r.verdict AS report_verdict, r.tested_on AS report_tested_on,
           r.test_standard AS report_standard,
           (SELECT v.hash FROM verifiable_documents v
             WHERE r.pdf_document_id IS NOT NULL AND v.document_id = r.pdf_document_id LIMIT 1) AS report_hash
      FROM bookings b
      JOIN organisations s ON s.id = b.supplier_org_id
      JOIN organisations u ON u.id = b.buyer_org_id
      JOIN assets a ON a.id = b.asset_id
      LEFT JOIN inspection_reports r ON r.lab_booking_id = b.id
     WHERE b.id = ANY(:ids)
    """
).bindparams(sa.bindparam("ids", type_=sa.ARRAY(sa.Uuid())))

# Statistics: counting redemptions grouped by the service's kind / process family / booking month (China time).
_BY_KIND = sa.text(
    f"""
    SELECT a.kind AS key, count(*) AS bookings, coalesce(sum(r.amount), 0) AS amount
      FROM voucher_redemptions r JOIN bookings b ON b.id = r.booking_id JOIN assets a ON a.id = b.asset_id
     WHERE r.programme_id = :pid AND r.{COUNTING_SQL}
     GROUP BY a.kind ORDER BY a.kind
    """
)
_BY_FAMILY = sa.text(
    f"""
    SELECT f.family AS key, count(*) AS bookings, coalesce(sum(r.amount), 0) AS amount
      FROM voucher_redemptions r JOIN bookings b ON b.id = r.booking_id JOIN assets a ON a.id = b.asset_id
      CROSS JOIN LATERAL (SELECT DISTINCT split_part(code, '.', 1) AS family FROM unnest(a.process_codes) AS code) f
     WHERE r.programme_id = :pid AND r.{COUNTING_SQL}
     GROUP BY f.family ORDER BY f.family
    """
)
_BY_MONTH = sa.text(
    f"""
    SELECT to_char(r.created_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') AS key, count(*) AS bookings,
           coalesce(sum(r.amount), 0) AS amount
      FROM voucher_redemptions r
     WHERE r.programme_id = :pid AND r.{COUNTING_SQL}
     GROUP BY 1 ORDER BY 1
    """
)
_TOTALS = sa.text(
    f"""
    SELECT coalesce(sum(amount) FILTER (WHERE {COUNTING_SQL}), 0) AS used,
           count(DISTINCT buyer_org_id) FILTER (WHERE {COUNTING_SQL}) AS firms_served,
           count(*) FILTER (WHERE {COUNTING_SQL}) AS bookings
      FROM voucher_redemptions WHERE programme_id = :pid
    """
)


class ClaimRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- programmes -------------------------------------------------------------------------------------

    async def programme(self, programme_id: uuid.UUID, *, for_update: bool = False) -> VoucherProgramme | None:
        stmt = sa.select(VoucherProgramme).where(col(VoucherProgramme.id) == programme_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def org_verified(self, org_id: uuid.UUID) -> bool:
        status = await self.session.scalar(
            sa.text("SELECT verification_status FROM organisations WHERE id = :id"), {"id": org_id}
        )
        return status == "verified"

    async def org(self, org_id: uuid.UUID) -> dict[str, Any]:
        """The name (legal name first) and USCC of an organisation, for documents."""
        row = (
            (
                await self.session.execute(
                    sa.text("SELECT coalesce(legal_name, name) AS name, uscc FROM organisations WHERE id = :id"),
                    {"id": org_id},
                )
            )
            .mappings()
            .one()
        )
        return dict(row)

    async def programmes_with_claimable(self, before: datetime) -> list[uuid.UUID]:
        """Active or closed programmes with settled redemptions (settled before ``before``) not on a claim."""
        claimable = sa.select(col(VoucherRedemption.programme_id)).where(*self._claimable(before))
        stmt = (
            sa.select(col(VoucherProgramme.id))
            .where(
                col(VoucherProgramme.status).in_(("active", "closed")),
                col(VoucherProgramme.id).in_(claimable),
            )
            .order_by(col(VoucherProgramme.id))
        )
        return list((await self.session.execute(stmt)).scalars().all())

    # -- redemptions ------------------------------------------------------------------------------------

    @staticmethod
    def _claimable(before: datetime) -> list[Any]:
        on_a_claim = sa.select(col(VoucherClaimLine.redemption_id))
        return [
            col(VoucherRedemption.status) == RedemptionStatus.settled,
            col(VoucherRedemption.amount) > 0,
            col(VoucherRedemption.settled_at) < before,
            col(VoucherRedemption.id).not_in(on_a_claim),
        ]

    async def claimable(self, programme_id: uuid.UUID, before: datetime) -> list[VoucherRedemption]:
        """The programme's redemptions a claim closing at ``before`` takes, locked, oldest settlement first."""
        stmt = (
            sa.select(VoucherRedemption)
            .where(col(VoucherRedemption.programme_id) == programme_id, *self._claimable(before))
            .order_by(col(VoucherRedemption.settled_at), col(VoucherRedemption.id))
            .with_for_update()
        )
        return list((await self.session.execute(stmt)).scalars().all())

    async def redemption(self, redemption_id: uuid.UUID, *, for_update: bool = False) -> VoucherRedemption | None:
        stmt = sa.select(VoucherRedemption).where(col(VoucherRedemption.id) == redemption_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def payment_modes(self, redemption_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
        stmt = sa.select(col(VoucherRedemption.id), col(VoucherRedemption.payment_mode)).where(
            col(VoucherRedemption.id).in_(redemption_ids)
        )
        return {rid: mode for rid, mode in (await self.session.execute(stmt)).all()}

    async def evidence(self, booking_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
        rows = await self.session.execute(_EVIDENCE, {"ids": booking_ids})
        return {row["booking_id"]: dict(row) for row in rows.mappings().all()}

    # -- claims -----------------------------------------------------------------------------------------

    async def add(self, obj: Any) -> Any:
        self.session.add(obj)
        await self.session.flush()
        return obj

    async def claim_for_month(self, programme_id: uuid.UUID, month: date) -> VoucherClaim | None:
        stmt = sa.select(VoucherClaim).where(
            col(VoucherClaim.programme_id) == programme_id, col(VoucherClaim.month) == month
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def claims(self, programme_id: uuid.UUID) -> list[VoucherClaim]:
        stmt = (
            sa.select(VoucherClaim)
            .where(col(VoucherClaim.programme_id) == programme_id)
            .order_by(col(VoucherClaim.month).desc())
        )
        return list((await self.session.execute(stmt)).scalars().all())

    async def claim(
        self, programme_id: uuid.UUID, claim_id: uuid.UUID, *, for_update: bool = False
    ) -> VoucherClaim | None:
        stmt = sa.select(VoucherClaim).where(
            col(VoucherClaim.id) == claim_id, col(VoucherClaim.programme_id) == programme_id
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def lines(self, claim_id: uuid.UUID) -> list[VoucherClaimLine]:
        stmt = (
            sa.select(VoucherClaimLine)
            .where(col(VoucherClaimLine.claim_id) == claim_id)
            .order_by(col(VoucherClaimLine.evidence)["settled_at"].astext, col(VoucherClaimLine.id))
        )
        return list((await self.session.execute(stmt)).scalars().all())

    async def line(self, claim_id: uuid.UUID, line_id: uuid.UUID) -> VoucherClaimLine | None:
        stmt = (
            sa.select(VoucherClaimLine)
            .where(col(VoucherClaimLine.id) == line_id, col(VoucherClaimLine.claim_id) == claim_id)
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def pending_lines(self, claim_id: uuid.UUID) -> int:
        stmt = sa.select(sa.func.count()).where(
            col(VoucherClaimLine.claim_id) == claim_id, col(VoucherClaimLine.status) == LineStatus.pending
        )
        return int(await self.session.scalar(stmt) or 0)

    # -- statistics -------------------------------------------------------------------------------------

    async def totals(self, programme_id: uuid.UUID) -> dict[str, int]:
        row = (await self.session.execute(_TOTALS, {"pid": programme_id})).mappings().one()
        paid = await self.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(col(VoucherClaim.approved)), 0)).where(
                col(VoucherClaim.programme_id) == programme_id, col(VoucherClaim.status) == ClaimStatus.paid
            )
        )
        return {
            "used": int(row["used"]),
            "firms_served": int(row["firms_served"]),
            "bookings": int(row["bookings"]),
            "paid": int(paid or 0),
        }

    async def breakdown(self, programme_id: uuid.UUID, by: str) -> list[dict[str, Any]]:
        """Counting redemptions grouped ``by`` kind, family or month: [{key, bookings, amount}]."""
        query = {"kind": _BY_KIND, "family": _BY_FAMILY, "month": _BY_MONTH}[by]
        rows = (await self.session.execute(query, {"pid": programme_id})).mappings().all()
        return [{"key": r["key"], "bookings": int(r["bookings"]), "amount": int(r["amount"])} for r in rows]
