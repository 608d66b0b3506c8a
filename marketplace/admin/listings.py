"""Admin endpoints of the listings domain (moderation, certificates, flags), wired by the shell so
every decision is audited."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import BaseModel, Field

from listings import service as listings
from listings.endpoints import asset_out
from listings.flagging import FlagOut
from listings.schemas import AssetOut, CertificateOut, Decision, OptionalReasonIn
from marketplace.admin import moderation
from marketplace.admin.moderation import ModerationAction
from marketplace.auth.deps import AdminPrincipal
from marketplace.core.db import SessionDep
from marketplace.core.errors import error_responses
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
    session: SessionDep, admin: AdminPrincipal, *, asset_id: uuid.UUID, action: ModerationAction, reason: str | None
) -> AssetOut:
    asset = await moderation.moderate_asset(
        session=session, principal=admin, asset_id=asset_id, action=action, reason=reason
    )
    return asset_out(asset)


_MODERATION_ERRORS = error_responses(401, 403, 404, 409, 422)


@router.post("/assets/{asset_id}/approve", response_model=AssetOut, responses=_MODERATION_ERRORS)
async def approve(
    asset_id: uuid.UUID, session: SessionDep, admin: AdminPrincipal, data: OptionalReasonIn | None = None
) -> AssetOut:
    return await _moderate(session, admin, asset_id=asset_id, action="approve", reason=data.reason if data else None)


@router.post("/assets/{asset_id}/reject", response_model=AssetOut, responses=_MODERATION_ERRORS)
async def reject(asset_id: uuid.UUID, data: OptionalReasonIn, session: SessionDep, admin: AdminPrincipal) -> AssetOut:
    return await _moderate(session, admin, asset_id=asset_id, action="reject", reason=data.reason)


@router.post("/assets/{asset_id}/suspend", response_model=AssetOut, responses=_MODERATION_ERRORS)
async def suspend(asset_id: uuid.UUID, data: OptionalReasonIn, session: SessionDep, admin: AdminPrincipal) -> AssetOut:
    return await _moderate(session, admin, asset_id=asset_id, action="suspend", reason=data.reason)


@router.post("/assets/{asset_id}/reinstate", response_model=AssetOut, responses=_MODERATION_ERRORS)
async def reinstate(
    asset_id: uuid.UUID, session: SessionDep, admin: AdminPrincipal, data: OptionalReasonIn | None = None
) -> AssetOut:
    return await _moderate(session, admin, asset_id=asset_id, action="reinstate", reason=data.reason if data else None)


@router.post(
    "/certificates/{cert_id}/verify",
    response_model=CertificateOut,
    responses=_MODERATION_ERRORS,
    summary="Verify or reject a certificate; only verified, unexpired ones count in search and matching",
)
async def verify_certificate(
    cert_id: uuid.UUID, data: Decision, session: SessionDep, admin: AdminPrincipal
) -> CertificateOut:
    cert = await moderation.decide_certificate(session=session, principal=admin, cert_id=cert_id, data=data)
    return CertificateOut.model_validate(cert)


@router.post("/flags/{flag_id}/resolve", response_model=FlagOut, responses=error_responses(401, 403, 404, 422))
async def resolve_flag(flag_id: uuid.UUID, data: ResolveIn, session: SessionDep, admin: AdminPrincipal) -> FlagOut:
    item = await moderation.resolve_flag(session=session, principal=admin, flag_id=flag_id, resolution=data.resolution)
    return FlagOut.model_validate(item)
