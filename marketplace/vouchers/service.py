"""Voucher programmes and vouchers (issue #18): what the API (``endpoints.py``) and the web pages call.

Who may do what:

* A programme is run by the members of its organisation (role ``programme``, verified by the platform) and by
  platform admins (its *operators*). Every signed-in user sees the programmes' public terms.
* A buyer's member applies for a voucher; an operator grants one (or approves an application). Either way the
  buyer must have the role buyer and be registered in the programme's region (its USCC).
* A buyer's members see their organisation's vouchers; a stranger gets 404.

Services take a session and never commit; the endpoint or page owns the transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from listings.models import AssetStatus
from marketplace.bookings.rules import field_error
from marketplace.core import audit
from marketplace.core.errors import Forbidden, NotFound
from marketplace.core.principal import Principal
from marketplace.orgs.models import Organisation
from marketplace.vouchers import eligibility as rules
from marketplace.vouchers.eligibility import (
    InvalidVoucherState,
    NotProgrammeOrg,
    ProgrammeNotFound,
    ProgrammeOrgUnverified,
    VoucherExists,
    VoucherNotEligible,
    VoucherNotFound,
)
from marketplace.vouchers.models import Voucher, VoucherProgramme, VoucherStatus
from marketplace.vouchers.repository import VoucherRepository
from marketplace.vouchers.schemas import (
    ProgrammeCreate,
    ProgrammeOut,
    ProgrammeTerms,
    ProgrammeUpdate,
    VoucherDecision,
    VoucherOut,
    VoucherRequest,
)


@dataclass(frozen=True)
class VoucherView:
    voucher: Voucher
    programme: VoucherProgramme
    buyer_name: str
    used_this_year: int
    remaining_this_year: int


def operates(principal: Principal, programme: VoucherProgramme) -> bool:
    return principal.can_act_for(programme.org_id) or principal.is_platform_admin


def _require_person(principal: Principal) -> None:
    """Programme decisions grant public money: a signed-in person (or admin) takes them, not an API key."""
    if principal.api_key_id is not None:
        raise Forbidden("Voucher programmes are run by signed-in people, not with API keys.")


# ---------------------------------------------------------------------------------------------------------------
# Programmes


async def create_programme(session: AsyncSession, principal: Principal, *, data: ProgrammeCreate) -> VoucherProgramme:
    _require_person(principal)
    principal.require_verified_email()
    repo = VoucherRepository(session)
    org = await repo.org(data.org_id)
    if org is None or not (principal.can_act_for(org.id) or principal.is_platform_admin):
        raise NotFound("Organisation not found.")
    _require_programme_org(org)
    await _check_partners(repo, data.partner_programme_ids, own_id=None)
    programme = VoucherProgramme(
        org_id=org.id,
        name=data.name,
        region_prefix=data.region_prefix,
        eligible_kinds=list(data.eligible_kinds),
        eligible_families=list(data.eligible_families),
        rate_bp=data.rate_bp,
        currency=data.currency,
        cap_per_booking=data.cap_per_booking,
        cap_per_buyer_year=data.cap_per_buyer_year,
        budget=data.budget,
        valid_from=data.valid_from,
        valid_until=data.valid_until,
        payment_mode=data.payment_mode,
        partner_programme_ids=list(data.partner_programme_ids),
        auto_grant=data.auto_grant,
        status="active",
        created_by=principal.user_id,
    )
    await repo.add(programme)
    await audit.record(
        session,
        actor_user_id=principal.user_id,
        action="programme.create",
        target_type="voucher_programme",
        target_id=programme.id,
        after=data.model_dump(mode="json"),
    )
    return programme


def _require_programme_org(org: Organisation) -> None:
    if "programme" not in org.roles:
        raise NotProgrammeOrg("org_id: only an organisation with the role programme runs voucher programmes.")
    if org.verification_status != "verified":
        raise ProgrammeOrgUnverified(
            "org_id: the programme organisation is not verified yet; the platform verifies it first."
        )


async def _check_partners(repo: VoucherRepository, ids: list[uuid.UUID], *, own_id: uuid.UUID | None) -> None:
    if own_id is not None and own_id in ids:
        raise field_error("partner_programme_ids", "a programme does not list itself as a partner")
    missing = set(ids) - await repo.existing_programme_ids(ids)
    if missing:
        raise field_error("partner_programme_ids", f"no such programme: {', '.join(sorted(map(str, missing)))}")


async def _operated(
    session: AsyncSession, principal: Principal, programme_id: uuid.UUID, *, for_update: bool = False
) -> VoucherProgramme:
    """The programme, for its operators; 404 when it does not exist, 403 for others (its terms are public)."""
    programme = await VoucherRepository(session).programme(programme_id, for_update=for_update)
    if programme is None:
        raise ProgrammeNotFound("Programme not found.")
    if not operates(principal, programme):
        raise Forbidden("Only the programme's organisation runs it.")
    return programme


async def update_programme(
    session: AsyncSession, principal: Principal, *, programme_id: uuid.UUID, data: ProgrammeUpdate
) -> VoucherProgramme:
    """Close or reopen, switch auto-grant, set the partner programmes, raise the budget."""
    _require_person(principal)
    programme = await _operated(session, principal, programme_id, for_update=True)
    if data.budget is not None and data.budget < programme.budget:
        raise field_error("budget", f"can only be raised (now {programme.budget})")
    if data.partner_programme_ids is not None:
        await _check_partners(VoucherRepository(session), data.partner_programme_ids, own_id=programme.id)
    changes = data.model_dump(exclude_none=True)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name, value in changes.items():
        old = getattr(programme, name)
        if old != value:
            before[name], after[name] = _jsonable(old), _jsonable(value)
            setattr(programme, name, value)
    if after:
        programme.updated_at = datetime.now(UTC)
        await session.flush()
        await audit.record(
            session,
            actor_user_id=principal.user_id,
            action="programme.update",
            target_type="voucher_programme",
            target_id=programme.id,
            before=before,
            after=after,
        )
    return programme


def _jsonable(value: Any) -> Any:
    if isinstance(value, list):
        return [str(v) if isinstance(v, uuid.UUID) else v for v in value]
    return value


async def list_programmes(session: AsyncSession, *, active_only: bool = True) -> list[VoucherProgramme]:
    return await VoucherRepository(session).programmes(active_only=active_only)


async def get_programme(session: AsyncSession, programme_id: uuid.UUID) -> VoucherProgramme:
    programme = await VoucherRepository(session).programme(programme_id)
    if programme is None:
        raise ProgrammeNotFound("Programme not found.")
    return programme


async def operated_programmes(session: AsyncSession, principal: Principal) -> list[VoucherProgramme]:
    """The programmes of the caller's own programme organisations (an admin's memberships only)."""
    return await VoucherRepository(session).programmes_of_orgs(principal.org_ids)


async def programme_out(session: AsyncSession, principal: Principal, programme: VoucherProgramme) -> ProgrammeOut:
    """The API view: operators (and admins) also see the budget used and left."""
    out = ProgrammeOut.model_validate(programme, from_attributes=True)
    if operates(principal, programme):
        used = await VoucherRepository(session).used_by_programme(programme.id)
        out.budget_used, out.budget_remaining = used, max(programme.budget - used, 0)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Vouchers


async def request_voucher(
    session: AsyncSession, principal: Principal, *, programme_id: uuid.UUID, data: VoucherRequest
) -> Voucher:
    """An operator grants the buyer a voucher (an applied one becomes granted); a buyer's member applies for
    one (granted at once when the programme grants automatically)."""
    repo = VoucherRepository(session)
    programme = await repo.programme(programme_id, for_update=True)  # serialises two requests for one buyer
    if programme is None:
        raise ProgrammeNotFound("Programme not found.")
    operator = operates(principal, programme)
    if operator:
        _require_person(principal)
    elif not principal.can_act_for(data.buyer_org_id, "bookings:write"):
        raise NotFound("Organisation not found.")
    principal.require_verified_email()
    buyer = await repo.org(data.buyer_org_id)
    if buyer is None:
        raise NotFound("Organisation not found.")
    _check_buyer(programme, buyer)
    existing = await repo.voucher_of(programme.id, buyer.id, for_update=True)
    now = datetime.now(UTC)
    if operator:
        if existing is not None and existing.status != VoucherStatus.applied:
            raise VoucherExists(f"The organisation already has a voucher of this programme ({existing.status}).")
        voucher = existing or Voucher(programme_id=programme.id, buyer_org_id=buyer.id, note=data.note)
        voucher.status, voucher.decided_by, voucher.decided_at = VoucherStatus.granted, principal.user_id, now
        await repo.add(voucher)
        await audit.record(
            session,
            actor_user_id=principal.user_id,
            action="voucher.grant",
            target_type="voucher",
            target_id=voucher.id,
            before={"status": existing.status} if existing else None,
            after={"status": voucher.status, "programme_id": str(programme.id), "buyer_org_id": str(buyer.id)},
        )
        return voucher
    if existing is not None:
        raise VoucherExists(f"Your organisation already has a voucher of this programme ({existing.status}).")
    voucher = Voucher(
        programme_id=programme.id,
        buyer_org_id=buyer.id,
        note=data.note,
        applied_by=principal.user_id,
        status=VoucherStatus.granted if programme.auto_grant else VoucherStatus.applied,
        decided_at=now if programme.auto_grant else None,
    )
    await repo.add(voucher)
    await audit.record(
        session,
        actor_user_id=principal.user_id,
        actor_api_key_id=principal.api_key_id,
        action="voucher.apply",
        target_type="voucher",
        target_id=voucher.id,
        after={"status": voucher.status, "programme_id": str(programme.id), "buyer_org_id": str(buyer.id)},
    )
    return voucher


def _check_buyer(programme: VoucherProgramme, buyer: Organisation) -> None:
    if programme.status != "active":
        raise VoucherNotEligible("the programme is closed", field="programme_id")
    if "buyer" not in buyer.roles:
        raise VoucherNotEligible("the organisation is not a buyer", field="buyer_org_id")
    reason = rules.buyer_reason(programme.region_prefix, uscc=buyer.uscc)
    if reason is not None:
        raise VoucherNotEligible(reason, field="buyer_org_id")


_DECISIONS = {
    "approve": (VoucherStatus.applied, VoucherStatus.granted),
    "reject": (VoucherStatus.applied, VoucherStatus.rejected),
    "revoke": (VoucherStatus.granted, VoucherStatus.revoked),
}


async def decide_voucher(
    session: AsyncSession,
    principal: Principal,
    *,
    programme_id: uuid.UUID,
    voucher_id: uuid.UUID,
    data: VoucherDecision,
) -> Voucher:
    """approve (applied → granted), reject (applied → rejected), revoke (granted → revoked). A revoked voucher
    is not spent on new bookings; the bookings already placed with it keep their share."""
    _require_person(principal)
    programme = await _operated(session, principal, programme_id)
    voucher = await VoucherRepository(session).voucher(voucher_id, for_update=True)
    if voucher is None or voucher.programme_id != programme.id:
        raise VoucherNotFound("Voucher not found.")
    source, target = _DECISIONS[data.decision]
    if voucher.status != source:
        raise InvalidVoucherState(
            f"Cannot {data.decision} a voucher that is {voucher.status}.", extra={"current_status": voucher.status}
        )
    before = voucher.status
    voucher.status, voucher.decision_reason = target, data.reason
    voucher.decided_by, voucher.decided_at = principal.user_id, datetime.now(UTC)
    await session.flush()
    kwargs: dict[str, Any] = {
        "actor_user_id": principal.user_id,
        "target_type": "voucher",
        "target_id": voucher.id,
        "before": {"status": before},
        "after": {"status": target},
        "reason": data.reason,
    }
    if data.decision == "approve":
        await audit.record(session, action="voucher.approve", **kwargs)
    elif data.decision == "reject":
        await audit.record(session, action="voucher.reject", **kwargs)
    else:
        await audit.record(session, action="voucher.revoke", **kwargs)
    return voucher


async def programme_vouchers(
    session: AsyncSession, principal: Principal, *, programme_id: uuid.UUID, status: str | None = None
) -> list[VoucherView]:
    programme = await _operated(session, principal, programme_id)
    repo = VoucherRepository(session)
    vouchers = await repo.vouchers_of_programme(programme.id, status=status)
    names = await repo.org_names(v.buyer_org_id for v in vouchers)
    budget_used = await repo.used_by_programme(programme.id)
    year = rules.china_day().year
    views = []
    for voucher in vouchers:
        used = (await repo.used_by_buyer(voucher.buyer_org_id, year=year, programme_ids=[programme.id]))[programme.id]
        views.append(_view(voucher, programme, name=names.get(voucher.buyer_org_id, ""), used=used, spent=budget_used))
    return views


def _view(voucher: Voucher, programme: VoucherProgramme, *, name: str, used: int, spent: int) -> VoucherView:
    left = rules.remaining(
        cap_per_buyer_year=programme.cap_per_buyer_year,
        used_by_buyer=used,
        budget=programme.budget,
        used_by_programme=spent,
    )
    return VoucherView(
        voucher=voucher, programme=programme, buyer_name=name, used_this_year=used, remaining_this_year=left
    )


async def org_vouchers(
    session: AsyncSession, principal: Principal, *, org_id: uuid.UUID, status: str | None = None
) -> list[VoucherView]:
    """The vouchers of a buyer organisation, for its members (and admins); 404 for anyone else."""
    if not (principal.can_act_for(org_id, "bookings:read") or principal.is_platform_admin):
        raise NotFound("Organisation not found.")
    repo = VoucherRepository(session)
    rows = await repo.vouchers_of_buyer(org_id, status=status)
    ids = [programme.id for _, programme in rows]
    used = await repo.used_by_buyer(org_id, year=rules.china_day().year, programme_ids=ids)
    spent = await repo.used_by_programmes(ids)
    names = await repo.org_names([org_id])
    return [_view(v, p, name=names.get(org_id, ""), used=used.get(p.id, 0), spent=spent.get(p.id, 0)) for v, p in rows]


async def usable_vouchers(
    session: AsyncSession, principal: Principal, *, buyer_org_id: uuid.UUID, asset_id: uuid.UUID
) -> list[VoucherView]:
    """The buyer's granted vouchers that could be spent on that listing today, with something left (for the
    booking form; the redeemer decides again, under the programme's lock, when the booking is placed)."""
    views = await org_vouchers(session, principal, org_id=buyer_org_id, status=VoucherStatus.granted)
    if not views:
        return []
    repo = VoucherRepository(session)
    found = await repo.asset_and_site(asset_id)
    if found is None or found[0].status != AssetStatus.published:
        return []
    asset, site = found
    today = rules.china_day()
    usable = []
    for view in views:
        p = view.programme
        reason = rules.terms_reason(
            status=p.status,
            valid_from=p.valid_from,
            valid_until=p.valid_until,
            currency=p.currency,
            booking_currency=asset.currency,
            today=today,
        ) or rules.service_reason(
            p.eligible_kinds, p.eligible_families, kind=asset.kind, process_codes=asset.process_codes
        )
        if reason is None and not site.region_code.startswith(p.region_prefix):
            reason = rules.spend_reason(
                p.region_prefix, site_region=site.region_code, partner_prefixes=await repo.partner_prefixes(p.id)
            )
        if reason is None and view.remaining_this_year > 0:
            usable.append(view)
    return usable


def voucher_out(view: VoucherView) -> VoucherOut:
    v, p = view.voucher, view.programme
    return VoucherOut(
        id=v.id,
        programme_id=v.programme_id,
        buyer_org_id=v.buyer_org_id,
        buyer_name=view.buyer_name,
        status=v.status,
        note=v.note,
        decision_reason=v.decision_reason,
        created_at=v.created_at,
        decided_at=v.decided_at,
        programme=ProgrammeTerms.model_validate(p, from_attributes=True),
        used_this_year=view.used_this_year,
        remaining_this_year=view.remaining_this_year,
    )


async def voucher_view(session: AsyncSession, voucher: Voucher) -> VoucherView:
    """One voucher with its programme and this year's use (the answer to a grant, application or decision)."""
    repo = VoucherRepository(session)
    programme = await get_programme(session, voucher.programme_id)
    used = await repo.used_by_buyer(voucher.buyer_org_id, year=rules.china_day().year, programme_ids=[programme.id])
    names = await repo.org_names([voucher.buyer_org_id])
    return _view(
        voucher,
        programme,
        name=names.get(voucher.buyer_org_id, ""),
        used=used[programme.id],
        spent=await repo.used_by_programme(programme.id),
    )
