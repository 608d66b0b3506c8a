"""Signed-in pages. The dashboard sends each person to the area their organisation's roles call for."""

from __future__ import annotations

import uuid
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError
from marketplace.orgs import service as orgs
from marketplace.orgs.repository import OrgRepository
from marketplace.orgs.schemas import VerificationDocument, VerificationSubmit
from marketplace.web.core import CsrfChecked, SignedIn, WebError, field_errors, redirect, render

router = APIRouter(include_in_schema=False)


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, session: SessionDep, user: SignedIn) -> HTMLResponse:
    if user.user_id is None:  # an API key is not a signed-in person
        raise WebError(403, "forbidden")
    memberships = await OrgRepository(session).memberships_of(user.user_id)
    return render(request, "dashboard.html", {"memberships": memberships}, user=user)


@router.post("/orgs/{org_id}/verification")
async def submit_verification(
    request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    """The owner sends the company's details and a document reference for an admin to verify."""
    form = await request.form()
    try:
        data = VerificationSubmit(
            legal_name=str(form.get("legal_name") or ""),
            uscc=str(form.get("uscc") or "") or None,
            documents=[
                VerificationDocument(
                    name=str(form.get("document_name") or "business licence"),
                    reference=str(form.get("document_reference") or ""),
                )
            ],
        )
        await orgs.submit_verification(session, user, org_id=org_id, data=data)
    except (ValidationError, AppError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        return redirect(f"/dashboard?error={quote(next(iter(field_errors(exc).values())))}")
    return redirect("/dashboard?notice=submitted")
