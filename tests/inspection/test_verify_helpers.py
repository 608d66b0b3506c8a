"""Test data for the verifiable PDFs: a production booking and a lab booking placed through the API by one buyer,
the inspection and its report written as rows (the plan and report rules are tested elsewhere), and a way to
find text in a PDF whose streams WeasyPrint compressed."""

from __future__ import annotations

import re
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from listings.models import Certificate
from marketplace.inspection.models import Inspection, InspectionReport
from marketplace.orgs.models import Organisation
from tests.bookings.helpers import book, market, slot
from tests.factories import published_asset, weekday_after

CHARACTERISTICS = [
    {"name": "Bore diameter", "nominal": "12.000", "lower_tol": "-0.020", "upper_tol": "0.020", "unit": "mm"},
    {"name": "Length", "nominal": "40.0", "lower_tol": "-0.1", "upper_tol": "0.1", "unit": "mm"},
]


@dataclass
class Lot:
    market: dict[str, Any]
    production: dict[str, Any]
    lab_booking: dict[str, Any]
    lab_headers: dict[str, str]
    lab_org_id: uuid.UUID
    buyer_name: str
    inspection: Inspection
    report: InspectionReport


def units(sample_size: int, failing: int) -> list[dict[str, Any]]:
    out = []
    for i in range(1, sample_size + 1):
        bad = i <= failing
        out.append(
            {
                "unit": i,
                "serial": f"SN-{i:04d}",
                "measurements": [
                    {"name": "Bore diameter", "value": "12.031" if bad else "12.004", "unit": "mm"},
                    {"name": "Length", "value": "40.02", "unit": "mm"},
                ],
                "conforming": not bad,
                "failed": ["Bore diameter"] if bad else [],
            }
        )
    return out


async def inspected_lot(
    client: AsyncClient,
    db: AsyncSession,
    *,
    verdict: str = "accepted",
    accreditation: str = "covered",
    sample_size: int = 8,
) -> Lot:
    m = await market(client, db)
    start, end = slot(48)
    r = await book(client, m["buyer"], m["asset"]["id"], start, end)
    assert r.status_code == 201, r.text
    production = r.json()
    lab, lab_headers, _site = await published_asset(
        client, db, m["admin"], kind="lab_service", daily_sample_capacity=max(40, sample_size)
    )
    r = await client.post(
        "/api/v1/bookings",
        headers={**m["buyer"], "Idempotency-Key": uuid.uuid4().hex},
        json={"asset_id": lab["id"], "drop_off_date": weekday_after(4).isoformat(), "samples": sample_size},
    )
    assert r.status_code == 201, r.text
    lab_booking = r.json()
    lab_org_id = uuid.UUID(lab["org_id"])
    buyer = await db.get(Organisation, uuid.UUID(m["buyer_org"]))
    assert buyer is not None
    cert = Certificate(
        org_id=lab_org_id,
        standard="ISO/IEC 17025",
        number="CNAS L12345",
        issuer="China National Accreditation Service",
        accreditation_body="CNAS",
        scope="GB/T 3177-2009 dimensional inspection",
        valid_from=date(2025, 1, 1),
        valid_until=date(2029, 12, 31),
        status="verified",
    )
    db.add(cert)
    await db.flush()
    failing = 0 if verdict == "accepted" else 2
    inspection = Inspection(
        production_booking_id=uuid.UUID(production["id"]),
        lab_booking_id=uuid.UUID(lab_booking["id"]),
        buyer_org_id=uuid.UUID(m["buyer_org"]),
        supplier_org_id=uuid.UUID(m["asset"]["org_id"]),
        lab_org_id=lab_org_id,
        characteristics=CHARACTERISTICS,
        inspection_level="II",
        aql="1.0",
        lot_size=max(50, sample_size),
        code_letter="D",
        sample_size=sample_size,
        accept_number=0,
        reject_number=1,
        require_accreditation=True,
        status="reported",
        due_date=weekday_after(10),
        verdict=verdict,
        gates_payment=True,
    )
    db.add(inspection)
    await db.flush()
    report = InspectionReport(
        inspection_id=inspection.id,
        lab_booking_id=inspection.lab_booking_id,
        tested_on=datetime.now(UTC).date(),
        test_standard="GB/T 3177-2009",
        instrument="Mitutoyo CMM Crysta-Apex S 574",
        operator="Wang Fang 王芳",
        units=units(sample_size, failing),
        nonconforming=failing,
        verdict=verdict,
        accreditation=accreditation,
        certificate_id=cert.id if accreditation == "covered" else None,
        gates_payment=True,
    )
    db.add(report)
    await db.commit()
    return Lot(m, production, lab_booking, lab_headers, lab_org_id, buyer.name, inspection, report)


_STREAM_START = re.compile(rb"stream\r?\n")


def pdf_contains(data: bytes, text: str) -> bool:
    """Whether ``text`` (ASCII) is in the PDF's bytes or in one of its deflated streams (the metadata, the link
    annotations and their object streams).

    Each stream is inflated from its start until zlib's own end marker. Cutting it at ``\r?\nendstream``
    instead drops the stream's last byte whenever that byte is a carriage return (its checksum's, 1 in 256), and
    the text in it is then missed."""
    needle = text.encode()
    if needle in data:
        return True
    for match in _STREAM_START.finditer(data):
        try:
            if needle in zlib.decompressobj().decompress(data[match.end() :]):
                return True
        except zlib.error:
            continue  # not deflated (or the "stream" of an "endstream")
    return False
