"""SQL of the conformance signals (issue #17): first-pass yield of a factory, and the observatory's conformance
rate and lab utilisation. Computed from the inspection and booking tables at query time (no rollup table)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.analytics.repository import COUNTED_STATUSES, LISTED_ASSET_STATUS

_IN_COUNTED = "(" + ", ".join(f"'{s}'" for s in COUNTED_STATUSES) + ")"

# Per produced lot (production booking), its first report that gates the payment: a rework's later reports
# never replace it.
_FIRST_GATING = """
SELECT DISTINCT ON (i.production_booking_id) i.production_booking_id, r.verdict, r.created_at
FROM inspection_reports r JOIN inspections i ON i.id = r.inspection_id
WHERE i.supplier_org_id = :org AND r.gates_payment
ORDER BY i.production_booking_id, r.created_at, r.id"""


class ConformanceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def first_pass(
        self, org_id: uuid.UUID, *, since: datetime | None = None, until: datetime | None = None
    ) -> tuple[int, int]:
        """``(inspected lots, accepted at the first gating report)`` of a factory; with ``since``/``until``,
        the lots whose first gating report was made in ``[since, until)``."""
        result = await self.session.execute(
            sa.text(
                "SELECT count(*), count(*) FILTER (WHERE verdict = 'accepted') FROM (" + _FIRST_GATING + ") f"
                " WHERE (CAST(:since AS timestamptz) IS NULL OR f.created_at >= CAST(:since AS timestamptz))"
                " AND (CAST(:until AS timestamptz) IS NULL OR f.created_at < CAST(:until AS timestamptz))"
            ),
            {"org": org_id, "since": since, "until": until},
        )
        inspected, accepted = result.one()
        return int(inspected), int(accepted)

    async def gating_reports(self, m0: datetime, m1: datetime) -> list[dict[str, Any]]:
        """Reports that gate the payment made in ``[m0, m1)``, with the region (site) and process family of the
        production listing, and the factory, lab and buyer behind each."""
        result = await self.session.execute(
            sa.text(
                "SELECT s.region_code, split_part(a.process_codes[1], '.', 1) AS process_family, r.verdict,"
                " i.supplier_org_id, i.lab_org_id, i.buyer_org_id"
                " FROM inspection_reports r JOIN inspections i ON i.id = r.inspection_id"
                " JOIN bookings b ON b.id = i.production_booking_id"
                " JOIN assets a ON a.id = b.asset_id JOIN sites s ON s.id = a.site_id"
                " WHERE r.gates_payment AND r.created_at >= :m0 AND r.created_at < :m1"
            ),
            {"m0": m0, "m1": m1},
        )
        return [dict(r._mapping) for r in result.all()]

    async def listed_labs(self, m1: datetime) -> list[dict[str, Any]]:
        """Lab services listed before ``m1`` (published now), with what their sample capacity needs."""
        result = await self.session.execute(
            sa.text(
                "SELECT a.id, a.org_id, s.region_code, split_part(a.process_codes[1], '.', 1) AS process_family,"
                " a.weekly_plan, s.timezone, coalesce(a.daily_sample_capacity, 0) AS capacity"
                " FROM assets a JOIN sites s ON s.id = a.site_id"
                " WHERE a.kind = 'lab_service' AND a.status = :status AND a.published_at < :m1"
            ),
            {"status": LISTED_ASSET_STATUS, "m1": m1},
        )
        return [dict(r._mapping) for r in result.all()]

    async def lab_bookings(self, d0: date, d1: date) -> list[dict[str, Any]]:
        """Counted lab bookings dropped off in ``[d0, d1)``: samples, lab region and family, lab and buyer."""
        result = await self.session.execute(
            sa.text(
                "SELECT s.region_code, split_part(a.process_codes[1], '.', 1) AS process_family,"
                " coalesce(b.samples, 0) AS samples, b.supplier_org_id, b.buyer_org_id"
                " FROM bookings b JOIN assets a ON a.id = b.asset_id JOIN sites s ON s.id = a.site_id"
                f" WHERE b.kind = 'lab_service' AND b.status IN {_IN_COUNTED}"
                " AND b.drop_off_date >= :d0 AND b.drop_off_date < :d1"
            ),
            {"d0": d0, "d1": d1},
        )
        return [dict(r._mapping) for r in result.all()]
