"""All SQL of analytics. The observatory's heavy lifting is set-based: one pass over the month's bookings per
rollup table, grouped by site region code and process family (``split_part(process_codes[1], '.', 1)``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.analytics.models import ObserverGrant
from marketplace.bookings.models import BLOCKING

# Bookings that hold (or held) the asset's time and were not called off: the blocking statuses.
COUNTED_STATUSES: tuple[str, ...] = tuple(str(s) for s in BLOCKING)
# Journals in which buyer money reaches the platform (see docs/payments.md): bank receipts and card captures.
PAYMENT_JOURNAL_KINDS = ("payment_received", "card_captured")
CLEARING_ACCOUNTS = ("clearing_bank", "clearing_stripe")
LISTED_ASSET_STATUS = "published"

_IN_COUNTED = "(" + ", ".join(f"'{s}'" for s in COUNTED_STATUSES) + ")"
_IN_KINDS = "(" + ", ".join(f"'{s}'" for s in PAYMENT_JOURNAL_KINDS) + ")"
_IN_CLEARING = "(" + ", ".join(f"'{s}'" for s in CLEARING_ACCOUNTS) + ")"

# A listing's process family: the first segment of its first process code.
_FAMILY = "split_part(a.process_codes[1], '.', 1)"

# ``asset_dim`` is read by every statement and, used more than once, materialised: it holds only the narrow
# columns the joins need (not the weekly plan), so that at a million listings it stays small.
_CTES = f"""
asset_dim AS (
    SELECT a.id AS asset_id, a.org_id, a.kind, coalesce(a.accredited, false) AS accredited,
           coalesce(a.test_standard, '') AS test_standard, s.region_code,
           {_FAMILY} AS family
    FROM assets a JOIN sites s ON s.id = a.site_id
),
org_region AS (
    SELECT o.id AS org_id,
           coalesce(fs.region_code, CASE WHEN o.uscc IS NOT NULL THEN substr(o.uscc, 3, 6) END,
                    o.country) AS region_code
    FROM organisations o
    LEFT JOIN (SELECT org_id, min(region_code) AS region_code FROM sites GROUP BY org_id) fs ON fs.org_id = o.id
),
counted AS (
    SELECT b.asset_id, b.kind, b.supplier_org_id, b.buyer_org_id, coalesce(b.samples, 0) AS samples,
           CASE WHEN b.kind = 'machine'
                THEN extract(epoch FROM least(b.end_at, CAST(:m1 AS timestamptz))
                                        - greatest(b.start_at, CAST(:m0 AS timestamptz))) / 3600.0
                ELSE 0 END AS hours,
           (b.kind = 'lab_service' OR b.start_at >= CAST(:m0 AS timestamptz)) AS starts_here
    FROM bookings b
    WHERE b.status IN {_IN_COUNTED}
      AND ((b.kind = 'machine' AND b.start_at < CAST(:m1 AS timestamptz) AND b.end_at > CAST(:m0 AS timestamptz))
           OR (b.kind = 'lab_service' AND b.drop_off_date >= CAST(:d0 AS date) AND b.drop_off_date < CAST(:d1 AS date)))
),
payments AS (
    SELECT coalesce(d.region_code, 'unassigned') AS region_code, coalesce(d.family, 'unassigned') AS family,
           e.currency, e.amount, b.supplier_org_id, b.buyer_org_id
    FROM journal_entries e
    JOIN journals j ON j.id = e.journal_id
    LEFT JOIN bookings b ON b.id = j.booking_id
    LEFT JOIN asset_dim d ON d.asset_id = b.asset_id
    WHERE j.kind IN {_IN_KINDS} AND e.account IN {_IN_CLEARING} AND e.amount > 0
      AND j.created_at >= CAST(:m0 AS timestamptz) AND j.created_at < CAST(:m1 AS timestamptz)
)"""

# The listed machines' offered hours: each distinct (weekly plan, time zone) pair was expanded once in Python; its
# text is cast to jsonb once here (not once per machine and pair) and joined by value, and a machine with
# exceptions in the month takes its own figure.
_CELLS_CTES = f"""
, plan_hours AS MATERIALIZED (
    SELECT CAST(plan AS jsonb) AS plan, tz, hours
    FROM unnest(CAST(:plan_json AS text[]), CAST(:plan_tz AS text[]), CAST(:plan_hours AS float8[]))
         AS p(plan, tz, hours)
),
listed AS (
    SELECT s.region_code, {_FAMILY} AS family, a.org_id, coalesce(o.hours, p.hours, 0)::float8 AS hours
    FROM assets a JOIN sites s ON s.id = a.site_id
    LEFT JOIN plan_hours p ON p.plan = a.weekly_plan AND p.tz = s.timezone
    LEFT JOIN unnest(CAST(:ov_ids AS uuid[]), CAST(:ov_hours AS float8[])) AS o(asset_id, hours) ON o.asset_id = a.id
    WHERE a.kind = 'machine' AND a.status = '{LISTED_ASSET_STATUS}' AND a.published_at < CAST(:m1 AS timestamptz)
),
facts AS (
    SELECT region_code, family, hours AS listed_hours, 0::float8 AS booked_hours,
           0::int AS bookings, 0::int AS lab_tests, 0::int AS lab_samples, 0::int AS accredited_tests,
           0::int AS requests, 0::int AS requests_closed, 0::int AS requests_booked, NULL::float8 AS match_minutes,
           NULL::uuid AS active_supplier, NULL::uuid AS active_buyer, org_id AS supplier, NULL::uuid AS buyer
    FROM listed
    UNION ALL
    SELECT d.region_code, d.family, 0, c.hours, c.starts_here::int, (c.kind = 'lab_service')::int,
           CASE WHEN c.kind = 'lab_service' THEN c.samples ELSE 0 END,
           (c.kind = 'lab_service' AND d.accredited)::int, 0, 0, 0, NULL,
           c.supplier_org_id, c.buyer_org_id, c.supplier_org_id, c.buyer_org_id
    FROM counted c JOIN asset_dim d ON d.asset_id = c.asset_id
    UNION ALL
    SELECT coalesce(rs.region_code, orr.region_code, 'unknown'), split_part(r.process_code, '.', 1), 0, 0, 0, 0, 0, 0,
           1, (r.status <> 'open')::int, (r.status = 'booked')::int,
           extract(epoch FROM fb.first_at - r.created_at) / 60.0, NULL, NULL, NULL, r.buyer_org_id
    FROM requests r
    LEFT JOIN sites rs ON rs.id = r.site_id
    LEFT JOIN org_region orr ON orr.org_id = r.buyer_org_id
    LEFT JOIN LATERAL (SELECT min(b.created_at) AS first_at FROM bookings b WHERE b.request_id = r.id) fb ON true
    WHERE r.created_at >= CAST(:m0 AS timestamptz) AND r.created_at < CAST(:m1 AS timestamptz)
    UNION ALL
    SELECT region_code, family, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, supplier_org_id, buyer_org_id
    FROM payments
)"""

_CELLS_SELECT = """
SELECT CAST(:month AS date) AS month, region_code, family AS process_family,
       sum(listed_hours) AS listed_hours, sum(booked_hours) AS booked_hours, sum(bookings) AS bookings,
       sum(lab_tests) AS lab_tests, sum(lab_samples) AS lab_samples, sum(accredited_tests) AS accredited_tests,
       sum(requests) AS requests, sum(requests_closed) AS requests_closed, sum(requests_booked) AS requests_booked,
       coalesce(array_agg(match_minutes ORDER BY match_minutes) FILTER (WHERE match_minutes IS NOT NULL),
                '{}') AS match_minutes,
       coalesce(array_agg(DISTINCT active_supplier) FILTER (WHERE active_supplier IS NOT NULL),
                '{}') AS active_supplier_org_ids,
       coalesce(array_agg(DISTINCT active_buyer) FILTER (WHERE active_buyer IS NOT NULL), '{}') AS active_buyer_org_ids,
       coalesce(array_agg(DISTINCT supplier) FILTER (WHERE supplier IS NOT NULL), '{}') AS supplier_org_ids,
       coalesce(array_agg(DISTINCT buyer) FILTER (WHERE buyer IS NOT NULL), '{}') AS buyer_org_ids
