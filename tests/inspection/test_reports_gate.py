"""The payout gate after the lab's report (issue #17): rework and a new inspection, a verdict that arrives
before the factory completes, and a report that cannot gate (required accreditation not covered)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.inspection.report_notices import ACCREDITATION_WHY
from tests.inspection.test_plans_helpers import act
from tests.inspection.test_reports_helpers import (
    booking,
    certify,
    ledger,
    ok,
    outbox,
    planned_with,
    post_report,
    received,
    report_body,
    signed_document,
    to_received,
)


async def test_rework_sends_the_lot_back_and_a_new_inspection_can_be_ordered(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await received(client, db)
    production = m["production"]["id"]
    doc = await signed_document(client, m["lab_headers"])
    await ok(await post_report(client, m, report_body(doc, failing=5)), 201)
    assert (await booking(client, m["buyer"], production))["status"] == "disputed"

    url = f"/api/v1/admin/bookings/{production}/rework"
    body = {"note": "make the bores again"}
    for who in (m["buyer"], m["supplier"]):
        assert (await client.post(url, headers=who, json=body)).status_code == 403
    reworked = await ok(await client.post(url, headers=m["admin"], json=body))
    assert reworked["status"] == "in_progress" and reworked["completed_at"] is None
    assert reworked["timeline"][-1]["action"] == "rework" and reworked["timeline"][-1]["actor_kind"] == "admin"
    assert (await ledger(db, production))["held"] == m["production"]["amount"]
    again = await client.post(url, headers=m["admin"], json=body)
    assert again.status_code == 409 and again.json()["error"] == "invalid_transition"

    # The factory completes again: no automatic dispute from the old report; the money is still held.
    assert (await act(client, m["supplier"], production, "complete")).status_code == 200
    assert (await booking(client, m["buyer"], production))["status"] == "completed"
    # A new inspection of the reworked lot, and it gates the payout again.
    second = await planned_with(client, m, require_accreditation=False)
    m["inspection"] = await to_received(client, m, second)
    doc2 = await signed_document(client, m["lab_headers"])
    report = await ok(await post_report(client, m, report_body(doc2, failing=0)), 201)
    assert report["verdict"] == "accepted"
    assert (await booking(client, m["buyer"], production))["status"] == "settled"
    assert (await ledger(db, production))["held"] == 0


async def test_a_rejection_before_completion_disputes_the_booking_when_the_factory_completes(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await received(client, db, status="in_progress")
    production = m["production"]["id"]
    doc = await signed_document(client, m["lab_headers"])
    await ok(await post_report(client, m, report_body(doc, failing=4)), 201)
    assert (await booking(client, m["buyer"], production))["status"] == "in_progress"
    assert (await act(client, m["supplier"], production, "complete")).status_code == 200
    after = await booking(client, m["buyer"], production)
    assert after["status"] == "disputed" and after["timeline"][-1]["actor_kind"] == "system"
    assert (await ledger(db, production))["held"] == m["production"]["amount"]


async def test_an_accepted_lot_before_completion_lets_the_normal_settlement_through_later(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await received(client, db, status="in_progress")
    production = m["production"]["id"]
    doc = await signed_document(client, m["lab_headers"])
    await ok(await post_report(client, m, report_body(doc)), 201)
    assert (await booking(client, m["buyer"], production))["status"] == "in_progress"
    assert (await act(client, m["supplier"], production, "complete")).status_code == 200
    assert (await booking(client, m["buyer"], production))["status"] == "completed"
    # The gate is open: the buyer's own confirmation (or the worker after the window) settles it.
    assert (await act(client, m["buyer"], production, "confirm")).status_code == 200
    assert (await ledger(db, production))["held"] == 0


@pytest.mark.parametrize(
    ("certificate", "status"),
    [
        ({"valid_until": date(2025, 12, 31)}, "not_valid_on_test_date"),
        ({"scope": "Tensile testing GB/T 228.1-2021"}, "out_of_scope"),
    ],
)
async def test_a_report_whose_required_accreditation_is_not_covered_leaves_the_decision_to_the_buyer(
    client: AsyncClient, db: AsyncSession, certificate: dict[str, Any], status: str
) -> None:
    m = await received(client, db, require_accreditation=True)
    await certify(db, m["inspection"]["lab_org_id"], **certificate)
    production = m["production"]["id"]
    doc = await signed_document(client, m["lab_headers"])
    report = await ok(await post_report(client, m, report_body(doc, failing=3)), 201)
    assert report["verdict"] == "rejected" and report["accreditation"] == status
    assert report["gates_payment"] is False and report["require_accreditation"] is True
    # Neither settled nor disputed automatically; the buyer is told why.
    assert (await booking(client, m["buyer"], production))["status"] == "completed"
    assert (await ledger(db, production))["held"] == m["production"]["amount"]
    notes = (await client.get("/api/v1/notifications", headers=m["buyer"])).json()["items"]
    why = ACCREDITATION_WHY[status][0]
    assert any(n["kind"] == "inspection.not_gating" and why in n["body"] for n in notes), notes
    assert [production] in await outbox(db, "bookings.settle_one")
    # The dispute window of the production booking has passed; the buyer may still dispute (late).
    await db.execute(
        sa.text("UPDATE bookings SET completed_at = now() - interval '100 hours' WHERE id = :id"), {"id": production}
    )
    await db.commit()
    r = await client.post(
        f"/api/v1/bookings/{production}/dispute", headers=m["buyer"], json={"reason": "see the report"}
    )
    assert r.status_code == 200 and r.json()["status"] == "disputed", r.text


async def test_while_the_inspection_is_open_the_buyer_may_still_dispute_after_the_window(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await received(client, db)
    production = m["production"]["id"]
    await db.execute(
        sa.text("UPDATE bookings SET completed_at = now() - interval '100 hours' WHERE id = :id"), {"id": production}
    )
    await db.commit()
    r = await client.post(f"/api/v1/bookings/{production}/dispute", headers=m["buyer"], json={"reason": "late parts"})
    assert r.status_code == 200 and r.json()["status"] == "disputed", r.text
