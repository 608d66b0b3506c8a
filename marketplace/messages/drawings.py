"""A request's drawings: documents the buyer attaches to an open request (target kind ``"request"``), shown to
the parties :mod:`marketplace.messages.nda` allows."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.errors import Conflict, Forbidden
from marketplace.core.principal import Principal
from marketplace.documents import service as documents
from marketplace.messages import nda
from marketplace.requests.models import RequestStatus


class RequestNotOpen(Conflict):
    """Drawings can be added only while the request is open."""

    code = "request_not_open"


async def add(
    session: AsyncSession, principal: Principal, *, request_id: uuid.UUID, document_ids: list[uuid.UUID]
) -> list[Any]:
    """Attach the buyer's uploaded documents to its open request; returns all its drawings."""
    request = await nda.load_request(session, request_id)
    if not principal.is_member(request.buyer_org_id):
        raise nda.RequestNotFound()
    if not principal.has_scope("requests:write"):
        raise Forbidden("This API key lacks the 'requests:write' scope.")
    if request.status != RequestStatus.open:
        raise RequestNotOpen()
    await documents.attach(
        session, principal=principal, document_ids=document_ids, target_kind="request", target_id=request.id
    )
    return list(await documents.attached(session, target_kind="request", target_id=request.id))


async def listed(session: AsyncSession, principal: Principal, *, request_id: uuid.UUID) -> tuple[bool, list[Any]]:
    """(nda_required, the drawings) for someone allowed to see them."""
    request = await nda.load_request(session, request_id)
    await nda.check_drawings_access(session, principal, request)
    if not principal.has_scope("requests:read"):
        raise Forbidden("This API key lacks the 'requests:read' scope.")
    return request.nda_required, list(await documents.attached(session, target_kind="request", target_id=request.id))
