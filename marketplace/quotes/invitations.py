"""Quote requests to factories (invitations), and who may see and quote on a request.

A buyer asks a factory from its request's ranked matches to quote (``invite``); so does the cascade
(:mod:`marketplace.quotes.cascade`). The invited organisation has ``quote_request_lapse_hours`` to answer: it
quotes (``on_quoted``, called by the quotes room), declines (``decline``), or lets it lapse (the delayed
``quotes.invitation_lapse`` job and the cascade sweep). The quotes and messages rooms call ``may_see``,
``may_quote`` and ``on_quoted``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from listings.models import Asset
from listings.taxonomy import get_taxonomy
from marketplace.core import audit
from marketplace.core.errors import Conflict, NotFound, Unprocessable
from marketplace.core.jobs import enqueue
from marketplace.core.principal import Principal
from marketplace.core.settings import get_settings
from marketplace.notifications.service import TEMPLATES, notify_org
from marketplace.quotes.invitation_models import InvitationStatus, QuoteInvitation
from marketplace.quotes.invitation_repository import InvitationRepository
from marketplace.quotes.opportunities import fitting
from marketplace.requests.access import RequestNotOpen, load_request
from marketplace.requests.convert import match_request
from marketplace.requests.hooks import register_close_hook
from marketplace.requests.matches import run_match
from marketplace.requests.models import BuyerRequest, RequestStatus
from marketplace.requests.repository import RequestRepository
from marketplace.requests.schemas import MatchOut

RANKED = 100  # a buyer may invite any of the first RANKED matches (GET /requests/{id}/matches?limit=100)

TEMPLATES.update(
    {
        ("quote.invited", "en"): (
            "Request for quotation: {process}",
            "A buyer asks you to quote for {process} with {title}. Please quote or decline by {respond_by}.",
        ),
        ("quote.invited", "zh-CN"): (
            "询价邀请：{process_zh}",
            "一位买方邀请您使用 {title} 为 {process_zh} 报价。请在 {respond_by} 前报价或谢绝。",
        ),
        ("quote.invitation_declined", "en"): (
            "A factory declined to quote",
            "A factory you asked declined to quote for your request for {process}. Reason: {reason}",
        ),
        ("quote.invitation_declined", "zh-CN"): (
            "工厂谢绝报价",
            "您邀请的一家工厂谢绝为您的 {process_zh} 需求报价。原因：{reason}",
        ),
        ("request.cascaded", "en"): (
            "Your request went to the next factory",
            "The factory asked about your request for {process} declined or did not answer in time. "
            "The request now goes to the factory ranked {rank} among your matches.",
        ),
        ("request.cascaded", "zh-CN"): (
            "您的需求已转给下一家工厂",
            "此前受邀的工厂谢绝或未按时答复您的 {process_zh} 需求。该需求现已转给匹配结果中排名第 {rank} 的工厂。",
        ),
        ("request.cascade_exhausted", "en"): (
            "No more factories to ask",
            "Every matching factory was asked about your request for {process}; none is left to ask. "
            "You can change the request or invite factories yourself.",
        ),
        ("request.cascade_exhausted", "zh-CN"): (
            "已没有可询价的工厂",
            "所有匹配的工厂都已被询问过您的 {process_zh} 需求，已无其他工厂可询价。您可以修改需求或自行邀请工厂。",
        ),
    }
)


def _now() -> datetime:
    return datetime.now(UTC)


def _when(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def process_names(code: str) -> dict[str, str]:
    tax = get_taxonomy()
    return {"process": tax.name(code, "en"), "process_zh": tax.name(code, "zh-CN")}


def lapse_seconds() -> float:
    return float(get_settings().quote_request_lapse_hours) * 3600.0


async def ranked(session: AsyncSession, request: BuyerRequest, *, now: datetime) -> list[MatchOut]:
    """The request's matches in the order GET /requests/{id}/matches gives them."""
    return (await run_match(session, match_request(request, now=now), limit=RANKED, now=now)).items


async def create_invitation(
    session: AsyncSession,
    *,
    request: BuyerRequest,
    match: MatchOut,
    rank: int | None,
    via: str,
    principal: Principal | None = None,
) -> QuoteInvitation | None:
    """Ask the match's organisation to quote (``None``: it already has a row for this request). Notifies it
    (without the buyer's identity) and starts its lapse timer."""
    now = _now()
    row = QuoteInvitation(
        request_id=request.id,
        supplier_org_id=match.org_id,
        asset_id=match.asset_id,
        rank=rank,
        via=via,
        invited_at=now,
        respond_by=now + timedelta(seconds=lapse_seconds()),
    )
    added = await InvitationRepository(session).add(row)
    if added is None:
        return None
    titles = await RequestRepository(session).titles([match.asset_id])
    data: dict[str, Any] = {
        "request_id": str(request.id),
        "invitation_id": str(added.id),
        "asset_id": str(match.asset_id),
        "title": titles.get(match.asset_id, ""),
        "respond_by": _when(added.respond_by),
        **process_names(request.process_code),
    }
    await notify_org(session, match.org_id, kind="quote.invited", data=data)
    await enqueue(session, "quotes.invitation_lapse", str(added.id), delay_seconds=lapse_seconds())
    # Audited on the request: who asked which factory (the buyer, or the system for the cascade).
    await audit.record(
        session,
        actor_user_id=principal.user_id if principal else None,
        actor_api_key_id=principal.api_key_id if principal else None,
        action="request.invited",
        target_type="request",
        target_id=request.id,
        after={
            "invitation_id": str(added.id),
            "supplier_org_id": str(match.org_id),
            "asset_id": str(match.asset_id),
            "rank": rank,
            "via": via,
        },
    )
    return added


