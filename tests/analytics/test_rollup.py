"""Rollups equal a direct computation from the raw rows, are idempotent, and GMV equals the ledger."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from marketplace.analytics import service
from marketplace.analytics.repository import AnalyticsRepository
from tests.analytics.market import build, reference, reference_flows

MONTH = date(2027, 3, 1)  # contains the Europe/Berlin spring-forward day


async def _stored(session: AsyncSession, table: str) -> list[dict[str, Any]]:
    rows = await session.execute(sa.text(f"SELECT * FROM {table} WHERE month = :m"), {"m": MONTH})
    return [dict(r._mapping) for r in rows.all()]


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1))
async def test_rollup_equals_direct_computation(engine: AsyncEngine, seed: int) -> None:
    async with engine.connect() as conn:
        trans = await conn.begin()
        try:
            session = AsyncSession(bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint")
            market = await build(session, random.Random(seed), MONTH)
            expected = reference(market)
            first = await service.rollup_month(session, MONTH.year, MONTH.month)
            again = await service.rollup_month(session, MONTH.year, MONTH.month)  # idempotent
            assert first["rows"] == again["rows"]
            cells = {(r["region_code"], r["process_family"]): r for r in await _stored(session, "observatory_cells")}
            gmv = {
                (r["region_code"], r["process_family"]): r["amount"] for r in await _stored(session, "observatory_gmv")
            }
            nonzero = {
                k for k, v in expected.items()
                if v["listed_hours"] or v["booked_hours"] or v["bookings"] or v["requests"] or v["gmv"]
                or v["suppliers"] or v["buyers"]
            }  # fmt: skip
            assert set(cells) == nonzero
            for key, exp in expected.items():
                got = cells[key]
                assert abs(got["listed_hours"] - exp["listed_hours"]) < 1e-6, key
                assert abs(got["booked_hours"] - exp["booked_hours"]) < 1e-6, key
                assert got["bookings"] == exp["bookings"]
                assert got["requests"] == exp["requests"]
                assert got["requests_booked"] == exp["requests_booked"]
                assert got["supplier_org_ids"] == sorted(exp["suppliers"])  # each organisation once, in order
                assert got["buyer_org_ids"] == sorted(exp["buyers"])
                assert got["active_supplier_org_ids"] == sorted(exp["active_s"])
                assert got["active_buyer_org_ids"] == sorted(exp["active_b"])
                assert got["match_minutes"] == pytest.approx(sorted(exp["minutes"]))
                assert gmv.get(key, 0) == exp["gmv"]
            flows = {
                (r["buyer_region"], r["supplier_region"], r["process_family"]): r
                for r in await _stored(session, "observatory_flows")
            }
            expected_flows = reference_flows(market)
            assert set(flows) == set(expected_flows)
            for flow_key, exp in expected_flows.items():
                got = flows[flow_key]
                assert (got["bookings"], got["booked_hours"]) == (exp["bookings"], pytest.approx(exp["booked_hours"]))
                assert got["supplier_org_ids"] == sorted(exp["suppliers"])  # each organisation once, in order
                assert got["buyer_org_ids"] == sorted(exp["buyers"])
            # GMV equals the ledger's buyer payments for the month and currency.
            ledger = await AnalyticsRepository(session).ledger_buyer_payments(
                service.utc_midnight(MONTH), service.utc_midnight(service.next_month(MONTH))
            )
            assert sum(gmv.values()) == ledger.get("CNY", 0)
            # The on-demand computation gives the stored rows.
            live = await service.compute_month(session, MONTH)
            assert len(live["cells"]) == len(cells)
            await session.close()
        finally:
            await trans.rollback()
