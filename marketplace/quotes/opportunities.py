"""The factories' job board: open requests that a verified supplier's published listings can serve, without
the buyer's identity.

Which listing can serve which request is the matching engine's verdict (:func:`matching.engine.match_for_asset`
over candidates loaded by :func:`matching.adapter.load_assets`, published listings of verified organisations
only); the SQL here only narrows the requests to the kinds, processes and currencies the listings offer."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.errors import Forbidden, NotFound, Unprocessable
from marketplace.core.principal import Principal
from marketplace.quotes.invitation_models import InvitationStatus, QuoteInvitation
from marketplace.quotes.invitation_repository import InvitationRepository
from marketplace.requests.convert import match_request
from marketplace.requests.matches import BLOCKED, _codes_served_by, serving_codes
from marketplace.requests.models import BuyerRequest
from marketplace.requests.repository import RequestRepository
from matching import adapter, engine
from matching.types import FeasibleMatch

BATCH = 200  # requests read per round while filling one page


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Fit:
    asset_id: uuid.UUID
    match: FeasibleMatch


@dataclass
class Opportunity:
    request: BuyerRequest
    fits: list[Fit]
    titles: dict[uuid.UUID, str] = field(default_factory=dict)
    invitation: QuoteInvitation | None = None


async def fitting(
    session: AsyncSession, requests: Sequence[BuyerRequest], asset_ids: Sequence[uuid.UUID], *, now: datetime
) -> dict[uuid.UUID, list[Fit]]:
    """For each request, the listings among ``asset_ids`` (published, of a verified organisation) that can
    serve it, by the engine's hard constraints, with their earliest slot."""
    wanted = [(r, mr) for r in requests if (mr := match_request(r, now=now)) is not None]
    out: dict[uuid.UUID, list[Fit]] = {r.id: [] for r in requests}
    if not wanted or not asset_ids:
        return out
    start = min(mr.earliest_start for _, mr in wanted)
    end = max(mr.deadline for _, mr in wanted)
    cands = await adapter.load_assets(
        session, start, end, blocked=BLOCKED, stats=adapter.NoStats(), now=now, asset_ids=list(asset_ids)
    )
    for r, mr in wanted:
        codes = serving_codes(mr.process_code)
        for cand in cands:
            if cand.org_id == str(r.buyer_org_id):
                continue
            found = engine.match_for_asset(mr, cand, codes)
            if found is not None:
                out[r.id].append(Fit(asset_id=uuid.UUID(cand.asset_id), match=found))
    return out


async def supplier_org(session: AsyncSession, principal: Principal, requested: uuid.UUID | None) -> uuid.UUID:
    """The caller's supplier organisation the board is for: the one asked for, or the only one."""
    if not principal.has_scope("requests:read"):
        raise Forbidden("This API key lacks the 'requests:read' scope.")
    candidates = [requested] if requested else sorted(principal.org_ids)
    allowed = [o for o in candidates if principal.can_act_for(o, "requests:read")]
    found = await RequestRepository(session).organisations(allowed)
    orgs = [o for o in allowed if o in found and "supplier" in found[o].roles]
    if requested and not orgs:
        raise NotFound("Organisation not found.")
    if len(orgs) != 1:
        raise Unprocessable("org_id: say which of your supplier organisations the job board is for (or you have none).")
    return orgs[0]


async def board(
    *,
    session: AsyncSession,
    principal: Principal,
    org_id: uuid.UUID | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Opportunity]:
    """Up to ``limit`` opportunities of the caller's supplier organisation, newest first, after the keyset
    ``after``. Open-audience requests need a fitting listing; invited-audience requests need an invitation
    (not withdrawn). An unverified organisation sees nothing."""
    org = await supplier_org(session, principal, org_id)
    orgs = await RequestRepository(session).organisations([org])
    if orgs[org].verification_status != "verified":
        return []
    repo = InvitationRepository(session)
    assets = await repo.published_assets(org)
    titles = {a.id: a.title for a in assets}
    codes = sorted({c for a in assets for c in _codes_served_by(a.process_codes)})
    kinds = sorted({a.kind for a in assets})
    currencies = sorted({a.currency for a in assets})
    now = _now()
    out: list[Opportunity] = []
    while len(out) < limit:
        rows = await repo.board_page(
            org_id=org, kinds=kinds, codes=codes, currencies=currencies, now=now, after=after, limit=BATCH
        )
        if not rows:
            break
        fits = await fitting(session, rows, list(titles), now=now)
        invitations = await repo.of_org_for_requests(org, [r.id for r in rows])
        for r in rows:
            inv = invitations.get(r.id)
            if inv is not None and inv.status == InvitationStatus.withdrawn:
                inv = None
            invited = inv is not None and inv.via != "board"
            visible = invited if r.audience == "invited" else (bool(fits[r.id]) or invited)
            if visible:
                out.append(Opportunity(request=r, fits=fits[r.id], titles=titles, invitation=inv))
                if len(out) >= limit:
                    break
        if len(rows) < BATCH:
            break
        after = (rows[-1].created_at, rows[-1].id)
    return out
