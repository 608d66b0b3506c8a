"""Public pages of make + verify (issue #17), no sign-in: ``/verify`` (enter a code or upload a PDF copy) and
``/verify/{code}`` (what the platform issued under that code: issuer, kind, date, verdict or declaration,
accreditation and sampling plan; never the buyer, never a price), with a check of an uploaded copy, byte for
byte. The same register as ``GET /api/v1/verify/{code}`` and ``POST /api/v1/verify``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Any

from babel import Locale
from babel.dates import format_date
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError, NotFound, RateLimited
from marketplace.core.text import Line
from marketplace.documents.errors import PayloadTooLarge
from marketplace.documents.storage import CHUNK
from marketplace.inspection import verifiable
from marketplace.inspection.models import VerifiableDocument
from marketplace.inspection.verify_endpoints import MAX_CHECK_BYTES, limit_checks
from marketplace.web import i18n
from marketplace.web.core import N_, CsrfChecked, WebUser, locale_of, redirect, render

router = APIRouter(include_in_schema=False)

KINDS = {"inspection_report": N_("Inspection report"), "coc": N_("Certificate of conformance")}
VERDICTS = {"accepted": N_("Accepted (the lot conforms)"), "rejected": N_("Rejected (the lot does not conform)")}
ACCREDITATION = {
    "covered": N_("Covered by the laboratory's accreditation"),
    "no_certificate": N_("Not covered: the laboratory had no valid accreditation certificate"),
    "not_valid_on_test_date": N_("Not covered: the certificate was not valid on the test date"),
    "out_of_scope": N_("Not covered: the test standard is outside the accreditation's scope"),
}
BAD_CODE = N_("This is not a valid code: a code has 64 characters, the digits 0–9 and the letters a–f.")
MISSING_FILE = N_("Choose a PDF file to check.")
TOO_LARGE = N_("The file is too large: at most %(size)s MB.")
EMPTY = N_("The file is empty.")
TOO_MANY = N_("Too many checks. Please wait %(seconds)s seconds and try again.")
MATCH = N_("This file is the document issued on %(date)s: it matches the issued file byte for byte.")
NO_MATCH = N_("This file does not match the issued document: it may have been altered.")
NO_MATCH_ANY = N_("This file does not match any document issued on this platform: it may have been altered.")


DAY_PATTERNS = {"zh-CN": "yyyy年M月d日", "en": "d MMM yyyy"}


def _day(value: date | str | None, locale: str) -> str:
    """A day the locale's way ("7 Dec 2026", "2026年12月7日"); ISO text from a summary is read first."""
    if not value:
        return "–"
    try:
        day = value if isinstance(value, date) else date.fromisoformat(value)
    except ValueError:
        return str(value)
    pattern = DAY_PATTERNS.get(locale, DAY_PATTERNS["en"])
    return format_date(day, pattern, locale=Locale.parse(i18n.babel_name(locale)))


def _labels(locale: str) -> dict[str, Any]:
    gettext = i18n.translations(locale).gettext
    return {
        "kinds": {k: gettext(v) for k, v in KINDS.items()},
        "verdicts": {k: gettext(v) for k, v in VERDICTS.items()},
        "accreditation": {k: gettext(v) for k, v in ACCREDITATION.items()},
    }


def _form_page(request: Request, user: Any, *, ctx: dict[str, Any], status: int = 200) -> HTMLResponse:
    base = {"code": "", "errors": {}}
    return render(request, "verify.html", {**base, **ctx}, status=status, user=user)


def _document_page(
    request: Request, user: Any, row: VerifiableDocument, *, check: dict[str, str] | None = None, status: int = 200
) -> HTMLResponse:
    locale = locale_of(request)
    processes = [p.get("zh" if locale == "zh-CN" else "en") or p.get("code") for p in row.summary.get("processes", [])]
    ctx = {
        "row": row,
        "s": row.summary,
        "processes": processes,
        "check": check,
        "day": lambda value: _day(value, locale),
        **_labels(locale),
    }
    return render(request, "verify_document.html", ctx, status=status, user=user)


