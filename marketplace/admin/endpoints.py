from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from marketplace.admin.repository import AuditRepository
from marketplace.auth.deps import AdminPrincipal
from marketplace.core.db import SessionDep
from marketplace.core.errors import BadRequest, error_responses
from marketplace.core.pagination import (
    CursorParam,
    LimitParam,
    Page,
    decode_cursor,
    decode_keyset,
    encode_cursor,
    keyset_page,
)
from marketplace.core.text import Line
from marketplace.orgs import service as org_service
from marketplace.orgs.schemas import AuditOut, OrgPublic, VerificationDecision

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/orgs", response_model=Page[OrgPublic], responses=error_responses(401, 403))
async def list_orgs(
    session: SessionDep,
    admin: AdminPrincipal,
    status: Annotated[Literal["unverified", "pending", "verified", "rejected"] | None, Query()] = None,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> Page[OrgPublic]:
    orgs = await org_service.list_orgs_for_admin(session, status, after=decode_keyset(cursor), limit=limit + 1)
    page, next_cursor = keyset_page(orgs, limit)
    return Page(items=[OrgPublic.model_validate(o) for o in page], next_cursor=next_cursor)


@router.post(
    "/orgs/{org_id}/verify",
    response_model=OrgPublic,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def verify_org(
    org_id: uuid.UUID, data: VerificationDecision, session: SessionDep, admin: AdminPrincipal
) -> OrgPublic:
    return OrgPublic.model_validate(await org_service.decide_verification(session, admin, org_id=org_id, data=data))


@router.get("/audit", response_model=Page[AuditOut], responses=error_responses(401, 403))
async def audit_log(
    session: SessionDep,
    admin: AdminPrincipal,
    target_type: Annotated[Line | None, Query(max_length=100)] = None,
    target_id: Annotated[Line | None, Query(max_length=200)] = None,
    action: Annotated[Line | None, Query(max_length=100)] = None,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> Page[AuditOut]:
    before_id = None
    if (values := decode_cursor(cursor)) is not None:
        if not values or not isinstance(values[0], int):
            raise BadRequest("Malformed cursor.")
        before_id = values[0]
    rows = await AuditRepository(session).entries(
        limit=limit + 1, target_type=target_type, target_id=target_id, action=action, before_id=before_id
    )
    next_cursor = encode_cursor([rows[limit - 1].id]) if len(rows) > limit else None
    return Page(items=[AuditOut.model_validate(r) for r in rows[:limit]], next_cursor=next_cursor)
