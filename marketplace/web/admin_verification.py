"""Platform admins verify organisations: the companies waiting, each with its legal name, its Unified Social
Credit Code (and whether its check characters hold), its country, when it was sent, and its business licence
beside it (previewed in the page), and the decision form (a reason is required to reject)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError
from marketplace.core.pagination import CursorParam, decode_keyset, keyset_page
from marketplace.core.principal import Principal
from marketplace.core.text import Line, Text
from marketplace.documents import kinds
from marketplace.documents import service as documents
from marketplace.orgs import service as orgs
from marketplace.orgs.models import Organisation
from marketplace.orgs.schemas import VerificationDecision
from marketplace.orgs.uscc import validate_uscc
from marketplace.web import account_2fa, i18n
from marketplace.web.core import N_, CsrfChecked, SignedIn, WebError, locale_of, redirect, render
from marketplace.web.document_uploads import inline_response

# In production an admin without two-factor sign-in is refused every page here (see account_2fa.py).
router = APIRouter(prefix="/admin", include_in_schema=False, dependencies=[Depends(account_2fa.admin_two_factor_gate)])

PAGE_SIZE = 20
PAGE = "/admin/verification"
_ERRORS = {
    "reason": N_("Give the reason for rejecting."),
    "state": N_("This organisation's verification was already decided."),
    "decision": N_("Choose verify or reject."),
}


def _admin(user: Principal) -> Principal:
    if not user.is_platform_admin:
        raise WebError(403, "admin")
    return user


def _uscc_check(org: Organisation) -> str | None:
    """``"valid"``, ``"invalid"`` or None when the organisation gave no code."""
    if not org.uscc:
        return None
    return "invalid" if validate_uscc(org.uscc) else "valid"


@router.get("/verification", response_class=HTMLResponse)
async def verification_queue(
    request: Request,
    session: SessionDep,
    user: SignedIn,
    cursor: CursorParam = None,
    notice: Line | None = None,
    error: Line | None = None,
    org: uuid.UUID | None = None,
) -> HTMLResponse:
    _admin(user)
    rows = await orgs.list_orgs_for_admin(session, "pending", after=decode_keyset(cursor), limit=PAGE_SIZE + 1)
    pending, next_cursor = keyset_page(rows, PAGE_SIZE)
    licences = await documents.latest_attached(
        session, target_kind=kinds.ORG_LICENCE, target_ids=[o.id for o in pending]
    )
    gettext = i18n.translations(locale_of(request)).gettext
    ctx: dict[str, Any] = {
        "pending": pending,
        "licences": licences,
        "uscc_checks": {o.id: _uscc_check(o) for o in pending},
        "next_cursor": next_cursor,
        "notice": notice,
        "error_org": org,
        "error": gettext(_ERRORS[error]) if error in _ERRORS else None,
    }
    return render(request, "admin/verification.html", ctx, user=user)


@router.get("/verification/{org_id}/licence")
async def licence(request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn) -> StreamingResponse:
    """The organisation's latest business licence, to view in the page or download (admins only)."""
    _admin(user)
    found = await documents.latest_attached(session, target_kind=kinds.ORG_LICENCE, target_ids=[org_id])
    doc = found.get(org_id)
    if doc is None:
        raise WebError(404, "not_found")
    return await inline_response(request, doc)


@router.post("/orgs/{org_id}/verify")
async def verify_org(
    org_id: uuid.UUID,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
    decision: Annotated[Line, Form()] = "",
    reason: Annotated[Text, Form()] = "",
) -> Response:
    _admin(user)
    reason = reason.strip()
    if decision not in ("verified", "rejected"):
        return redirect(f"{PAGE}?error=decision&org={org_id}#org-{org_id}")
    if decision == "rejected" and not reason:
        return redirect(f"{PAGE}?error=reason&org={org_id}#org-{org_id}")
    try:
        data = VerificationDecision(
            decision="verified" if decision == "verified" else "rejected", reason=reason or "verified"
        )
        await orgs.decide_verification(session, user, org_id=org_id, data=data)
    except orgs.OrgNotFound as exc:
        raise WebError(404, "not_found") from exc
    except AppError:
        await session.rollback()  # the failed service call may have flushed part of its work
        return redirect(f"{PAGE}?error=state&org={quote(str(org_id))}#org-{org_id}")
    return redirect(f"{PAGE}?notice={decision}")