FROM facts GROUP BY region_code, family"""

_GMV_SELECT = """
SELECT CAST(:month AS date) AS month, region_code, family AS process_family, currency, sum(amount)::bigint AS amount
FROM payments GROUP BY region_code, family, currency"""

_FLOWS_SELECT = """
SELECT CAST(:month AS date) AS month, coalesce(orr.region_code, 'unknown') AS buyer_region,
       d.region_code AS supplier_region, d.family AS process_family,
       sum(c.starts_here::int) AS bookings, sum(c.hours) AS booked_hours,
       array_agg(DISTINCT c.supplier_org_id) AS supplier_org_ids, array_agg(DISTINCT c.buyer_org_id) AS buyer_org_ids
FROM counted c JOIN asset_dim d ON d.asset_id = c.asset_id
LEFT JOIN org_region orr ON orr.org_id = c.buyer_org_id
GROUP BY 2, 3, 4"""

_LAB_SELECT = """
SELECT CAST(:month AS date) AS month, d.region_code, d.test_standard, count(*) AS tests, sum(c.samples) AS samples,
       count(*) FILTER (WHERE d.accredited) AS accredited_tests,
       array_agg(DISTINCT c.supplier_org_id) AS supplier_org_ids, array_agg(DISTINCT c.buyer_org_id) AS buyer_org_ids
