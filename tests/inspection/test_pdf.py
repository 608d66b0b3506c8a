"""The verifiable PDFs: an inspection report and a certificate of conformance rendered by WeasyPrint, printing the
content hash and the QR code of /verify/{hash}, stored in the document store, attached to the bookings and
registered; issued once however often they are asked for; rendering fetches nothing from the network."""

from __future__ import annotations

import hashlib
import socket
import uuid
import zlib

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.bookings.models import Booking
from marketplace.core.settings import Settings
from marketplace.documents import service as documents
from marketplace.documents.storage import Storage, storage_for
from marketplace.inspection import pdf, verifiable
from marketplace.inspection.models import InspectionReport, VerifiableDocument
from tests.factories import signed_up
from tests.inspection.test_verify_helpers import inspected_lot, pdf_contains


@pytest.fixture
def storage(settings: Settings) -> Storage:
    return storage_for(settings)


async def _bytes(storage: Storage, sha256: str) -> bytes:
    return b"".join([chunk async for chunk in storage.read(sha256)])


def test_the_content_hash_is_the_sha256_of_canonical_json() -> None:
    summary = {"verdict": "accepted", "issuer": {"name": "苏州检测", "uscc": None}, "lot": 50}
    canonical = '{"issuer":{"name":"苏州检测","uscc":null},"lot":50,"verdict":"accepted"}'
    assert verifiable.content_hash(summary) == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    reordered = {"lot": 50, "issuer": {"uscc": None, "name": "苏州检测"}, "verdict": "accepted"}
    assert verifiable.content_hash(reordered) == verifiable.content_hash(summary)
    assert verifiable.content_hash({**summary, "verdict": "rejected"}) != verifiable.content_hash(summary)


def test_the_qr_code_is_inline_svg_of_the_verify_url() -> None:
    one = pdf.qr_svg("https://example.com/verify/" + "a" * 64)
    other = pdf.qr_svg("https://example.com/verify/" + "b" * 64)
    assert one.startswith("<svg") and one.rstrip().endswith("</svg>")
    assert one != other


def test_text_is_found_in_a_deflated_stream_whose_last_byte_is_a_carriage_return() -> None:
    # A stream's last byte is its zlib checksum's, a carriage return once in 256 streams; the search once cut
    # it off with the line end before "endstream" and missed the text (a CI run's verify URL).
    text = next(
        t
        for t in (f"/verify/{hashlib.sha256(str(i).encode()).hexdigest()}" for i in range(10_000))
        if zlib.compress(t.encode())[-1:] == b"\r"
    )
    pdf = b"%PDF-1.7\n1 0 obj\n<< /Filter /FlateDecode >>\nstream\n" + zlib.compress(text.encode())
    assert pdf_contains(pdf + b"\nendstream\nendobj\n", text)
    assert not pdf_contains(pdf + b"\nendstream\nendobj\n", text.replace("/verify/", "/other/"))


async def test_rendering_fetches_nothing_from_the_network_or_the_disk() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    html = (
        f'<html><head><link rel="stylesheet" href="http://127.0.0.1:{port}/style.css"></head>'
        f'<body><p>检验报告 report</p><img src="http://127.0.0.1:{port}/x.png"><img src="file:///etc/hostname">'
        "</body></html>"
    )
    try:
        data = await pdf.render_pdf(html, base_url=f"http://127.0.0.1:{port}/")
        assert data.startswith(b"%PDF-")
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    finally:
        listener.close()


async def test_a_report_pdf_prints_its_hash_is_stored_attached_and_registered(
    client: AsyncClient, db: AsyncSession, storage: Storage, settings: Settings
) -> None:
    lot = await inspected_lot(client, db)
    doc = await verifiable.issue_report_pdf(db, report=lot.report, storage=storage)
    await db.commit()

    data = await _bytes(storage, doc.sha256)
    assert data.startswith(b"%PDF-")
    assert hashlib.sha256(data).hexdigest() == doc.sha256 and doc.size == len(data)
    assert doc.content_type == "application/pdf" and doc.org_id == lot.lab_org_id
    row = await db.get(VerifiableDocument, (await _row_of(db, doc.id)).hash)
    assert row is not None
    assert row.kind == "inspection_report" and row.file_sha256 == doc.sha256 and row.document_id == doc.id
    assert row.issuer_org_id == lot.lab_org_id and str(row.booking_id) == lot.production["id"]
    assert row.hash == verifiable.content_hash(row.summary)
    # The PDF prints the hash and links the public page (its QR code carries the same URL).
    assert pdf_contains(data, row.hash)
    assert pdf_contains(data, f"{settings.public_url}/verify/{row.hash}")
    # The summary behind the public page: verdict, plan, accreditation; no buyer and no price.
    s = row.summary
    assert s["verdict"] == "accepted" and s["nonconforming"] == 0
    assert s["plan"]["sample_size"] == 8 and s["plan"]["accept_number"] == 0 and s["plan"]["lot_size"] == 50
    assert s["accreditation"]["status"] == "covered"
    assert s["accreditation"]["certificate"]["number"] == "CNAS L12345"
    text = str(s)
    assert lot.buyer_name not in text and lot.market["buyer_org"] not in text
    assert str(lot.production["amount"]) not in text and str(lot.lab_booking["amount"]) not in text

    report = await db.get(InspectionReport, lot.report.id)
    assert report is not None and report.pdf_document_id == doc.id
    for booking_id in (lot.production["id"], lot.lab_booking["id"]):
        attached = await documents.attached(db, target_kind="booking", target_id=uuid.UUID(booking_id))
        assert [d.id for d in attached] == [doc.id]
    # The buyer reads it through the document store (a party of the bookings); a stranger does not.
    r = await client.get(f"/api/v1/documents/{doc.id}", headers=lot.market["buyer"])
    assert r.status_code == 200 and r.content == data
    _, stranger = await signed_up(client, roles=("buyer",))
    assert (await client.get(f"/api/v1/documents/{doc.id}", headers=stranger)).status_code == 404
    assert (await verifiable.issue_report_pdf(db, report=lot.report, storage=storage)).id == doc.id  # once


