"""The owner's verification form on the dashboard: company details and the business licence as a file."""

from __future__ import annotations

import uuid

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.errors import AppError
from marketplace.core.principal import Principal
from marketplace.orgs import service as orgs
from marketplace.orgs.repository import OrgRepository
from marketplace.orgs.schemas import VerificationSubmit
from marketplace.web import i18n
from marketplace.web.core import N_, FieldError, WebError, field_errors, locale_of, redirect, render
from marketplace.web.document_uploads import store_scan

LICENCE_FIELD = "licence"
_MESSAGES = {
    "legal_name": N_("Enter the company's legal name."),
    "uscc": N_("Enter a valid 18-character Unified Social Credit Code."),
    "uscc_taken": N_("Another organisation is already registered with this Unified Social Credit Code."),
    "state": N_("This organisation cannot be sent for verification now."),
    "_": N_("The details could not be sent. Check the form and try again."),
}


def _translated(exc: Exception, locale: str) -> dict[str, str]:
    """The refusal as ``{field: message}`` in the page's language (never an internal code or English text)."""
    gettext = i18n.translations(locale).gettext
    if isinstance(exc, FieldError):
        return {exc.field: exc.message}
    if isinstance(exc, orgs.UsccTaken):
        return {"uscc": gettext(_MESSAGES["uscc_taken"])}
    if isinstance(exc, orgs.VerificationStateConflict):
        return {"_": gettext(_MESSAGES["state"])}
    out: dict[str, str] = {}
    for field in field_errors(exc, locale=locale):
        key = field if field in ("legal_name", "uscc") else "_"
        out.setdefault(key, gettext(_MESSAGES[key]))
    return out or {"_": gettext(_MESSAGES["_"])}


async def submit(request: Request, session: AsyncSession, user: Principal, *, org_id: uuid.UUID) -> Response:
    """Upload the licence and send the details; on any refusal nothing is saved and the dashboard shows the
    messages beside the fields (and a summary above the form)."""
    if user.user_id is None or not user.is_member(org_id):
        raise WebError(404, "not_found")  # an outsider learns nothing, and nothing is read or stored
    if not user.is_owner(org_id):
        raise WebError(403, "forbidden")
    form = await request.form()
    values = {"legal_name": str(form.get("legal_name") or "").strip(), "uscc": str(form.get("uscc") or "").strip()}
    try:
        upload = form.get(LICENCE_FIELD)
        doc = await store_scan(request, session, user, org_id=org_id, upload=upload, field=LICENCE_FIELD)
        data = VerificationSubmit(
            legal_name=values["legal_name"], uscc=values["uscc"] or None, licence_document_id=doc.id
        )
        await orgs.submit_verification(session, user, org_id=org_id, data=data)
    except orgs.OrgNotFound as exc:
        raise WebError(404, "not_found") from exc
    except (ValidationError, AppError, FieldError) as exc:
        await session.rollback()  # the upload and any partial work are discarded: nothing is saved
        errors = _translated(exc, locale_of(request))
        memberships = await OrgRepository(session).memberships_of(user.user_id)
        ctx = {"memberships": memberships, "verify_errors": {org_id: errors}, "verify_form": {org_id: values}}
        return render(request, "dashboard.html", ctx, status=422, user=user)
    return redirect("/dashboard?notice=submitted")
