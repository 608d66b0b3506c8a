"""The platform NDA (text version ``settings.nda_version``; docs/nda.md holds the same text) and who may see a
request's drawings: the buyer always; a supplier organisation that may see the request, and, when the request
requires the NDA, only once it accepted it (who, when and which version are recorded)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.errors import Forbidden, NotFound, Unprocessable
from marketplace.core.principal import Principal
from marketplace.core.settings import Settings
from marketplace.core.sqltypes import utcnow
from marketplace.documents.access import register_party_check
from marketplace.messages.models import NdaAcceptance
from marketplace.messages.repository import MessageRepository
from marketplace.quotes import invitations
from marketplace.requests.models import BuyerRequest
from marketplace.requests.repository import RequestRepository

NDA_VERSION = "2026-12"

NDA_TEXT_EN = """\
Non-disclosure agreement (version 2026-12)

1. The buyer's drawings, models, specifications and any other documents shared through the platform for a
   request are confidential information of the buyer.
2. Your organisation uses them only to assess the request, to quote for it and, if a booking follows, to do the
   work booked. It does not disclose them to anyone other than its own staff who need them for that purpose.
3. Your organisation does not copy, reverse-engineer or keep them longer than needed, and deletes them when the
   buyer asks or when the request closes without a booking.
4. These duties last for three years after the last access to the documents.
5. Every download is recorded. Accepting this agreement records your name, your organisation, the time and this
   version.
"""

NDA_TEXT_ZH = """\
保密协议（版本 2026-12）

1. 买方为某一需求通过平台提供的图纸、模型、技术要求及其他文件均属买方的保密信息。
2. 贵单位仅可将其用于评估该需求、报价，以及在形成预订后完成所预订的加工或检测；除因上述目的确需知悉的本单位员工外，
   不得向任何人披露。
3. 贵单位不得复制、反向工程或超出必要期限保存上述文件；买方要求时，或需求未形成预订而关闭时，应予删除。
4. 上述义务在最后一次访问文件后三年内持续有效。
5. 每次下载均有记录。接受本协议时，将记录您的姓名、所属单位、时间及本协议版本。
"""


class AcceptTheNda(Forbidden):
    """Accept the NDA to see the drawings."""

    code = "nda_required"


class RequestNotFound(NotFound):
    """Request not found."""


async def load_request(session: AsyncSession, request_id: uuid.UUID) -> BuyerRequest:
    row = await RequestRepository(session).get(request_id)
    if row is None:
        raise RequestNotFound()
    return row


async def visible_supplier_orgs(
    session: AsyncSession, request: BuyerRequest, org_ids: frozenset[uuid.UUID]
) -> tuple[list[uuid.UUID], set[uuid.UUID]]:
    """The organisations (of ``org_ids``) that may see the request as suppliers, and those of them that may see
    its drawings (no NDA required, or NDA accepted)."""
    seeing = [
        o
        for o in sorted(org_ids - {request.buyer_org_id})
        if await invitations.may_see(session, request=request, supplier_org_id=o)
    ]
    if not request.nda_required:
        return seeing, set(seeing)
    accepted = await MessageRepository(session).accepted_orgs(request.id, seeing) if seeing else set()
    return seeing, accepted


async def may_read_drawings(session: AsyncSession, request_id: uuid.UUID, org_ids: frozenset[uuid.UUID]) -> bool:
    """Party check of documents attached to a request (its drawings)."""
    request = await RequestRepository(session).get(request_id)
    if request is None:
        return False
    if request.buyer_org_id in org_ids:
        return True
    _seeing, allowed = await visible_supplier_orgs(session, request, org_ids)
    return bool(allowed)


register_party_check("request", may_read_drawings)


async def check_drawings_access(session: AsyncSession, principal: Principal, request: BuyerRequest) -> None:
    """The buyer (and admins) always; a supplier that may see the request and (if required) accepted the NDA;
    a supplier that may see it but has not accepted: 403 with a clear detail; anyone else: 404."""
    if principal.is_platform_admin or principal.is_member(request.buyer_org_id):
        return
    seeing, allowed = await visible_supplier_orgs(session, request, principal.org_ids)
    if allowed:
        return
    if seeing:
        raise AcceptTheNda("Accept the NDA to see the drawings.")
    raise RequestNotFound()


async def accept(
    session: AsyncSession, principal: Principal, *, settings: Settings, request_id: uuid.UUID, version: str
) -> NdaAcceptance:
    """Record that the caller's supplier organisation accepted the NDA for the request (idempotent: the first
    acceptance stays)."""
    request = await load_request(session, request_id)
    seeing, _allowed = await visible_supplier_orgs(session, request, principal.org_ids)
    if not seeing:
        raise RequestNotFound()
    if principal.user_id is None:
        raise Forbidden("A person accepts the NDA: sign in as a user of your organisation to accept it.")
    if version != settings.nda_version:
        raise Unprocessable(f"version: the NDA in force is version {settings.nda_version}; read it and accept that.")
    return await MessageRepository(session).accept_nda(
        NdaAcceptance(
            request_id=request.id, org_id=seeing[0], user_id=principal.user_id, version=version, accepted_at=utcnow()
        )
    )