async def test_a_certificate_of_conformance_is_the_factorys_document_on_the_booking(
    client: AsyncClient, db: AsyncSession, storage: Storage
) -> None:
    lot = await inspected_lot(client, db)
    booking = await db.get(Booking, uuid.UUID(lot.production["id"]))
    assert booking is not None
    words = "Parts conform to drawing 4711 rev. C. 零件符合图纸要求。"
    doc = await verifiable.issue_coc(db, booking=booking, statement=words, user_id=None, storage=storage)
    await db.commit()
    assert doc.org_id == booking.supplier_org_id and doc.name.endswith(".pdf")
    row = await _row_of(db, doc.id)
    assert row.kind == "coc" and row.booking_id == booking.id and row.issuer_org_id == booking.supplier_org_id
    assert row.summary["declaration"] == "conformant"
    assert row.summary["statement_sha256"] == hashlib.sha256(words.encode()).hexdigest()  # bound into the hash
    assert row.summary["booking_reference"] == booking.id.hex[:8].upper()
    assert lot.buyer_name not in str(row.summary) and str(booking.amount) not in str(row.summary)
    data = await _bytes(storage, doc.sha256)
    assert data.startswith(b"%PDF-") and pdf_contains(data, row.hash)
    attached = await documents.attached(db, target_kind="booking", target_id=booking.id)
    assert doc.id in [d.id for d in attached]
    # Asking again (another click, other words) returns the certificate issued first.
    again = await verifiable.issue_coc(db, booking=booking, statement=None, user_id=None, storage=storage)
    assert again.id == doc.id


async def _row_of(db: AsyncSession, document_id: uuid.UUID) -> VerifiableDocument:
    from marketplace.inspection.verify_repository import VerifyRepository

    row = await VerifyRepository(db).of_document(document_id)
    assert row is not None
    return row


async def test_a_large_rejected_lot_prints_200_unit_rows_says_how_many_more_and_is_issued_once(
    client: AsyncClient, db: AsyncSession, storage: Storage
) -> None:
    lot = await inspected_lot(client, db, sample_size=215, verdict="rejected", accreditation="out_of_scope")
    doc = await verifiable.issue_report_pdf(db, report=lot.report, storage=storage)
    await db.commit()
    assert (await verifiable.issue_report_pdf(db, report=lot.report, storage=storage)).id == doc.id
    # Even with the report's link lost, the same summary finds the same register row.
    lot.report.pdf_document_id = None
    assert (await verifiable.issue_report_pdf(db, report=lot.report, storage=storage)).id == doc.id
    assert lot.report.pdf_document_id == doc.id
    row = await _row_of(db, doc.id)
    assert row.summary["verdict"] == "rejected" and row.summary["nonconforming"] == 2
    assert row.summary["accreditation"] == {"status": "out_of_scope", "certificate": None}
    html = pdf.render_html(
        "report.html",
        {
            "s": row.summary,
            "report": lot.report,
            "buyer": {"name": "B", "legal_name": None},
            "factory": {"name": "F", "legal_name": None},
            "characteristics": [],
            "names": ["Bore diameter", "Length"],
            "rows": verifiable._unit_rows(lot.report, ["Bore diameter", "Length"]),
            "more_units": 15,
            "hash": "0" * 64,
            "url": "http://x/verify/" + "0" * 64,
            "qr": "",
        },
    )
    assert "SN-0200" in html and "SN-0201" not in html
    assert "15 more units not listed" in html
    assert (await _bytes(storage, doc.sha256)).startswith(b"%PDF-")
