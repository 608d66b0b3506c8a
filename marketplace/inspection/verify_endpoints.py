"""The public register of issued documents (no sign-in): look a document up by the code its PDF prints and its
QR code carries, or check that a PDF copy is an issued document, byte for byte. See docs/verification.md.

What these answer is the document's public summary: issuer, kind, dates, verdict or declaration, accreditation
and sampling plan; never the buyer and never a price."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

import marketplace.inspection.gate  # noqa: F401  (registers the booking hooks wherever the API runs)
from marketplace.core.db import SessionDep
from marketplace.core.errors import error_responses
from marketplace.core.ratelimit import RateLimiter
from marketplace.core.text import Line
from marketplace.documents.errors import PayloadTooLarge
from marketplace.documents.multipart import MultipartUpload
from marketplace.inspection import verifiable
from marketplace.inspection.models import VerifiableDocument

router = APIRouter(tags=["verify"])

CHECKS_PER_MINUTE = 30  # uploads checked per client address and minute
MAX_CHECK_BYTES = 20 * 1024 * 1024
_FRAMING_BYTES = 16 * 1024


class IssuerOut(BaseModel):
    name: str
    legal_name: str | None = None
    uscc: str | None = None


class VerifiedDocumentOut(BaseModel):
    code: str = Field(description="The content hash the PDF prints (SHA-256 of the canonical summary)")
    kind: str = Field(description="inspection_report or coc")
    issued_on: date
    issuer: IssuerOut
    file_sha256: str = Field(description="SHA-256 of the issued PDF's bytes")
    summary: dict[str, Any] = Field(description="The public summary the code is the hash of")


def verified_out(row: VerifiableDocument) -> VerifiedDocumentOut:
    issuer = row.summary.get("issuer") or {}
    return VerifiedDocumentOut(
        code=row.hash,
        kind=row.kind,
        issued_on=row.issued_on,
        issuer=IssuerOut(
            name=str(issuer.get("name") or ""), legal_name=issuer.get("legal_name"), uscc=issuer.get("uscc")
        ),
        file_sha256=row.file_sha256,
        summary=row.summary,
    )


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def limit_checks(request: Request) -> None:
    """At most ``CHECKS_PER_MINUTE`` file checks per client address (429 with Retry-After beyond)."""
    shared: RateLimiter = request.app.state.auth_rate_limiter
    limiter = RateLimiter(shared.redis, limit=CHECKS_PER_MINUTE, window_seconds=60, namespace=shared.namespace)
    await limiter.hit("verify_check", f"ip:{client_ip(request)}")


@router.get(
    "/verify/{code}",
    response_model=VerifiedDocumentOut,
    responses=error_responses(404),
    summary="A document issued on the platform, by the code its PDF prints (no sign-in)",
)
async def verify_code(code: Line, session: SessionDep) -> VerifiedDocumentOut:
    return verified_out(await verifiable.lookup(session, code))


@router.post(
    "/verify",
    response_model=VerifiedDocumentOut,
    responses=error_responses(404, 413, 422, 429),
    summary="Which issued document a PDF copy is, byte for byte (multipart field 'file'; no sign-in)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    },
)
async def verify_file(request: Request, session: SessionDep) -> VerifiedDocumentOut:
    """404 ``verifiable_document_no_match`` when the file is no issued document or was altered."""
    await limit_checks(request)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_CHECK_BYTES + _FRAMING_BYTES:
        raise PayloadTooLarge(f"The file is larger than the limit of {MAX_CHECK_BYTES} bytes.")
    upload = MultipartUpload(request.headers.get("content-type", ""), request.stream())
    row = await verifiable.match_file(session, upload.chunks(), max_bytes=MAX_CHECK_BYTES)
    return verified_out(row)