def _missing(request: Request, user: Any) -> HTMLResponse:
    return render(request, "verify_missing.html", {}, status=404, user=user)


async def _small_body(request: Request) -> None:
    """Refuse an oversized upload before its form is read (the CSRF check reads it)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_CHECK_BYTES + 16 * 1024:
        raise PayloadTooLarge()


SmallBody = Annotated[None, Depends(_small_body)]


@router.get("/verify", response_class=HTMLResponse)
async def verify_form(request: Request, user: WebUser, code: Line | None = None) -> Response:
    """The form; a code typed into it (``?code=``) goes to its page."""
    if code is None or not code.strip():
        return _form_page(request, user, ctx={})
    normal = verifiable.normalise_code(code)
    if normal is None:
        message = i18n.translations(locale_of(request)).gettext(BAD_CODE)
        return _form_page(request, user, ctx={"code": code, "errors": {"code": message}}, status=422)
    return redirect(f"/verify/{normal}")


@router.get("/verify/{code}", response_class=HTMLResponse)
async def verify_document(request: Request, code: Line, session: SessionDep, user: WebUser) -> HTMLResponse:
    try:
        row = await verifiable.lookup(session, code)
    except NotFound:
        return _missing(request, user)
    return _document_page(request, user, row)


async def _checked(request: Request, session: SessionDep) -> tuple[VerifiableDocument | None, str | None]:
    """(the issued document the uploaded file is, or None; a message for the form when it could not be read)."""
    gettext = i18n.translations(locale_of(request)).gettext
    try:
        await limit_checks(request)
    except RateLimited as exc:
        return None, gettext(TOO_MANY) % {"seconds": exc.extra.get("retry_after", 60)}
    upload = (await request.form()).get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None, gettext(MISSING_FILE)

    async def chunks() -> AsyncIterator[bytes]:
        while chunk := await upload.read(CHUNK):
            yield chunk

    try:
        return await verifiable.match_file(session, chunks(), max_bytes=MAX_CHECK_BYTES), None
    except PayloadTooLarge:
        return None, gettext(TOO_LARGE) % {"size": MAX_CHECK_BYTES // (1024 * 1024)}
    except NotFound:
        return None, None
    except AppError:
        return None, gettext(EMPTY)


@router.post("/verify/check", response_class=HTMLResponse)
async def verify_upload(
    request: Request, session: SessionDep, user: WebUser, _size: SmallBody, _csrf: CsrfChecked
) -> HTMLResponse:
    """Which issued document an uploaded PDF is: its page with the match, or the form with the refusal."""
    gettext = i18n.translations(locale_of(request)).gettext
    row, problem = await _checked(request, session)
    if row is not None:
        check = {"ok": "1", "message": gettext(MATCH) % {"date": _day(row.issued_on, locale_of(request))}}
        return _document_page(request, user, row, check=check)
    errors = {"file": problem or gettext(NO_MATCH_ANY)}
    return _form_page(request, user, ctx={"errors": errors}, status=422 if problem else 200)


@router.post("/verify/{code}/check", response_class=HTMLResponse)
async def verify_copy(
    request: Request, code: Line, session: SessionDep, user: WebUser, _size: SmallBody, _csrf: CsrfChecked
) -> HTMLResponse:
    """Is the uploaded PDF the document issued under ``code``, byte for byte?"""
    try:
        expected = await verifiable.lookup(session, code)
    except NotFound:
        return _missing(request, user)
    gettext = i18n.translations(locale_of(request)).gettext
    row, problem = await _checked(request, session)
    if row is not None and row.hash == expected.hash:
        check = {"ok": "1", "message": gettext(MATCH) % {"date": _day(row.issued_on, locale_of(request))}}
    else:
        check = {"ok": "", "message": problem or gettext(NO_MATCH)}
    return _document_page(request, user, expected, check=check, status=422 if problem else 200)
