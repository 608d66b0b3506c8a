"""Admin moderation of the listings domain: each decision with its side effects (the audit record, the
buyers' notification job), so the API and the web admin cannot drift apart. Callers authorise; nothing here
commits."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from listings import service as listings
from listings.models import Asset, Certificate, ListingFlag
from listings.schemas import Decision
from marketplace.core import audit
from marketplace.core.jobs import enqueue
from marketplace.core.principal import Principal

ModerationAction = Literal["approve", "reject", "suspend", "reinstate"]
MODERATION_ACTIONS: tuple[ModerationAction, ...] = ("approve", "reject", "suspend", "reinstate")


async def _audit(
    session: AsyncSession,
    principal: Principal,
    *,
    action: str,
    target: tuple[str, Any],
    status: tuple[str | None, str],
    reason: str | None,
) -> None:
    """One audit record of a moderation decision: the target's status before (if it had one) and after."""
    target_type, target_id = target
    before, after = status
    await audit.record(
        session,
        actor_user_id=principal.user_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        before={"status": before} if before is not None else None,
        after={"status": after},
        reason=reason,
    )


async def moderate_asset(
    *, session: AsyncSession, principal: Principal, asset_id: uuid.UUID, action: ModerationAction, reason: str | None
) -> Asset:
    """approve / reject / suspend / reinstate a listing, audited. An approval that publishes the listing
    tells the buyers whose open requests it matches (a job, sent after the commit)."""
    before, asset = await listings.admin_transition(session, principal.user_id, asset_id, action=action, reason=reason)
    await _audit(
        session,
        principal,
        action=f"asset.{action}",
        target=("asset", asset.id),
        status=(before, asset.status),
        reason=reason,
    )
    if action == "approve" and asset.status == "published":
        await enqueue(session, "requests.notify_buyers", str(asset_id))
    return asset


async def decide_certificate(
    *, session: AsyncSession, principal: Principal, cert_id: uuid.UUID, data: Decision
) -> Certificate:
    """Verify or reject a certificate, audited."""
    before, cert = await listings.decide_certificate(session, cert_id, data)
    action, target = f"certificate.{data.decision}", ("certificate", cert.id)
    await _audit(
        session, principal, action=action, target=target, status=(before, cert.status), reason=data.reason or None
    )
    return cert


async def resolve_flag(
    *, session: AsyncSession, principal: Principal, flag_id: uuid.UUID, resolution: str | None
) -> ListingFlag:
    """Close a listing flag, audited; without a resolution text the flag reads "resolved"."""
    item = await listings.resolve_flag(session, flag_id, resolution or "resolved")
    target = ("listing_flag", item.id)
    await _audit(
        session, principal, action="flag.resolved", target=target, status=(None, "resolved"), reason=resolution or None
    )
    return item
