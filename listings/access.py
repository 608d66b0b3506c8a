"""Who may see and change what: a published listing of a verified organisation is public; everything else
(drafts, sites, certificates) is visible only to the owning organisation and platform admins, and answers 404 to
anyone else so its existence is not revealed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from listings.actor import Actor
from listings.errors import Forbidden, NotFound
from listings.models import Asset, AssetStatus, Site
from listings.repository import ListingsRepository


def utcnow() -> datetime:
    return datetime.now(UTC)


def can_manage(actor: Actor | None, org_id: uuid.UUID, scope: str = "listings:write") -> bool:
    return actor is not None and (actor.is_platform_admin or actor.can_act_for(org_id, scope))


def require(actor: Actor, org_id: uuid.UUID, scope: str, *, not_found: str) -> None:
    """Members lacking an API-key scope get 403; everyone outside the organisation gets 404."""
    if actor.is_platform_admin or actor.can_act_for(org_id, scope):
        return
    if actor.can_act_for(org_id, None):
        raise Forbidden(f"This API key lacks the '{scope}' scope.")
    raise NotFound(not_found)


async def require_existing(repo: ListingsRepository, actor: Actor, org_id: uuid.UUID, *, scope: str) -> None:
    """:func:`_require`, and for a platform admin acting for an organisation they are not in, that it exists
    (a member's organisation does; an admin may name any id)."""
    require(actor, org_id, scope, not_found="Organisation not found.")
    if not actor.can_act_for(org_id, None) and not await repo.org_exists(org_id):
        raise NotFound("Organisation not found.")


async def owned_site(repo: ListingsRepository, actor: Actor, site_id: uuid.UUID, *, scope: str) -> Site:
    site = await repo.get_site(site_id)
    if site is None:
        raise NotFound("Site not found.")
    require(actor, site.org_id, scope, not_found="Site not found.")
    return site


async def owned_asset(
    repo: ListingsRepository, actor: Actor, asset_id: uuid.UUID, *, scope: str = "listings:write"
) -> Asset:
    asset = await repo.get_asset(asset_id, for_update=True)
    if asset is None:
        raise NotFound("Listing not found.")
    require(actor, asset.org_id, scope, not_found="Listing not found.")
    return asset


async def visible_asset(session: AsyncSession, viewer: Actor | None, asset_id: uuid.UUID) -> Asset:
    repo = ListingsRepository(session)
    asset = await repo.get_asset(asset_id)
    if asset is None:
        raise NotFound("Listing not found.")
    if can_manage(viewer, asset.org_id, "listings:read"):
        return asset
    if asset.status == AssetStatus.published and await repo.org_is_verified(asset.org_id):
        return asset
    raise NotFound("Listing not found.")


async def site_of(repo: ListingsRepository, asset: Asset) -> Site:
    site = await repo.get_site(asset.site_id)
    if site is None:  # the foreign key makes this impossible; a clear 404 rather than a crash if it happens
        raise NotFound("Site not found.")
    return site
