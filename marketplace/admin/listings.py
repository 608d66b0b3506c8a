"""Admin endpoints of the listings domain (moderation, certificates, flags), wired by the shell so
every decision is audited."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from listings import service as listings
from listings.endpoints import asset_out
from listings.schemas import AssetOut, CertificateOut, Decision, FlagOut, OptionalReasonIn
from marketplace.auth.deps import AdminPrincipal
from marketplace.core import audit
from marketplace.core.db import SessionDep
from marketplace.core.errors import error_responses
from marketplace.core.jobs import enqueue
from marketplace.core.text import Text

router = APIRouter(prefix="/admin", tags=["admin"])


class QueueOut(BaseModel):
    pending_review: list[AssetOut]
    open_flags: list[FlagOut]


class ResolveIn(BaseModel):
    resolution: Text = Field(min_length=1, max_length=2000)


@router.get("/moderation/queue", response_model=QueueOut, responses=error_responses(401, 403))
async def moderation_queue(session: SessionDep, admin: AdminPrincipal) -> QueueOut:
    assets, flags = await listings.moderation_queue(session)
    return QueueOut(
        pending_review=[asset_out(a) for a in assets], open_flags=[FlagOut.model_validate(f) for f in flags]
    )


async def _moderate(
    session: SessionDep,
    admin: AdminPrincipal,
    asset_id: uuid.UUID,
    action: Literal["approve", "reject", "suspend", "reinstate"],
    reason: str | None,
) -> AssetOut:
    before, asset = await listings.admin_transition(session, admin.user_id, asset_id, action, reason)
    await audit.record(
        session,
        actor_user_id=admin.user_id,
        action=f"asset.{action}",
        target_type="asset",
        target_id=asset.id,
        before={"status": before},
        after={"status": asset.status},
        reason=reason,
    )
    return asset_out(asset)


_MODERATION_ERRORS = error_responses(401, 403, 404, 409, 422)


@router.post("/assets/{asset_id}/approve", response_model=AssetOut, responses=_MODERATION_ERRORS)
async def approve(
    asset_id: uuid.UUID, session: SessionDep, admin: AdminPrincipal, data: OptionalReasonIn | None = None
) -> AssetOut:
    out = await _moderate(session, admin, asset_id, "approve", data.reason if data else None)
    if out.status == "published":
        await enqueue(session, "requests.notify_buyers", str(asset_id))
    return out


@router.post("/assets/{asset_id}/reject", response_model=AssetOut, responses=_MODERATION_ERRORS)
async def reject(asset_id: uuid.UUID, data: OptionalReasonIn, session: SessionDep, admin: AdminPrincipal) -> AssetOut:
    return await _moderate(session, admin, asset_id, "reject", data.reason)


@router.post("/assets/{asset_id}/suspend", response_model=AssetOut, responses=_MODERATION_ERRORS)
async def suspend(asset_id: uuid.UUID, data: OptionalReasonIn, session: SessionDep, admin: AdminPrincipal) -> AssetOut:
    return await _moderate(session, admin, asset_id, "suspend", data.reason)


@router.post("/assets/{asset_id}/reinstate", response_model=AssetOut, responses=_MODERATION_ERRORS)
async def reinstate(
    asset_id: uuid.UUID, session: SessionDep, admin: AdminPrincipal, data: OptionalReasonIn | None = None
) -> AssetOut:
    return await _moderate(session, admin, asset_id, "reinstate", data.reason if data else None)


@router.post(
    "/certificates/{cert_id}/verify",
    response_model=CertificateOut,
    responses=_MODERATION_ERRORS,
    summary="Verify or reject a certificate; only verified, unexpired ones count in search and matching",
)
async def verify_certificate(
    cert_id: uuid.UUID, data: Decision, session: SessionDep, admin: AdminPrincipal
) -> CertificateOut:
    before, cert = await listings.decide_certificate(session, cert_id, data)
    await audit.record(
        session,
        actor_user_id=admin.user_id,
        action=f"certificate.{data.decision}",
        target_type="certificate",
        target_id=cert.id,
        before={"status": before},
        after={"status": cert.status},
        reason=data.reason or None,
    )
    return CertificateOut.model_validate(cert)


@router.post("/flags/{flag_id}/resolve", response_model=FlagOut, responses=error_responses(401, 403, 404, 422))
async def resolve_flag(flag_id: uuid.UUID, data: ResolveIn, session: SessionDep, admin: AdminPrincipal) -> FlagOut:
    item = await listings.resolve_flag(session, flag_id, data.resolution)
    await audit.record(
        session,
        actor_user_id=admin.user_id,
        action="flag.resolved",
        target_type="listing_flag",
        target_id=item.id,
        after={"status": "resolved"},
        reason=data.resolution,
    )
    return FlagOut.model_validate(item)