async def invite(
    *, session: AsyncSession, principal: Principal, request_id: uuid.UUID, asset_id: uuid.UUID
) -> QuoteInvitation:
    """The buyer asks the organisation of one of its request's matches to quote."""
    request = await load_request(session, principal, request_id, scope="requests:write", for_update=True)
    if request.status != RequestStatus.open:
        raise RequestNotOpen("Only open requests can be sent to factories.")
    items = await ranked(session, request, now=_now())
    pos = next((i for i, m in enumerate(items) if m.asset_id == asset_id), None)
    if pos is None:
        raise Unprocessable("asset_id: this listing is not among the request's matches.")
    added = await create_invitation(
        session, request=request, match=items[pos], rank=pos + 1, via="buyer", principal=principal
    )
    if added is None:
        raise Conflict("This factory has already been asked to quote for this request.")
    return added


async def list_for_request(session: AsyncSession, principal: Principal, request_id: uuid.UUID) -> list[QuoteInvitation]:
    """The request's invitations, for its buyer."""
    request = await load_request(session, principal, request_id, scope="requests:read")
    return await InvitationRepository(session).for_request(request.id)


async def decline(
    *, session: AsyncSession, principal: Principal, request_id: uuid.UUID, reason: str
) -> QuoteInvitation:
    """The invited organisation declines; with auto-cascade on, the next-ranked factory is asked."""
    repo = InvitationRepository(session)
    inv: QuoteInvitation | None = None
    for org in sorted(principal.org_ids):
        if principal.can_act_for(org, "requests:write"):
            inv = await repo.of_org(request_id, org, for_update=True)
            if inv is not None and inv.via != "board":
                break
            inv = None
    if inv is None or inv.status == InvitationStatus.withdrawn:
        raise NotFound("Invitation not found.")
    if inv.status != InvitationStatus.invited:
        raise Conflict(f"This invitation can no longer be declined (it is {inv.status}).")
    request = await RequestRepository(session).get(request_id)
    if request is None:
        raise NotFound("Invitation not found.")
    if request.status != RequestStatus.open:
        raise RequestNotOpen("The request is no longer open.")
    inv.status = InvitationStatus.declined
    inv.reason = reason
    inv.answered_at = _now()
    await session.flush()
    await audit.record(
        session,
        actor_user_id=principal.user_id,
        actor_api_key_id=principal.api_key_id,
        action="request.invitation_declined",
        target_type="request",
        target_id=request.id,
        before={"invitation_id": str(inv.id), "status": InvitationStatus.invited},
        after={"invitation_id": str(inv.id), "status": inv.status, "supplier_org_id": str(inv.supplier_org_id)},
        reason=reason,
    )
    if request.auto_cascade and request.status == RequestStatus.open:
        await enqueue(session, "quotes.cascade_start", str(request.id))
    else:
        data = {"request_id": str(request.id), "reason": reason, **process_names(request.process_code)}
        await notify_org(session, request.buyer_org_id, kind="quote.invitation_declined", data=data)
    return inv


# -- the interface of the quotes and messages rooms ----------------------------------------------------


async def may_see(session: AsyncSession, *, request: BuyerRequest, supplier_org_id: uuid.UUID) -> bool:
    """May this supplier organisation see the (open) request as an opportunity? Open audience: one of its
    published listings can serve it and the organisation is verified; invited audience: it was invited."""
    if supplier_org_id == request.buyer_org_id:
        return False
    inv = await InvitationRepository(session).of_org(request.id, supplier_org_id)
    if inv is not None and inv.status != InvitationStatus.withdrawn:
        return True
    if request.audience != "open" or request.status != RequestStatus.open:
        return False
    assets = await InvitationRepository(session).published_assets(supplier_org_id)
    fits = await fitting(session, [request], [a.id for a in assets], now=_now())
    return bool(fits[request.id])


async def may_quote(session: AsyncSession, *, request: BuyerRequest, supplier_org_id: uuid.UUID, asset: Asset) -> bool:
    """May the supplier quote this listing for the request (it can see it, and the listing can serve it)?"""
    if asset.org_id != supplier_org_id or request.status != RequestStatus.open:
        return False
    if not await may_see(session, request=request, supplier_org_id=supplier_org_id):
        return False
    fits = await fitting(session, [request], [asset.id], now=_now())
    return bool(fits[request.id])


async def on_quoted(session: AsyncSession, *, request_id: uuid.UUID, supplier_org_id: uuid.UUID) -> None:
    """A supplier quoted: its invitation (if any) is answered, so it no longer lapses or cascades."""
    await InvitationRepository(session).mark_quoted(request_id=request_id, org_id=supplier_org_id, now=_now())


async def _withdraw_on_close(session: AsyncSession, request_id: uuid.UUID, now: datetime) -> None:
    """A request closed (booked or cancelled): its waiting invitations are withdrawn in the same transaction."""
    await InvitationRepository(session).withdraw_closed(now, request_id=request_id)


register_close_hook(_withdraw_on_close)
