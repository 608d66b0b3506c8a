"""Routes of the quality documents ordered with a booking (issue #17): read them (the buyer, the supplier, an
admin), supply one (the supplier), or have the platform issue the certificate of conformance (the supplier).
See ``marketplace.inspection.quality`` for the rules and docs/verification.md."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field

import marketplace.inspection.gate  # noqa: F401  (registers the booking hooks wherever the API runs)
from listings.quality_documents import QualityDocumentKind
from marketplace.auth.deps import CurrentPrincipal
from marketplace.bookings.schemas import QualityDocumentOut
from marketplace.core.db import SessionDep
from marketplace.core.errors import error_responses
from marketplace.core.text import Text
from marketplace.documents.endpoints import StorageDep
from marketplace.inspection import quality
from marketplace.inspection.models import BookingQualityDocument

router = APIRouter(tags=["inspection"])


class QualityDocumentsOut(BaseModel):
    booking_id: uuid.UUID
    currency: str
    items: list[QualityDocumentOut]


class SupplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document_id: uuid.UUID = Field(description="A document of the factory's organisation (POST /documents)")


class IssueCocIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    statement: Text | None = Field(
        default=None, max_length=2000, description="The factory's own words on the certificate (optional)"
    )


def quality_document_out(row: BookingQualityDocument) -> QualityDocumentOut:
    return QualityDocumentOut(
        kind=row.kind,
        price=row.price,
        provided=row.document_id is not None,
        document_id=row.document_id,
        provided_at=row.provided_at,
    )


@router.get(
    "/bookings/{booking_id}/quality-documents",
    response_model=QualityDocumentsOut,
    responses=error_responses(401, 403, 404, 422),
    summary="The quality documents ordered with a booking and whether each is supplied",
)
async def list_quality_documents(
    booking_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> QualityDocumentsOut:
    booking, rows = await quality.of_booking(session, principal=principal, booking_id=booking_id)
    return QualityDocumentsOut(
        booking_id=booking.id, currency=booking.currency, items=[quality_document_out(r) for r in rows]
    )


@router.put(
    "/bookings/{booking_id}/quality-documents/{kind}",
    response_model=QualityDocumentOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Supply an ordered quality document (the factory): one of its uploads, attached to the booking",
)
async def supply_quality_document(
    booking_id: uuid.UUID, kind: QualityDocumentKind, body: SupplyIn, session: SessionDep, principal: CurrentPrincipal
) -> QualityDocumentOut:
    row = await quality.supply(
        session, principal=principal, booking_id=booking_id, kind=kind, document_id=body.document_id
    )
    return quality_document_out(row)


@router.post(
    "/bookings/{booking_id}/quality-documents/coc/issue",
    response_model=QualityDocumentOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Issue the ordered certificate of conformance (the factory): a bilingual PDF the platform generates, "
    "verifiable at /verify/{hash}",
)
async def issue_certificate_of_conformance(
    booking_id: uuid.UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
    storage: StorageDep,
    body: Annotated[IssueCocIn | None, Body()] = None,
) -> QualityDocumentOut:
    statement = body.statement if body is not None else None
    row = await quality.issue_coc(
        session, principal=principal, booking_id=booking_id, statement=statement, storage=storage
    )
    return quality_document_out(row)
