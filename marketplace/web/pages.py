"""Signed-in pages. The dashboard sends each person to the area their organisation's roles call for."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from marketplace.db import SessionDep
from marketplace.orgs.repository import OrgRepository
from marketplace.web.core import SignedIn, render

router = APIRouter(include_in_schema=False)


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, session: SessionDep, user: SignedIn) -> HTMLResponse:
    assert user.user_id is not None
    memberships = await OrgRepository(session).memberships_of(user.user_id)
    return render(request, "dashboard.html", {"memberships": memberships}, user=user)
