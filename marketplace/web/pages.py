"""Signed-in pages. The dashboard sends each person to the area their organisation's roles call for."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from marketplace.analytics.repository import AnalyticsRepository
from marketplace.core.db import SessionDep
from marketplace.orgs.repository import OrgRepository
from marketplace.web import verification_form
from marketplace.web.core import CsrfChecked, SignedIn, WebError, render

router = APIRouter(include_in_schema=False)


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, session: SessionDep, user: SignedIn) -> HTMLResponse:
    if user.user_id is None:  # an API key is not a signed-in person
        raise WebError(403, "forbidden")
    memberships = await OrgRepository(session).memberships_of(user.user_id)
    # The observatory is for observers (a granted region) and admins: nobody else is shown a door that says 403.
    observer = user.is_platform_admin or bool(await AnalyticsRepository(session).prefixes_of(user.user_id))
    return render(request, "dashboard.html", {"memberships": memberships, "observer": observer}, user=user)


@router.post("/orgs/{org_id}/verification")
async def submit_verification(
    request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    """The owner sends the company's details and the business licence (a file) for an admin to verify."""
    return await verification_form.submit(request, session, user, org_id=org_id)
