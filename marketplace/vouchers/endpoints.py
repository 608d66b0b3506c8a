"""Routes of voucher programmes and vouchers (issue #18). Rules and permissions: ``service.py``."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, status

import marketplace.vouchers.gate  # noqa: F401  (registers the booking hooks wherever the API runs)
from marketplace.auth.deps import CurrentPrincipal
from marketplace.core.db import SessionDep
from marketplace.core.errors import error_responses
from marketplace.vouchers import service
from marketplace.vouchers.schemas import (
    ProgrammeCreate,
    ProgrammeOut,
    ProgrammeUpdate,
    VoucherDecision,
    VoucherOut,
    VoucherRequest,
)

router = APIRouter(tags=["vouchers"])

VoucherStatusQuery = Literal["applied", "granted", "rejected", "revoked"]


@router.post(
    "/programmes",
    status_code=status.HTTP_201_CREATED,
    response_model=ProgrammeOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Create a voucher programme (members of a verified programme organisation)",
)
async def create_programme(body: ProgrammeCreate, session: SessionDep, principal: CurrentPrincipal) -> ProgrammeOut:
    programme = await service.create_programme(session, principal, data=body)
    return await service.programme_out(session, principal, programme)


@router.get(
    "/programmes",
    response_model=list[ProgrammeOut],
    responses=error_responses(401, 422),
    summary="The active voucher programmes (public terms)",
)
async def list_programmes(session: SessionDep, principal: CurrentPrincipal) -> list[ProgrammeOut]:
    return [await service.programme_out(session, principal, p) for p in await service.list_programmes(session)]


@router.get(
    "/programmes/{programme_id}",
    response_model=ProgrammeOut,
    responses=error_responses(401, 404, 422),
    summary="A voucher programme (its operators also see the budget used and left)",
)
async def get_programme(programme_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> ProgrammeOut:
    programme = await service.get_programme(session, programme_id)
    return await service.programme_out(session, principal, programme)


@router.patch(
    "/programmes/{programme_id}",
    response_model=ProgrammeOut,
    responses=error_responses(401, 403, 404, 422),
    summary="Close or reopen a programme, switch auto-grant, set partner programmes, raise the budget",
)
async def update_programme(
    programme_id: uuid.UUID, body: ProgrammeUpdate, session: SessionDep, principal: CurrentPrincipal
) -> ProgrammeOut:
    programme = await service.update_programme(session, principal, programme_id=programme_id, data=body)
    return await service.programme_out(session, principal, programme)


@router.post(
    "/programmes/{programme_id}/vouchers",
    status_code=status.HTTP_201_CREATED,
    response_model=VoucherOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Grant a buyer a voucher (the programme) or apply for one (the buyer)",
)
async def request_voucher(
    programme_id: uuid.UUID, body: VoucherRequest, session: SessionDep, principal: CurrentPrincipal
) -> VoucherOut:
    voucher = await service.request_voucher(session, principal, programme_id=programme_id, data=body)
    return service.voucher_out(await service.voucher_view(session, voucher))


@router.post(
    "/programmes/{programme_id}/vouchers/{voucher_id}/decision",
    response_model=VoucherOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Approve or reject an application, or revoke a voucher (the programme)",
)
async def decide_voucher(
    programme_id: uuid.UUID,
    voucher_id: uuid.UUID,
    body: VoucherDecision,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> VoucherOut:
    voucher = await service.decide_voucher(
        session, principal, programme_id=programme_id, voucher_id=voucher_id, data=body
    )
    return service.voucher_out(await service.voucher_view(session, voucher))


@router.get(
    "/programmes/{programme_id}/vouchers",
    response_model=list[VoucherOut],
    responses=error_responses(401, 403, 404, 422),
    summary="A programme's vouchers (its operators)",
)
async def programme_vouchers(
    programme_id: uuid.UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
    status: VoucherStatusQuery | None = None,
) -> list[VoucherOut]:
    views = await service.programme_vouchers(session, principal, programme_id=programme_id, status=status)
    return [service.voucher_out(v) for v in views]


@router.get(
    "/orgs/{org_id}/vouchers",
    response_model=list[VoucherOut],
    responses=error_responses(401, 404, 422),
    summary="An organisation's vouchers with this year's use (its members)",
)
async def org_vouchers(org_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> list[VoucherOut]:
    return [service.voucher_out(v) for v in await service.org_vouchers(session, principal, org_id=org_id)]
