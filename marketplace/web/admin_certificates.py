"""The admin's certificate queue: quality certificates factories added in the listing wizard, waiting for a
check, the oldest first and paged by cursor. Each row shows the organisation, the site (or the whole company),
standard, number, issuer, accreditation body, scope, validity (expired ones flagged) and the scan (an image
inline, a PDF opened in a new tab: the CSP forbids frames). The admin verifies a certificate (it then shows on
the listing page and counts in search and matching) or rejects it with a reason the factory sees, through
the same audited service as the API (``moderation.decide_certificate``).

A refused action saves nothing and comes back here with an error CODE in the query
(``?error=reason_required&row=<id>``), shown beside the row's reason field in the page's language."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from listings.errors import ListingsError
from listings.models import CertificateStatus
from listings.repository import ListingsRepository
from listings.schemas import Decision
from marketplace.admin import moderation
from marketplace.admin.queue_repository import AdminQueueRepository
from marketplace.core.db import SessionDep
from marketplace.core.pagination import keyset_page
from marketplace.core.text import Line, Text
from marketplace.documents.certificate_scans import scan_documents
from marketplace.web import account_2fa
from marketplace.web.admin_queues import Queue, keyset_of, messages, require_admin
from marketplace.web.core import N_, CsrfChecked, SignedIn, WebError, redirect, render

# In production an admin without two-factor sign-in is refused every page here (see account_2fa.py).
router = APIRouter(prefix="/admin", include_in_schema=False, dependencies=[Depends(account_2fa.admin_two_factor_gate)])

PATH = "/admin/certificates"
REASON_MAX = 1000  # as long as the API's Decision.reason
FormCursor = Annotated[Line, Form(max_length=2000)]

# What an action reports back to the page (a code in the query; never free text through the URL).
NOTICES = {
    "verified": N_("The certificate is verified; buyers see it on the factory's listings."),
    "rejected": N_("The certificate is rejected; the factory sees your reason."),
}
ERRORS = {
    "reason_required": N_("Give a reason so the factory knows what to correct."),
    "reason_too_long": N_("Keep the reason under 1000 characters."),
    "changed": N_("This certificate has been decided in the meantime. Reload the page and check it again."),
    "failed": N_("The action could not be completed. Please try again."),
}


@router.get("/certificates", response_class=HTMLResponse)
async def certificates(request: Request, session: SessionDep, user: SignedIn, q: Queue) -> HTMLResponse:
    """Certificates waiting for a check, the longest waiting first, each with its scan: verify or reject."""
    require_admin(user)
    repo = AdminQueueRepository(session)
    rows = await repo.pending_certificates(after=keyset_of(request, q.cursor), limit=q.limit + 1)
    page, more = keyset_page(rows, q.limit)
    scans = await scan_documents(session, [c.id for c in page])
    return render(
        request,
        "admin/certificates.html",
        {
            "rows": page,
            "scans": scans,
            "today": date.today(),
            "cursor": q.cursor or "",
            "next_url": q.next_url(PATH, more),
            "row": q.row,
            **messages(request, q.notice, q.error, notices=NOTICES, errors=ERRORS),
        },
        user=user,
    )


def _back(cursor: str, **query: str) -> Response:
    """Back to the queue (the same page of it) with a notice or error code."""
    params = {**({"cursor": cursor} if cursor else {}), **query}
    return redirect(f"{PATH}?{urlencode(params)}")


async def _decide(session: SessionDep, user: SignedIn, *, cert_id: uuid.UUID, data: Decision, cursor: str) -> Response:
    """Record the decision on a certificate still waiting for one (the row is locked while deciding)."""
    cert = await ListingsRepository(session).get_certificate(cert_id, for_update=True)
    if cert is None:
        raise WebError(404, "not_found")
    if cert.status != CertificateStatus.pending:
        return _back(cursor, error="changed", row=str(cert_id))
    try:
        await moderation.decide_certificate(session=session, principal=user, cert_id=cert_id, data=data)
    except ListingsError:
        await session.rollback()  # nothing of the refused decision is kept
        return _back(cursor, error="failed", row=str(cert_id))
    return _back(cursor, notice=data.decision)


@router.post("/certificates/{cert_id}/verify")
async def verify(
    cert_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked, cursor: FormCursor = ""
) -> Response:
    """Verify a certificate: it shows on the factory's listings and counts in search and matching."""
    require_admin(user)
    return await _decide(session, user, cert_id=cert_id, data=Decision(decision="verified"), cursor=cursor)


@router.post("/certificates/{cert_id}/reject")
async def reject(
    cert_id: uuid.UUID,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
    reason: Annotated[Text, Form()] = "",
    cursor: FormCursor = "",
) -> Response:
    """Reject a certificate with a reason the factory sees beside it in the listing wizard."""
    require_admin(user)
    reason = reason.strip()
    if not reason:
        return _back(cursor, error="reason_required", row=str(cert_id))
    if len(reason) > REASON_MAX:
        return _back(cursor, error="reason_too_long", row=str(cert_id))
    return await _decide(
        session, user, cert_id=cert_id, data=Decision(decision="rejected", reason=reason), cursor=cursor
    )
