"""A listing's status over its life (submit, archive, moderation) and buyers' flags.

The transition table is :mod:`listings.moderation`; every change is recorded as an ``AssetStatusEvent``.
Functions take a session and never commit."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from listings.access import owned_asset, require, utcnow, visible_asset
from listings.actor import Actor
from listings.errors import AlreadyFlagged, EmailUnverified, Invalid, NotFound, OrganisationNotVerified, OwnListing
from listings.flagging import FLAG_REASONS
from listings.models import Asset, AssetKind, AssetStatus, AssetStatusEvent, ListingFlag
from listings.moderation import ADMIN_ACTIONS, next_status
from listings.repository import ListingsRepository


async def transition(
    repo: ListingsRepository, asset: Asset, action: str, *, actor_user_id: uuid.UUID | None, reason: str | None
) -> tuple[str, str]:
    before = asset.status
    after = next_status(before, action)
    asset.status = after
    asset.status_reason = reason if action in ("reject", "suspend", "material_edit") else None
    now = utcnow()
    if after == AssetStatus.pending_review:
        asset.submitted_at = now
    if after == AssetStatus.published:
        asset.published_at = now
    asset.updated_at = now
    await repo.add(
        AssetStatusEvent(
            asset_id=asset.id,
            from_status=before,
            to_status=after,
            action=action,
            reason=reason,
            actor_user_id=actor_user_id,
        )
    )
    return before, after


async def owner_transition(session: AsyncSession, actor: Actor, asset_id: uuid.UUID, *, action: str) -> Asset:
    """``submit`` (verified organisations only) or ``archive``."""
    repo = ListingsRepository(session)
    asset = await owned_asset(repo, actor, asset_id)
    if action == "submit":
        next_status(asset.status, action)  # an illegal transition is a 409 before anything else
        if not actor.email_verified:
            raise EmailUnverified()
        if not await repo.org_is_verified(asset.org_id):
            raise OrganisationNotVerified()
        if asset.kind == AssetKind.machine and not asset.weekly_plan:
            exceptions = await repo.exceptions_for([asset.id])
            if not any(e.available for e in exceptions[asset.id]):
                raise Invalid("Set the machine's availability (a weekly plan or open exceptions) before submitting.")
    await transition(repo, asset, action, actor_user_id=actor.user_id, reason=None)
    await session.flush()
    return asset


async def admin_transition(
    session: AsyncSession, admin_user_id: uuid.UUID | None, asset_id: uuid.UUID, *, action: str, reason: str | None
) -> tuple[str, Asset]:
    """approve / reject / suspend / reinstate; returns the previous status (for the audit log)."""
    if action not in ADMIN_ACTIONS:
        raise Invalid(f"Unknown moderation action {action!r}.")
    if action in ("reject", "suspend") and not reason:
        raise Invalid("reason: a reason is required so the owner knows what to fix.")
    repo = ListingsRepository(session)
    asset = await repo.get_asset(asset_id, for_update=True)
    if asset is None:
        raise NotFound("Listing not found.")
    before, _ = await transition(repo, asset, action, actor_user_id=admin_user_id, reason=reason)
    await session.flush()
    return before, asset


async def history(session: AsyncSession, actor: Actor, asset_id: uuid.UUID) -> list[AssetStatusEvent]:
    repo = ListingsRepository(session)
    asset = await repo.get_asset(asset_id)
    if asset is None:
        raise NotFound("Listing not found.")
    require(actor, asset.org_id, "listings:read", not_found="Listing not found.")
    return await repo.status_events(asset_id)


async def flag(
    session: AsyncSession, actor: Actor, asset_id: uuid.UUID, *, reason_code: str, reason: str
) -> ListingFlag:
    """Report a listing the actor can see: ``reason_code`` one of :data:`listings.flagging.FLAG_REASONS`,
    ``reason`` the reporter's words. Its own organisation cannot report it, and a person has at most one open
    report per listing."""
    if reason_code not in FLAG_REASONS:
        raise Invalid(f"reason_code: unknown reason {reason_code!r}.")
    asset = await visible_asset(session, actor, asset_id)
    if asset.org_id in actor.org_ids:
        raise OwnListing()
    repo = ListingsRepository(session)
    await repo.get_asset(asset.id, for_update=True)  # one report at a time per listing: no duplicate slips in
    if actor.user_id is not None and await repo.open_flag_of(asset.id, actor.user_id) is not None:
        raise AlreadyFlagged()
    return await repo.add(  # type: ignore[no-any-return]
        ListingFlag(asset_id=asset.id, reporter_user_id=actor.user_id, reason_code=reason_code, reason=reason)
    )


async def moderation_queue(session: AsyncSession, limit: int = 100) -> tuple[list[Asset], list[ListingFlag]]:
    repo = ListingsRepository(session)
    return await repo.pending_review(limit), await repo.open_flags(limit)


async def resolve_flag(session: AsyncSession, flag_id: uuid.UUID, resolution: str) -> ListingFlag:
    item = await ListingsRepository(session).get_flag(flag_id)
    if item is None:
        raise NotFound("Flag not found.")
    item.status = "resolved"
    item.resolution = resolution
    item.resolved_at = utcnow()
    await session.flush()
    return item
