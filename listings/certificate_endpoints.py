"""HTTP endpoints of an organisation's quality certificates (added to the router :func:`build_router` makes).

(No ``from __future__ import annotations`` here: FastAPI must see the closures' real annotations.)
"""

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, status
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from listings import service
from listings.actor import Actor as ActorT
from listings.ports import CertificateScans, NoScans
from listings.schemas import CertificateCreate, CertificateOut


class CertificatePage(BaseModel):
    items: list[CertificateOut]
    next_cursor: str | None = None


def add_routes(
    router: APIRouter,
    *,
    session_dep: Any,
    actor_dep: Any,
    error_responses: Callable[..., dict[int | str, dict[str, Any]]],
    scans: CertificateScans | None,
) -> None:
    """``scans`` keeps the certificates' scans (the shell's document store); without it ``document_id`` is
    refused."""
    store: CertificateScans = scans or NoScans()
    Session = Annotated[AsyncSession, session_dep]
    Caller = Annotated[ActorT, actor_dep]

    @router.post(
        "/orgs/{org_id}/certificates",
        status_code=status.HTTP_201_CREATED,
        response_model=CertificateOut,
        tags=["certificates"],
        responses=error_responses(401, 403, 404, 415, 422),
        summary="Add a certificate (pending until a platform admin verifies it), with its scan as document_id",
    )
    async def add_certificate(
        org_id: uuid.UUID, data: CertificateCreate, session: Session, actor: Caller
    ) -> CertificateOut:
        cert = await service.add_certificate(session, actor, org_id, data=data)
        if data.document_id is not None:
            await store.attach(session, org_id=org_id, document_id=data.document_id, certificate_id=cert.id)
        return CertificateOut.model_validate(cert).model_copy(update={"document_id": data.document_id})

    @router.get(
        "/orgs/{org_id}/certificates",
        response_model=CertificatePage,
        tags=["certificates"],
        responses=error_responses(401, 404, 422),
    )
    async def list_certificates(org_id: uuid.UUID, session: Session, actor: Caller) -> CertificatePage:
        certs = await service.list_certificates(session, actor, org_id)
        found = await store.scans(session, [c.id for c in certs])
        return CertificatePage(
            items=[CertificateOut.model_validate(c).model_copy(update={"document_id": found.get(c.id)}) for c in certs]
        )

    @router.delete(
        "/orgs/{org_id}/certificates/{cert_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        tags=["certificates"],
        responses=error_responses(401, 403, 404, 422),
        summary="Remove a certificate",
    )
    async def remove_certificate(org_id: uuid.UUID, cert_id: uuid.UUID, session: Session, actor: Caller) -> None:
        await service.remove_certificate(session, actor, org_id, cert_id=cert_id)
