"""Verifiable documents: the bilingual (zh-CN + en) PDFs the platform issues, an inspection report for a lab and
a certificate of conformance (CoC) for a factory, each printing a content hash and a QR code of the public page
``/verify/{hash}``; and the register row (``VerifiableDocument``) behind that page.

The content hash is the SHA-256 of the canonical JSON of the document's public summary (what ``/verify`` shows:
no buyer, no prices), which names the report or booking it is about, so two documents never share one. The
register also keeps the SHA-256 of the PDF's bytes, so an uploaded copy can be checked byte for byte. Issuing is
idempotent: a second call for the same booking (CoC) or report returns the document issued first.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from listings.models import Asset, Certificate
from listings.taxonomy import get_taxonomy
from marketplace.bookings.models import Booking
from marketplace.bookings.rules import field_error
from marketplace.core.errors import NotFound, Unprocessable
from marketplace.core.settings import get_settings
from marketplace.documents import service as documents
from marketplace.documents.errors import PayloadTooLarge
from marketplace.documents.models import Document
from marketplace.documents.repository import DocumentRepository
from marketplace.documents.storage import Storage
from marketplace.inspection import pdf
from marketplace.inspection.models import Inspection, InspectionReport, VerifiableDocument
from marketplace.inspection.verify_repository import VerifyRepository
from marketplace.orgs.models import Organisation

COC = "coc"
REPORT = "inspection_report"
MAX_UNIT_ROWS = 200  # per-unit rows printed in a report; the rest is summed up in one line
DEFAULT_STATEMENT_EN = "We certify that the goods supplied under this order conform to the order's requirements."
DEFAULT_STATEMENT_ZH = "我们证明按本订单供应的货物符合订单要求。"
MAX_STATEMENT = 2000


def content_hash(summary: dict[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of ``summary`` (sorted keys, no spaces, UTF-8 as is)."""
    canonical = json.dumps(summary, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def verify_url(content_hash_hex: str, public_url: str | None = None) -> str:
    base = (public_url or get_settings().public_url).rstrip("/")
    return f"{base}/verify/{content_hash_hex}"


def reference(booking_id: uuid.UUID) -> str:
    """A booking's short reference as the pages show it (the first 8 hex digits, upper case)."""
    return booking_id.hex[:8].upper()


def _local_day(at: datetime | None, tz: str) -> date:
    moment = at or datetime.now(UTC)
    try:
        return moment.astimezone(ZoneInfo(tz)).date()
    except (KeyError, ValueError):
        return moment.astimezone(UTC).date()


def _issuer(org: Organisation) -> dict[str, Any]:
    return {"name": org.name, "legal_name": org.legal_name, "uscc": org.uscc}


def _processes(asset: Asset | None) -> list[dict[str, str]]:
    if asset is None:
        return []
    tax = get_taxonomy()
    out = []
    for code in asset.process_codes:
        try:
            out.append({"code": code, "en": tax.name(code, "en"), "zh": tax.name(code, "zh-CN")})
        except KeyError:
            out.append({"code": code, "en": code, "zh": code})
    return out


def _period(booking: Booking) -> dict[str, str | None]:
    tz = booking.site_timezone
    start: date | None
    end: date | None
    if booking.start_at is not None and booking.end_at is not None:
        start, end = _local_day(booking.start_at, tz), _local_day(booking.end_at, tz)
    else:
        start, end = booking.drop_off_date, booking.due_date
    return {"from": start.isoformat() if start else None, "to": end.isoformat() if end else None}


async def _org(repo: VerifyRepository, org_id: uuid.UUID) -> Organisation:
    org = await repo.row(Organisation, org_id)
    if org is None:
        raise NotFound("Organisation not found.")
    return org


async def _booking(repo: VerifyRepository, booking_id: uuid.UUID) -> Booking:
    booking = await repo.row(Booking, booking_id)
    if booking is None:
        raise NotFound("Booking not found.")
    return booking


async def _existing(repo: VerifyRepository, row: VerifiableDocument | None) -> Document | None:
    return await repo.document(row.document_id) if row is not None else None


async def _store_pdf(
    session: AsyncSession, *, storage: Storage, data: bytes, org_id: uuid.UUID, user_id: uuid.UUID | None, name: str
) -> Document:
    """Store generated PDF bytes as a document of ``org_id``, the way uploads are stored: staged, hashed, handed
    to the storage under the blob's lock (so a concurrent deletion of the last row sharing them cannot remove the
    blob after this has counted on it), one blob per SHA-256."""

    async def chunks() -> AsyncIterator[bytes]:
        yield data

    staged = await documents.stage(storage, chunks(), max_bytes=max(len(data), 1))
    repo = DocumentRepository(session)
    try:
        await repo.lock_blob(staged.sha256)
        await storage.put_file(staged.sha256, staged.path)
    finally:
        await asyncio.to_thread(staged.path.unlink, True)
    doc = Document(
        org_id=org_id,
        uploaded_by=user_id,
        name=documents.sanitise_name(name),
        size=staged.size,
        content_type="application/pdf",
        sha256=staged.sha256,
    )
    return await repo.add(doc)


async def _issue(
    session: AsyncSession,
    *,
    storage: Storage,
    row: VerifiableDocument,
    html: str,
    name: str,
    user_id: uuid.UUID | None,
) -> Document:
    """Render, store and register one document; ``row`` carries everything but the document and file digest."""
    data = await pdf.render_pdf(html)
    doc = await _store_pdf(session, storage=storage, data=data, org_id=row.issuer_org_id, user_id=user_id, name=name)
    row.document_id = doc.id
    row.file_sha256 = doc.sha256
    await VerifyRepository(session).add(row)
    return doc


# -- the certificate of conformance ------------------------------------------------------------------------


async def issue_coc(
    session: AsyncSession,
    *,
    booking: Booking,
    statement: str | None,
    user_id: uuid.UUID | None,
    storage: Storage,
    public_url: str | None = None,
) -> Document:
    """The factory's certificate of conformance for ``booking`` (a document of the factory attached to the
    booking); the one issued before when there is one. The caller checked that ``user_id`` acts for the
    factory. The PDF names the buyer (it is the buyer's document); the public summary does not."""
    repo = VerifyRepository(session)
    await repo.lock(f"coc:{booking.id}")
    found = await _existing(repo, await repo.of_booking(booking.id, COC))
    if found is not None:
        return found
    text = (statement or "").strip()
    if len(text) > MAX_STATEMENT:
        raise field_error("statement", f"at most {MAX_STATEMENT} characters.")
    supplier = await _org(repo, booking.supplier_org_id)
    buyer = await _org(repo, booking.buyer_org_id)
    asset = await repo.row(Asset, booking.asset_id)
    issued_on = _local_day(None, booking.site_timezone)
    summary: dict[str, Any] = {
        "kind": COC,
        "issuer": _issuer(supplier),
        "issued_on": issued_on.isoformat(),
        "booking_reference": reference(booking.id),
        "booking_id": str(booking.id),
        "listing_title": asset.title if asset else None,
        "processes": _processes(asset),
        "production_period": _period(booking),
        "declaration": "conformant",
        "statement_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest() if text else None,
    }
    digest = content_hash(summary)
    url = verify_url(digest, public_url)
    html = pdf.render_html(
        "coc.html",
        {
            "s": summary,
            "buyer": buyer,
            "statement": text,
            "default_en": DEFAULT_STATEMENT_EN,
            "default_zh": DEFAULT_STATEMENT_ZH,
            "hash": digest,
            "url": url,
            "qr": pdf.qr_svg(url),
        },
    )
    row = VerifiableDocument(
        hash=digest,
        kind=COC,
        issuer_org_id=supplier.id,
        booking_id=booking.id,
        issued_on=issued_on,
        summary=summary,
        document_id=uuid.UUID(int=0),
        file_sha256="",
    )
    doc = await _issue(
        session, storage=storage, row=row, html=html, name=f"CoC-{reference(booking.id)}.pdf", user_id=user_id
    )
    await documents.attach_for_org(
        session, org_id=supplier.id, document_id=doc.id, target_kind="booking", target_id=booking.id
    )
    return doc


# -- the inspection report ---------------------------------------------------------------------------------


def _tolerance(ch: dict[str, Any]) -> dict[str, Any]:
    """A characteristic as printed: nominal, tolerances and the limits they give."""
    out = dict(ch)
    out["tolerance"] = f"{_signed(ch.get('lower_tol'))} / {_signed(ch.get('upper_tol'))}"
    try:
        nominal, lower, upper = (Decimal(str(ch[k])) for k in ("nominal", "lower_tol", "upper_tol"))
        out["limits"] = (str(nominal + lower), str(nominal + upper))
    except (KeyError, ArithmeticError, ValueError):
        out["limits"] = None
    return out


def _signed(value: Any) -> str:
    text = str(value if value is not None else "")
    return text if not text or text.startswith(("-", "+")) or text.strip("0.") == "" else f"+{text}"


def _unit_rows(report: InspectionReport, names: list[str]) -> list[dict[str, Any]]:
    rows = []
    for index, unit in enumerate(report.units[:MAX_UNIT_ROWS], 1):
        values: dict[str, str] = {}
        for m in unit.get("measurements") or []:
            key = str(m.get("name") or m.get("characteristic") or "")
            values[key] = f"{m.get('value')} {m.get('unit') or ''}".strip()
        rows.append(
            {
                "unit": unit.get("unit", index),
                "serial": unit.get("serial") or "",
                "values": [values.get(n, "") for n in names],
                "conforming": bool(unit.get("conforming")),
                "failed": list(unit.get("failed") or []),
            }
        )
    return rows


def _accreditation(report: InspectionReport, cert: Certificate | None) -> dict[str, Any]:
    covered = report.accreditation == "covered" and cert is not None
    return {
        "status": report.accreditation,
        "certificate": (
            {
                "number": cert.number,
                "standard": cert.standard,
                "issuer": cert.issuer,
                "accreditation_body": cert.accreditation_body,
                "valid_from": cert.valid_from.isoformat(),
                "valid_until": cert.valid_until.isoformat(),
            }
            if covered and cert is not None
            else None
        ),
    }


def _plan(inspection: Inspection) -> dict[str, Any]:
    return {
        "standard": inspection.sampling_standard,
        "inspection_level": inspection.inspection_level,
        "aql": inspection.aql,
        "lot_size": inspection.lot_size,
        "code_letter": inspection.code_letter,
        "sample_size": inspection.sample_size,
        "accept_number": inspection.accept_number,
        "reject_number": inspection.reject_number,
    }


async def issue_report_pdf(
    session: AsyncSession, *, report: InspectionReport, storage: Storage, public_url: str | None = None
) -> Document:
    """The lab's inspection report as a verifiable PDF (a document of the lab attached to the production and
    the lab booking; ``report.pdf_document_id`` set); the one issued before when there is one."""
    repo = VerifyRepository(session)
    await repo.lock(f"report:{report.id}")
    if report.pdf_document_id is not None:
        found = await _existing(repo, await repo.of_document(report.pdf_document_id))
        if found is not None:
            return found
    inspection = await repo.row(Inspection, report.inspection_id)
    if inspection is None:
        raise NotFound("Inspection not found.")
    production = await _booking(repo, inspection.production_booking_id)
    lab_booking = await _booking(repo, inspection.lab_booking_id)
    lab = await _org(repo, inspection.lab_org_id)
    factory = await _org(repo, inspection.supplier_org_id)
    buyer = await _org(repo, inspection.buyer_org_id)
    production_asset = await repo.row(Asset, production.asset_id)
    cert = await repo.row(Certificate, report.certificate_id) if report.certificate_id else None
    characteristics = [_tolerance(c) for c in inspection.characteristics]
    names = [str(c.get("name", "")) for c in inspection.characteristics]
    issued_on = _local_day(report.created_at, lab_booking.site_timezone)
    summary: dict[str, Any] = {
        "kind": REPORT,
        "report_id": str(report.id),
        "issuer": _issuer(lab),
        "issued_on": issued_on.isoformat(),
        "booking_reference": reference(production.id),
        "lab_booking_reference": reference(lab_booking.id),
        "processes": _processes(production_asset),
        "tested_on": report.tested_on.isoformat(),
        "test_standard": report.test_standard,
        "plan": _plan(inspection),
        "nonconforming": report.nonconforming,
        "verdict": report.verdict,
        "accreditation": _accreditation(report, cert),
        "results_sha256": content_hash({"characteristics": inspection.characteristics, "units": report.units}),
    }
    digest = content_hash(summary)
    found = await _existing(repo, await repo.by_hash(digest))
    if found is not None:  # issued before (the summary of a report never changes)
        report.pdf_document_id = found.id
        session.add(report)
        await session.flush()
        return found
    url = verify_url(digest, public_url)
    html = pdf.render_html(
        "report.html",
        {
            "s": summary,
            "report": report,
            "buyer": buyer,
            "factory": factory,
            "characteristics": characteristics,
            "names": names,
            "rows": _unit_rows(report, names),
            "more_units": max(0, len(report.units) - MAX_UNIT_ROWS),
            "hash": digest,
            "url": url,
            "qr": pdf.qr_svg(url),
        },
    )
    row = VerifiableDocument(
        hash=digest,
        kind=REPORT,
        issuer_org_id=lab.id,
        booking_id=production.id,
        issued_on=issued_on,
        summary=summary,
        document_id=uuid.UUID(int=0),
        file_sha256="",
    )
    name = f"Inspection-report-{reference(production.id)}.pdf"
    doc = await _issue(session, storage=storage, row=row, html=html, name=name, user_id=None)
    for booking_id in (production.id, lab_booking.id):
        await documents.attach_for_org(
            session, org_id=lab.id, document_id=doc.id, target_kind="booking", target_id=booking_id
        )
    report.pdf_document_id = doc.id
    session.add(report)
    await session.flush()
    return doc


# -- the public register -----------------------------------------------------------------------------------

HASH = re.compile(r"^[0-9a-f]{64}$")


class NotIssued(NotFound):
    """No document with this code was issued on this platform."""

    code = "verifiable_document_not_found"


class NoMatch(NotFound):
    """This file is not a document issued on this platform, or it was altered after it was issued."""

    code = "verifiable_document_no_match"


def normalise_code(raw: str) -> str | None:
    """A code as typed or scanned (spaces and case ignored), or None when it cannot be one."""
    code = "".join(raw.split()).lower()
    return code if HASH.fullmatch(code) else None


async def lookup(session: AsyncSession, code: str) -> VerifiableDocument:
    """The register row of ``code`` (404 ``verifiable_document_not_found`` for unknown and malformed codes)."""
    normal = normalise_code(code)
    row = await VerifyRepository(session).by_hash(normal) if normal else None
    if row is None:
        raise NotIssued()
    return row


async def match_file(session: AsyncSession, chunks: AsyncIterator[bytes], *, max_bytes: int) -> VerifiableDocument:
    """The issued document whose PDF is byte for byte ``chunks`` (hashed as they arrive, never stored); 413 over
    ``max_bytes``, 404 ``verifiable_document_no_match`` when none is."""
    digest = hashlib.sha256()
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"The file is larger than the limit of {max_bytes} bytes.")
        digest.update(chunk)
    if size == 0:
        raise Unprocessable("file: the file is empty.")
    row = await VerifyRepository(session).by_file(digest.hexdigest())
    if row is None:
        raise NoMatch()
    return row