FROM counted c JOIN asset_dim d ON d.asset_id = c.asset_id
WHERE c.kind = 'lab_service'
GROUP BY 2, 3"""

CELL_COLUMNS = (
    "month", "region_code", "process_family", "listed_hours", "booked_hours", "bookings", "lab_tests", "lab_samples",
    "accredited_tests", "requests", "requests_closed", "requests_booked", "match_minutes", "active_supplier_org_ids",
    "active_buyer_org_ids", "supplier_org_ids", "buyer_org_ids",
)  # fmt: skip
GMV_COLUMNS = ("month", "region_code", "process_family", "currency", "amount")
FLOW_COLUMNS = (
    "month", "buyer_region", "supplier_region", "process_family", "bookings", "booked_hours", "supplier_org_ids",
    "buyer_org_ids",
)  # fmt: skip
LAB_COLUMNS = (
    "month", "region_code", "test_standard", "tests", "samples", "accredited_tests", "supplier_org_ids",
    "buyer_org_ids",
)  # fmt: skip

# kind -> (table, extra CTEs, final SELECT, columns)
QUERIES: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "cells": ("observatory_cells", _CELLS_CTES, _CELLS_SELECT, CELL_COLUMNS),
    "gmv": ("observatory_gmv", "", _GMV_SELECT, GMV_COLUMNS),
    "flows": ("observatory_flows", "", _FLOWS_SELECT, FLOW_COLUMNS),
    "lab_tests": ("observatory_lab_tests", "", _LAB_SELECT, LAB_COLUMNS),
}


@dataclass(frozen=True)
class MonthParams:
    month: date
    m0: datetime
    m1: datetime
    plan_json: list[str]
    plan_tz: list[str]
    plan_hours: list[float]
    ov_ids: list[uuid.UUID]
    ov_hours: list[float]

    def bind(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "m0": self.m0,
            "m1": self.m1,
            "d0": self.m0.date(),
            "d1": self.m1.date(),
            "plan_json": self.plan_json,
            "plan_tz": self.plan_tz,
            "plan_hours": self.plan_hours,
            "ov_ids": self.ov_ids,
            "ov_hours": self.ov_hours,
        }


class AnalyticsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- offered hours inputs -----------------------------------------------------------------------------

    async def distinct_plans(self, m1: datetime) -> list[tuple[str, str]]:
        """Distinct (weekly plan, site time zone) pairs of listed machines: expanded once per pair."""
        rows = await self.session.execute(
            sa.text(
                "SELECT DISTINCT a.weekly_plan::text, s.timezone FROM assets a JOIN sites s ON s.id = a.site_id"
                " WHERE a.kind = 'machine' AND a.status = :status AND a.published_at < :m1"
            ),
            {"status": LISTED_ASSET_STATUS, "m1": m1},
        )
        return [(r[0], r[1]) for r in rows.all()]

    async def listed_machines_with_exceptions(self, m0: datetime, m1: datetime) -> list[dict[str, Any]]:
        """Listed machines with availability exceptions overlapping the window, with those exceptions."""
        rows = await self.session.execute(
            sa.text(
                "SELECT a.id, a.weekly_plan, s.timezone, e.starts_at, e.ends_at, e.available"
                " FROM availability_exceptions e JOIN assets a ON a.id = e.asset_id JOIN sites s ON s.id = a.site_id"
                " WHERE a.kind = 'machine' AND a.status = :status AND a.published_at < :m1"
                " AND e.starts_at < :m1 AND e.ends_at > :m0 ORDER BY a.id"
            ),
            {"status": LISTED_ASSET_STATUS, "m0": m0, "m1": m1},
        )
        out: dict[uuid.UUID, dict[str, Any]] = {}
        for asset_id, plan, tz, s, e, available in rows.all():
            item = out.setdefault(asset_id, {"asset_id": asset_id, "plan": plan, "tz": tz, "exceptions": []})
            item["exceptions"].append((s, e, available))
        return list(out.values())

    # -- rollups ------------------------------------------------------------------------------------------

    async def compute(self, kind: str, params: MonthParams) -> list[dict[str, Any]]:
        """The month's rows of one rollup table, computed from the raw rows (nothing stored)."""
        _table, ctes, select, _cols = QUERIES[kind]
        result = await self.session.execute(sa.text("WITH " + _CTES + ctes + select), params.bind())
        return [dict(r._mapping) for r in result.all()]

    async def replace_month(self, params: MonthParams) -> int:
        """Delete and re-insert the month in every rollup table (idempotent; one transaction)."""
        total = 0
        for table, ctes, select, cols in QUERIES.values():
            await self.session.execute(sa.text(f"DELETE FROM {table} WHERE month = :month"), {"month": params.month})
            result = await self.session.execute(
                sa.text(f"WITH {_CTES}{ctes} INSERT INTO {table} ({', '.join(cols)}) {select}"), params.bind()
            )
            total += int(result.rowcount)  # type: ignore[attr-defined]
        return total

    async def record_run(self, month: date, seconds: float, cells: int) -> None:
        await self.session.execute(
            sa.text(
                "INSERT INTO observatory_rollups (month, computed_at, seconds, cells) VALUES (:m, now(), :s, :c)"
                " ON CONFLICT (month) DO UPDATE SET computed_at = now(), seconds = :s, cells = :c"
            ),
            {"m": month, "s": seconds, "c": cells},
        )

    async def rolled_up_months(self, months: Sequence[date]) -> set[date]:
        rows = await self.session.execute(
            sa.text("SELECT month FROM observatory_rollups WHERE month = ANY(:ms)"), {"ms": list(months)}
        )
        return set(rows.scalars().all())

    async def stored(self, kind: str, month: date, prefix: str) -> list[dict[str, Any]]:
        table, _ctes, _select, cols = QUERIES[kind]
        if kind == "flows":
            where = "(buyer_region LIKE :p OR supplier_region LIKE :p)"
        else:
            where = "region_code LIKE :p"
        result = await self.session.execute(
            sa.text(f"SELECT {', '.join(cols)} FROM {table} WHERE month = :m AND {where}"),
            {"m": month, "p": _like_prefix(prefix)},
        )
        return [dict(r._mapping) for r in result.all()]

    # -- factory and buyer analytics ---------------------------------------------------------------------

    async def org_assets(self, org_id: uuid.UUID) -> list[dict[str, Any]]:
        result = await self.session.execute(
            sa.text(
                "SELECT a.id, a.kind, a.title, a.status, a.published_at, a.weekly_plan, a.test_standard,"
                " a.accredited, a.daily_sample_capacity, a.site_id, s.name AS site_name, s.timezone, s.region_code"
                " FROM assets a JOIN sites s ON s.id = a.site_id WHERE a.org_id = :org ORDER BY s.name, a.title, a.id"
            ),
            {"org": org_id},
        )
        return [dict(r._mapping) for r in result.all()]

    async def exceptions_for(self, asset_ids: Sequence[uuid.UUID], start: datetime, end: datetime) -> list[Any]:
        if not asset_ids:
            return []
        result = await self.session.execute(
            sa.text(
                "SELECT asset_id, starts_at, ends_at, available FROM availability_exceptions"
                " WHERE asset_id = ANY(:ids) AND starts_at < :end AND ends_at > :start"
            ),
            {"ids": list(asset_ids), "start": start, "end": end},
        )
        return list(result.all())

    async def org_bookings(self, org_id: uuid.UUID, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Bookings of the organisation (either side) that touch the window by time, drop-off, creation or
        completion."""
        result = await self.session.execute(
            sa.text(
                "SELECT b.id, b.asset_id, b.kind, b.status, b.start_at, b.end_at, b.drop_off_date, b.samples,"
                " b.due_date, b.completed_at, b.cancelled_by, b.created_at, b.request_id, b.buyer_org_id,"
                " b.supplier_org_id, b.site_timezone, r.created_at AS request_created_at"
                " FROM bookings b LEFT JOIN requests r ON r.id = b.request_id"
                " WHERE (b.supplier_org_id = :org OR b.buyer_org_id = :org) AND ("
                "   (b.start_at < :end AND b.end_at > :start)"
                "   OR (b.drop_off_date >= CAST(:start AS timestamptz)::date - 1"
                "       AND b.drop_off_date <= CAST(:end AS timestamptz)::date)"
                "   OR (b.created_at >= :start AND b.created_at < :end)"
                "   OR (b.completed_at >= :start AND b.completed_at < :end))"
            ),
            {"org": org_id, "start": start, "end": end},
        )
        return [dict(r._mapping) for r in result.all()]

    async def org_money(self, org_id: uuid.UUID, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Earnings (settlement credits to the supplier's payable) and spend (buyer payments of its bookings)."""
        result = await self.session.execute(
            sa.text(
                "SELECT 'earnings' AS what, j.created_at, b.asset_id, e.currency, -e.amount AS amount"
                " FROM journal_entries e JOIN journals j ON j.id = e.journal_id"
                " LEFT JOIN bookings b ON b.id = j.booking_id"
                " WHERE e.org_id = :org AND e.account = 'supplier_payable' AND j.kind = 'settlement'"
                " AND j.created_at >= :start AND j.created_at < :end"
                " UNION ALL"
                " SELECT 'spend', j.created_at, b.asset_id, e.currency, e.amount"
                " FROM journal_entries e JOIN journals j ON j.id = e.journal_id JOIN bookings b ON b.id = j.booking_id"
                f" WHERE b.buyer_org_id = :org AND j.kind IN {_IN_KINDS} AND e.account IN {_IN_CLEARING}"
                " AND e.amount > 0 AND j.created_at >= :start AND j.created_at < :end"
            ),
            {"org": org_id, "start": start, "end": end},
        )
        return [dict(r._mapping) for r in result.all()]

    async def ledger_buyer_payments(self, start: datetime, end: datetime) -> dict[str, int]:
        """Total buyer payments per currency in the window, straight from the ledger (for reconciliation)."""
        result = await self.session.execute(
            sa.text(
                "SELECT e.currency, sum(e.amount) FROM journal_entries e JOIN journals j ON j.id = e.journal_id"
                f" WHERE j.kind IN {_IN_KINDS} AND e.account IN {_IN_CLEARING} AND e.amount > 0"
                " AND j.created_at >= :start AND j.created_at < :end GROUP BY e.currency"
            ),
            {"start": start, "end": end},
        )
        return {c: int(a) for c, a in result.all()}

    # -- observer grants ----------------------------------------------------------------------------------

    async def user_id_by_email(self, email: str) -> uuid.UUID | None:
        result = await self.session.execute(
            sa.text("SELECT id FROM users WHERE lower(email) = lower(:e)"), {"e": email}
        )
        value = result.scalar_one_or_none()
        return value if value is None else uuid.UUID(str(value))

    async def user_exists(self, user_id: uuid.UUID) -> bool:
        result = await self.session.execute(sa.text("SELECT 1 FROM users WHERE id = :id"), {"id": user_id})
        return result.scalar_one_or_none() is not None

    async def prefixes_of(self, user_id: uuid.UUID) -> list[str]:
        result = await self.session.execute(
            sa.text("SELECT DISTINCT unnest(region_prefixes) FROM observer_grants WHERE user_id = :u ORDER BY 1"),
            {"u": user_id},
        )
        return list(result.scalars().all())

    async def grants(self) -> list[ObserverGrant]:
        rows = await self.session.execute(sa.select(ObserverGrant).order_by(sa.text("created_at"), sa.text("id")))
        return list(rows.scalars().all())

    async def grant(self, grant_id: uuid.UUID) -> ObserverGrant | None:
        return await self.session.get(ObserverGrant, grant_id)


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
