"""Who may read or change a buyer request, and the errors of the requests room."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from marketplace.core.principal import Principal
from marketplace.orgs.models import Organisation
from marketplace.requests.models import BuyerRequest
from marketplace.requests.repository import RequestRepository


class RequestNotFound(NotFound):
    """Request not found."""


class RequestNotOpen(Conflict):
    """Only open requests can be changed."""

    code = "request_not_open"


async def buyer_org(session: AsyncSession, principal: Principal, requested: uuid.UUID | None) -> Organisation:
    """The buyer organisation posting a request: the one asked for, or the caller's only buyer organisation."""
    if not principal.has_scope("requests:write"):
        raise Forbidden("This API key lacks the 'requests:write' scope.")
    candidates = [requested] if requested else sorted(principal.org_ids)
    allowed = [o for o in candidates if principal.can_act_for(o, "requests:write")]
    found = await RequestRepository(session).organisations(allowed)  # one statement, not one per organisation
    orgs = [found[o] for o in allowed if o in found and "buyer" in found[o].roles]
    if requested and not orgs:
        raise NotFound("Organisation not found.")
    if len(orgs) != 1:
        raise Unprocessable("buyer_org_id: say which of your buyer organisations posts (or you have none).")
    return orgs[0]


async def load_request(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, *, scope: str, for_update: bool = False
) -> BuyerRequest:
    """The request if the caller's organisation posted it (or the caller is a platform admin) and the caller's
    key has ``scope``; 404 rather than 403 for other organisations' requests, so ids do not leak."""
    row = await RequestRepository(session).get(request_id, for_update=for_update)
    if row is None or not (principal.is_platform_admin or principal.is_member(row.buyer_org_id)):
        raise RequestNotFound()
    if not principal.is_platform_admin and not principal.has_scope(scope):
        raise Forbidden(f"This API key lacks the '{scope}' scope.")
    return row
