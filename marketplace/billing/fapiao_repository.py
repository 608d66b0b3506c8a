"""Reads behind the fapiao export: a supplier's settlement journals in a period with what the ledger says about
each (the kept amount, the commission, the supplier's net), the booking, its listing and its platform invoice,
and the parties' names and USCCs."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

# One row per settlement journal (kind 'settlement', key booking:{id}:settle) of the supplier's bookings posted in
# [start, end): kept = the customer_funds_held debit (what the buyer finally pays), commission = the
# commission_revenue credit, net = the supplier_payable credit. Ordered by posting time.
_SETTLEMENTS = sa.text(
    """
    SELECT j.id AS journal_id, j.booking_id, j.created_at AS settled_at,
           b.buyer_org_id, b.supplier_org_id, b.kind AS booking_kind,
           a.title, a.process_codes,
           i.id AS invoice_id, i.number AS invoice_number, i.line_items, i.tax_rate_bp, i.total AS invoice_total,
           min(e.currency) AS currency,
           coalesce(sum(e.amount) FILTER (WHERE e.account = 'customer_funds_held'), 0) AS kept,
           coalesce(-sum(e.amount) FILTER (WHERE e.account = 'commission_revenue'), 0) AS commission,
           coalesce(-sum(e.amount) FILTER (WHERE e.account = 'supplier_payable'), 0) AS net
      FROM journals j
      JOIN journal_entries e ON e.journal_id = j.id
      JOIN bookings b ON b.id = j.booking_id
      JOIN assets a ON a.id = b.asset_id
      -- A booking paid in instalments (deposit, milestones) has several invoices: their numbers together, their
      -- lines only for a single invoice (instalments get one lump-sum fapiao line for the kept amount).
      LEFT JOIN LATERAL (
          SELECT (array_agg(iv.id ORDER BY iv.instalment DESC))[1] AS id,
                 string_agg(iv.number, ', ' ORDER BY iv.instalment) AS number,
                 CASE WHEN count(*) = 1 THEN (array_agg(iv.line_items))[1] END AS line_items,
                 max(iv.tax_rate_bp) AS tax_rate_bp,
                 sum(iv.total) AS total
            FROM invoices iv
           WHERE iv.booking_id = b.id
      ) i ON true
     WHERE j.kind = 'settlement'
       AND j.key = 'booking:' || j.booking_id::text || '\\:settle'
       AND b.supplier_org_id = :org_id
       AND j.created_at >= :start AND j.created_at < :end
     GROUP BY j.id, b.id, a.id, i.id, i.number, i.line_items, i.tax_rate_bp, i.total
     ORDER BY j.created_at, j.id
    """
).bindparams(
    sa.bindparam("org_id", type_=sa.Uuid()),
    sa.bindparam("start", type_=sa.DateTime(timezone=True)),
    sa.bindparam("end", type_=sa.DateTime(timezone=True)),
)

_PARTIES = sa.text("SELECT id, name, legal_name, uscc FROM organisations WHERE id = ANY(:ids)").bindparams(
    sa.bindparam("ids", type_=sa.ARRAY(sa.Uuid()))
)


class FapiaoRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def settlements(self, org_id: uuid.UUID, *, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """The supplier's settlement journals posted in [start, end) with their ledger amounts, oldest first."""
        rows = await self.session.execute(_SETTLEMENTS, {"org_id": org_id, "start": start, "end": end})
        return [dict(row) for row in rows.mappings()]

    async def parties(self, org_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
        """id -> {name, legal_name, uscc} of the organisations."""
        ids = list(set(org_ids))
        if not ids:
            return {}
        rows = await self.session.execute(_PARTIES, {"ids": ids})
        return {row["id"]: dict(row) for row in rows.mappings()}
