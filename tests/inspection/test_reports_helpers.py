"""Builders for report tests (no tests here): an inspection moved through the API until the lab has received
the samples, a lab certificate, a signed report document, a report body, and the ledger checks."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from listings.models import Certificate
from tests.inspection.test_plans_helpers import act, inspection_market, plan

# Lot 20, level II, AQL 15: code letter C, 5 samples, Ac 2, Re 3.
SAMPLING = {"standard": "ISO 2859-1", "inspection_level": "II", "aql": "15"}
LOT = 20
SAMPLE = 5
STANDARD = "GB/T 3177-2009"
SCOPE = "Dimensional inspection GB/T 3177-2009; hardness GB/T 230.1-2018"


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json()


async def received(
    client: AsyncClient, db: AsyncSession, *, status: str = "completed", require_accreditation: bool = False
) -> dict[str, Any]:
    """A production booking in ``status``, its inspection planned, the lab booking paid and accepted, the
    samples shipped by the factory and received by the lab."""
    m = await inspection_market(client, db, status=status)
    insp = await planned_inspection(client, m, require_accreditation=require_accreditation)
    m["inspection"] = await to_received(client, m, insp)
    return m


async def planned_inspection(client: AsyncClient, m: dict[str, Any], *, require_accreditation: bool) -> dict[str, Any]:
    m["require_accreditation"] = require_accreditation
    return await planned_with(client, m, require_accreditation=require_accreditation)


async def planned_with(client: AsyncClient, m: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    r = await plan(client, m, sampling=SAMPLING, lot_size=LOT, **overrides)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def to_received(client: AsyncClient, m: dict[str, Any], insp: dict[str, Any]) -> dict[str, Any]:
    lab_booking = insp["lab_booking_id"]
    assert (await act(client, m["lab_headers"], lab_booking, "accept")).status_code == 200
    url = f"/api/v1/inspections/{insp['id']}"
    await ok(await client.post(f"{url}/shipment", headers=m["supplier"], json={"tracking_reference": "SF1234567"}))
    out: dict[str, Any] = await ok(await client.post(f"{url}/receipt", headers=m["lab_headers"]))
    assert out["status"] == "received"
    return out


async def certify(
    db: AsyncSession,
    org_id: str,
    *,
    scope: str = SCOPE,
    valid_until: date | None = None,
    status: str = "verified",
) -> None:
    db.add(
        Certificate(
            org_id=uuid.UUID(org_id),
            standard="ISO/IEC 17025",
            number=f"CNAS L{uuid.uuid4().int % 10000:04d}",
            issuer="中国合格评定国家认可委员会 CNAS",
            accreditation_body="CNAS",
            scope=scope,
            valid_from=date(2024, 1, 1),
            valid_until=valid_until or date.today() + timedelta(days=365),
            status=status,
        )
    )
    await db.commit()


async def signed_document(client: AsyncClient, headers: dict[str, str]) -> str:
    r = await client.post(
        "/api/v1/documents",
        headers=headers,
        files={"file": ("report.pdf", b"%PDF-1.4 signed report " + uuid.uuid4().bytes, "application/pdf")},
    )
    doc: dict[str, Any] = await ok(r, 201)
    return str(doc["id"])


def report_body(document_id: str, *, failing: int = 0, units: int = SAMPLE, **overrides: Any) -> dict[str, Any]:
    """``units`` units of which the first ``failing`` have the bore out of tolerance."""
    body: dict[str, Any] = {
        "tested_on": datetime.now(UTC).date().isoformat(),
        "test_standard": STANDARD,
        "instrument": "Zeiss CONTURA CMM #4",
        "operator": "王工 Wang Gong",
        "signed_document_id": document_id,
        "units": [
            {
                "serial": f"S-{i + 1}",
                "measurements": [
                    {"characteristic": "Bore diameter", "value": "12.031" if i < failing else "12.020", "unit": "mm"},
                    {"characteristic": "Hardness", "value": 45, "unit": "HRC"},
                ],
            }
            for i in range(units)
        ],
    }
    body.update(overrides)
    return body


async def post_report(
    client: AsyncClient, m: dict[str, Any], body: dict[str, Any], headers: dict[str, str] | None = None
) -> Any:
    return await client.post(
        f"/api/v1/bookings/{m['inspection']['lab_booking_id']}/report", headers=headers or m["lab_headers"], json=body
    )


async def booking(client: AsyncClient, headers: dict[str, str], booking_id: str) -> dict[str, Any]:
    out: dict[str, Any] = await ok(await client.get(f"/api/v1/bookings/{booking_id}", headers=headers))
    return out


# -- the ledger -----------------------------------------------------------------------------------------------

UNBALANCED = """
SELECT j.key FROM journals j JOIN journal_entries e ON e.journal_id = j.id
 GROUP BY j.id, j.key, e.currency HAVING sum(e.amount) <> 0
"""
HELD = """
SELECT coalesce(sum(e.amount), 0) FROM journal_entries e JOIN journals j ON j.id = e.journal_id
 WHERE e.account = 'customer_funds_held'
   AND (j.booking_id = :b OR j.invoice_id IN (SELECT id FROM invoices WHERE booking_id = :b))
"""
PAYABLE = """
SELECT coalesce(sum(e.amount), 0) FROM journal_entries e JOIN journals j ON j.id = e.journal_id
 WHERE e.account = 'supplier_payable'
   AND (j.booking_id = :b OR j.invoice_id IN (SELECT id FROM invoices WHERE booking_id = :b))
"""


async def ledger(db: AsyncSession, booking_id: str) -> dict[str, int]:
    """The booking's money held (positive: still in escrow) and owed to its supplier; every journal balanced."""
    assert list((await db.execute(sa.text(UNBALANCED))).scalars()) == []
    held = -int((await db.execute(sa.text(HELD), {"b": booking_id})).scalar_one())
    payable = -int((await db.execute(sa.text(PAYABLE), {"b": booking_id})).scalar_one())
    return {"held": held, "payable": payable}


async def outbox(db: AsyncSession, task: str) -> list[list[Any]]:
    """The argument lists of the jobs ``task`` written to the outbox."""
    rows = await db.execute(sa.text("SELECT args FROM outbox WHERE task = :t ORDER BY id"), {"t": task})
    return [list(r) for r in rows.scalars()]
