"""Reads behind the platform's quarterly tax report: per supplier and currency, the sums of the ledger's
settlement and credit-note journals posted in a period, with the supplier's identity and contact."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

# settled: the settlement journals (key booking:{id}:settle) posted in [start, end), by the booking's supplier:
#   kept = customer_funds_held debits, commission = commission_revenue credits, net = supplier_payable credits.
# refunded: the credit-note journals posted in [start, end) of bookings that settled (kept something): their
#   customer_funds_held debits. A booking that kept nothing (declined, expired, fully refunded) earned nothing
#   and is not reported.
# The contact is the organisation's first owner (its e-mail and name).
_TOTALS = sa.text(
    """
    WITH settled AS (
        SELECT b.supplier_org_id AS org_id, e.currency,
               coalesce(sum(e.amount) FILTER (WHERE e.account = 'customer_funds_held'), 0) AS kept,
               coalesce(-sum(e.amount) FILTER (WHERE e.account = 'commission_revenue'), 0) AS commission,
               coalesce(-sum(e.amount) FILTER (WHERE e.account = 'supplier_payable'), 0) AS net,
               count(DISTINCT j.id) AS settlements
          FROM journals j
          JOIN journal_entries e ON e.journal_id = j.id
          JOIN bookings b ON b.id = j.booking_id
         WHERE j.kind = 'settlement' AND j.key = 'booking:' || j.booking_id::text || '\\:settle'
           AND j.created_at >= :start AND j.created_at < :end
         GROUP BY b.supplier_org_id, e.currency
    ), refunded AS (
        SELECT b.supplier_org_id AS org_id, e.currency, sum(e.amount) AS refunds
          FROM journals j
          JOIN journal_entries e ON e.journal_id = j.id AND e.account = 'customer_funds_held' AND e.amount > 0
          JOIN bookings b ON b.id = j.booking_id
         WHERE j.kind = 'credit_note'
           AND j.created_at >= :start AND j.created_at < :end
           AND EXISTS (SELECT 1 FROM journals s WHERE s.key = 'booking:' || j.booking_id::text || '\\:settle')
         GROUP BY b.supplier_org_id, e.currency
    )
    SELECT o.id AS org_id, o.name, o.legal_name, o.uscc, o.country,
           coalesce(s.currency, r.currency) AS currency,
           coalesce(s.kept, 0) AS kept, coalesce(s.commission, 0) AS commission, coalesce(s.net, 0) AS net,
           coalesce(r.refunds, 0) AS refunds, coalesce(s.settlements, 0) AS settlements,
           owner.email AS contact_email, owner.full_name AS contact_name
      FROM settled s
      FULL JOIN refunded r ON r.org_id = s.org_id AND r.currency = s.currency
      JOIN organisations o ON o.id = coalesce(s.org_id, r.org_id)
      LEFT JOIN LATERAL (
            SELECT u.email, u.full_name
              FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.org_id = o.id AND m.role = 'owner'
             ORDER BY m.created_at, u.id
             LIMIT 1
      ) owner ON true
     ORDER BY coalesce(o.legal_name, o.name), o.id, currency
    """
).bindparams(
    sa.bindparam("start", type_=sa.DateTime(timezone=True)),
    sa.bindparam("end", type_=sa.DateTime(timezone=True)),
)


class TaxReportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def supplier_totals(self, *, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """One row per supplier and currency with ledger sums of the period, by the supplier's name."""
        rows = await self.session.execute(_TOTALS, {"start": start, "end": end})
        return [dict(row) for row in rows.mappings()]
