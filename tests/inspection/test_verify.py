"""The public register, without an account: /verify/{hash} shows who issued what (issuer, date, verdict,
accreditation, plan) in English and Chinese and never the buyer or a price; an uploaded copy matches the issued
PDF byte for byte, and a tampered or forged one does not; unknown and malformed codes are a 404."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.bookings.models import Booking
from marketplace.core.settings import Settings
from marketplace.documents.storage import Storage, storage_for
from marketplace.inspection import pdf, verifiable
from marketplace.inspection.models import VerifiableDocument
from marketplace.inspection.verify_repository import VerifyRepository
from marketplace.web import i18n
from tests.factories import csrf_token
from tests.inspection.test_verify_helpers import Lot, inspected_lot
from tests.web.test_no_codes_on_pages import visible_text


@pytest.fixture
def storage(settings: Settings) -> Storage:
    return storage_for(settings)


async def _issued(client: AsyncClient, db: AsyncSession, storage: Storage, **kw: Any) -> tuple[Lot, Any, bytes]:
    lot = await inspected_lot(client, db, **kw)
    doc = await verifiable.issue_report_pdf(db, report=lot.report, storage=storage)
    await db.commit()
    row = await VerifyRepository(db).of_document(doc.id)
    assert row is not None
    data = b"".join([c async for c in storage.read(doc.sha256)])
    return lot, row, data


def _leaks(lot: Lot, page: str) -> list[str]:
    """Buyer identity or a price found on a public page."""
    found = []
    for text in (lot.buyer_name, lot.market["buyer_org"]):
        if text and text in page:
            found.append(text)
    for b in (lot.production, lot.lab_booking):
        for locale in ("en", "zh-CN"):
            for amount in (b["amount"], b["unit_price"]):
                shown = i18n.money(amount, b["currency"], locale)
                if shown in page:
                    found.append(shown)
    return found


PAGE_WORDS = {
    "en": ["Inspection report", "Accepted", "Covered by the laboratory", "CNAS L12345", "Lot size", "AQL"],
    "zh-CN": ["检验报告", "批接收", "认可范围", "CNAS L12345", "批量", "AQL"],
}
COC_WORDS = {"en": ["Certificate of conformance", "declares"], "zh-CN": ["合格证明", "声明"]}


async def test_the_public_pages_show_issuer_verdict_and_accreditation_but_no_buyer_or_price(
    client: AsyncClient, db: AsyncSession, storage: Storage
) -> None:
    lot, row, _data = await _issued(client, db, storage)
    booking = await db.get(Booking, uuid.UUID(lot.production["id"]))
    assert booking is not None
    coc = await VerifyRepository(db).of_document(
        (await verifiable.issue_coc(db, booking=booking, statement=None, user_id=None, storage=storage)).id
    )
    await db.commit()
    assert coc is not None
    for locale in ("en", "zh-CN"):
        client.cookies.set("lang", locale)
        page = await client.get(f"/verify/{row.hash}")
        assert page.status_code == 200
        text = visible_text(page.text)
        assert row.summary["issuer"]["name"] in text and row.hash in text
        for word in PAGE_WORDS[locale]:
            assert word in text, (locale, word)
        assert 'data-verdict="accepted"' in page.text and 'data-accreditation="covered"' in page.text
        assert _leaks(lot, page.text) == []
        coc_page = await client.get(f"/verify/{coc.hash}")
        assert coc_page.status_code == 200 and 'data-kind="coc"' in coc_page.text
        for word in COC_WORDS[locale]:
            assert word in coc_page.text, (locale, word)
        assert coc.summary["issuer"]["name"] in coc_page.text
        assert _leaks(lot, coc_page.text) == []
    # The API answers the same public record, without signing in; anyone may recompute the code.
    r = await client.get(f"/api/v1/verify/{row.hash.upper()}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["code"] == row.hash and body["kind"] == "inspection_report"
    assert body["issuer"]["name"] == row.summary["issuer"]["name"]
    assert body["file_sha256"] == row.file_sha256 and body["issued_on"] == row.issued_on.isoformat()
    assert body["summary"]["verdict"] == "accepted"
    assert body["summary"]["accreditation"]["certificate"]["accreditation_body"] == "CNAS"
    assert verifiable.content_hash(body["summary"]) == row.hash
    assert _leaks(lot, r.text) == []
    coc_api = await client.get(f"/api/v1/verify/{coc.hash}")
    assert coc_api.status_code == 200 and coc_api.json()["summary"]["declaration"] == "conformant"
    assert _leaks(lot, coc_api.text) == []


async def test_unknown_and_malformed_codes_are_not_found(client: AsyncClient) -> None:
    for code in ("0" * 64, "not-a-code", "A" * 65, "g" * 64):
        page = await client.get(f"/verify/{code}")
        assert page.status_code == 404, code
        assert "No document with this code" in page.text
        api = await client.get(f"/api/v1/verify/{code}")
        assert api.status_code == 404 and api.json()["error"] == "verifiable_document_not_found", code
    client.cookies.set("lang", "zh-CN")
    assert "没有此代码" in (await client.get(f"/verify/{'1' * 64}")).text


async def test_checking_files_is_rate_limited_per_address(client: AsyncClient) -> None:
    from marketplace.inspection.verify_endpoints import CHECKS_PER_MINUTE

    for _ in range(CHECKS_PER_MINUTE):
        r = await client.post("/api/v1/verify", files={"file": ("x.pdf", b"%PDF-1.7 not issued", "application/pdf")})
        assert r.status_code == 404 and r.json()["error"] == "verifiable_document_no_match"
    refused = await client.post("/api/v1/verify", files={"file": ("x.pdf", b"%PDF-1.7", "application/pdf")})
    assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
    # Looking a code up is not limited (a QR code scanned at a goods-in desk).
    assert (await client.get(f"/api/v1/verify/{'0' * 64}")).status_code == 404


async def test_the_issued_pdf_matches_and_a_tampered_or_forged_copy_does_not(
    client: AsyncClient, db: AsyncSession, storage: Storage
) -> None:
    lot, row, data = await _issued(client, db, storage)
    ok = await client.post("/api/v1/verify", files={"file": ("report.pdf", data, "application/pdf")})
    assert ok.status_code == 200, ok.text
    assert ok.json()["code"] == row.hash and ok.json()["summary"]["verdict"] == "accepted"

    one_byte = bytearray(data)
    one_byte[len(data) // 2] ^= 0x01
    appended = data + b"\n% edited\n"
    forged = await _forged_rejected_copy(lot, row)
    for copy in (bytes(one_byte), appended, forged):
        r = await client.post("/api/v1/verify", files={"file": ("report.pdf", copy, "application/pdf")})
        assert r.status_code == 404 and r.json()["error"] == "verifiable_document_no_match"

    empty = await client.post("/api/v1/verify", files={"file": ("report.pdf", b"", "application/pdf")})
    assert empty.status_code == 422
    no_file = await client.post("/api/v1/verify", files={"other": ("x.pdf", data, "application/pdf")})
    assert no_file.status_code == 422

    await _web_checks(client, row, data)
    await _web_form(client, row, data)


async def _forged_rejected_copy(lot: Lot, row: VerifiableDocument) -> bytes:
    """A PDF printing the real code and QR code but another verdict: what a forger would make."""
    summary = {**row.summary, "verdict": "rejected"}
    url = verifiable.verify_url(row.hash)
    html = pdf.render_html(
        "report.html",
        {
            "s": summary,
            "report": lot.report,
            "buyer": {"name": "B", "legal_name": None},
            "factory": {"name": "F", "legal_name": None},
            "characteristics": [],
            "names": [],
            "rows": [],
            "more_units": 0,
            "hash": row.hash,
            "url": url,
            "qr": pdf.qr_svg(url),
        },
    )
    return await pdf.render_pdf(html)


async def _web_checks(client: AsyncClient, row: VerifiableDocument, data: bytes) -> None:
    """The document's page checks an uploaded copy (CSRF as every web form)."""
    page = await client.get(f"/verify/{row.hash}")
    token = csrf_token(page.text)
    match = await client.post(
        f"/verify/{row.hash}/check",
        data={"csrf_token": token},
        files={"file": ("copy.pdf", data, "application/pdf")},
    )
    assert match.status_code == 200
    assert 'data-check-result="match"' in match.text and "byte for byte" in match.text
    tampered = data.replace(b"%PDF-1.7", b"%PDF-1.6", 1)
    mismatch = await client.post(
        f"/verify/{row.hash}/check",
        data={"csrf_token": token},
        files={"file": ("copy.pdf", tampered, "application/pdf")},
    )
    assert mismatch.status_code == 200
    assert 'data-check-result="no-match"' in mismatch.text and "may have been altered" in mismatch.text
    forged = await client.post(f"/verify/{row.hash}/check", files={"file": ("copy.pdf", data, "application/pdf")})
    assert forged.status_code == 403  # no CSRF token
    missing = await client.post(f"/verify/{row.hash}/check", data={"csrf_token": token})
    assert missing.status_code == 422 and "Choose a PDF file" in missing.text


async def _web_form(client: AsyncClient, row: VerifiableDocument, data: bytes) -> None:
    """The /verify form finds a document by its code or by its file."""
    client.cookies.set("lang", "zh-CN")
    form = await client.get("/verify")
    assert form.status_code == 200 and "验证文件" in form.text
    typed = await client.get("/verify", params={"code": " " + row.hash.upper() + " "})
    assert typed.status_code == 303 and typed.headers["location"] == f"/verify/{row.hash}"
    bad = await client.get("/verify", params={"code": "12345"})
    assert bad.status_code == 422 and "64" in bad.text
    token = csrf_token(form.text)
    found = await client.post(
        "/verify/check", data={"csrf_token": token}, files={"file": ("c.pdf", data, "application/pdf")}
    )
    assert found.status_code == 200 and 'data-check-result="match"' in found.text and row.hash in found.text
    unknown = await client.post(
        "/verify/check", data={"csrf_token": token}, files={"file": ("c.pdf", data + b" ", "application/pdf")}
    )
    assert unknown.status_code == 200 and 'data-check-result="no-match"' in unknown.text
