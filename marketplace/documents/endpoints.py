"""Routes of the document store: upload, download (bytes, metadata, short-lived links)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import StreamingResponse

from marketplace.auth.deps import CurrentPrincipal, OptionalPrincipal
from marketplace.core.db import SessionDep
from marketplace.core.errors import error_responses
from marketplace.core.settings import Settings
from marketplace.core.text import Line
from marketplace.documents import service
from marketplace.documents.errors import PayloadTooLarge
from marketplace.documents.models import Document
from marketplace.documents.multipart import MultipartUpload
from marketplace.documents.schemas import DocumentOut, LinkOut
from marketplace.documents.storage import Storage, content_disposition, storage_for

router = APIRouter(tags=["documents"])


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_storage(request: Request) -> Storage:
    """The process's document storage, made on first use and kept on ``app.state``."""
    storage: Storage | None = getattr(request.app.state, "document_storage", None)
    if storage is None:
        storage = storage_for(request.app.state.settings)
        request.app.state.document_storage = storage
    return storage


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StorageDep = Annotated[Storage, Depends(get_storage)]
_BYTES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}, "description": "The document's bytes"}
}


def bytes_response(doc: Document, body: AsyncIterator[bytes]) -> StreamingResponse:
    """A document's bytes as a download: its type, its name, never sniffed or cached (the API and the web)."""
    return StreamingResponse(
        body,
        media_type=doc.content_type,
        headers={
            "Content-Disposition": content_disposition(doc.name),
            "Content-Length": str(doc.size),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": "The file"},
                    "org_id": {
                        "type": "string",
                        "format": "uuid",
                        "description": "The organisation it belongs to (when you are in several)",
                    },
                },
            }
        }
    },
}
# Multipart framing on top of the file itself; a body longer than the limit plus this is refused unread.
_FRAMING_BYTES = 16 * 1024


@router.post(
    "/documents",
    status_code=status.HTTP_201_CREATED,
    response_model=DocumentOut,
    responses=error_responses(401, 403, 404, 413, 415, 422),
    summary="Upload a document (PDF, PNG, JPEG, STEP, IGES, STL, DXF); the type is read from the bytes",
    openapi_extra={"requestBody": _UPLOAD_BODY},
)
async def upload_document(
    request: Request, session: SessionDep, principal: CurrentPrincipal, settings: SettingsDep, storage: StorageDep
) -> DocumentOut:
    """The body is read as a stream (multipart field ``file``, optional ``org_id``) and stops at the size limit."""
    service.require_uploader(principal)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > settings.document_max_bytes + _FRAMING_BYTES:
        raise PayloadTooLarge(f"The file is larger than the limit of {settings.document_max_bytes} bytes.")
    source = MultipartUpload(request.headers.get("content-type", ""), request.stream())
    doc = await service.upload_from(
        session, principal=principal, storage=storage, source=source, max_bytes=settings.document_max_bytes
    )
    return service.document_out(doc)


@router.get(
    "/documents/{document_id}",
    response_class=StreamingResponse,
    responses={**_BYTES, **error_responses(401, 403, 404, 422)},
    summary="Download a document (404 unless you may read it)",
)
async def download_document(
    document_id: uuid.UUID, session: SessionDep, principal: OptionalPrincipal, storage: StorageDep
) -> StreamingResponse:
    service.require_scope(principal, service.READ)
    doc, body = await service.download(session, principal=principal, storage=storage, document_id=document_id)
    return bytes_response(doc, body)


@router.get(
    "/documents/{document_id}/meta",
    response_model=DocumentOut,
    responses=error_responses(401, 403, 404, 422),
    summary="A document's name, size, type and SHA-256",
)
async def document_meta(document_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> DocumentOut:
    service.require_scope(principal, service.READ)
    return service.document_out(await service.readable(session, principal, document_id))


@router.get(
    "/documents/{document_id}/link",
    response_model=LinkOut,
    responses=error_responses(401, 403, 404, 422),
    summary="A short-lived download link that works without signing in",
)
async def document_link(
    document_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal, settings: SettingsDep, storage: StorageDep
) -> LinkOut:
    service.require_scope(principal, service.READ)
    url, expires_at = await service.create_link(
        session, principal=principal, settings=settings, storage=storage, document_id=document_id
    )
    return LinkOut(url=url, expires_at=expires_at)


@router.get(
    "/documents/{document_id}/download",
    response_class=StreamingResponse,
    responses={**_BYTES, **error_responses(404, 422)},
    summary="Download through a signed link (no sign-in)",
)
async def download_by_link(
    document_id: uuid.UUID,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    token: Annotated[Line, Query(max_length=2000, description="The link's signed token")],
) -> StreamingResponse:
    doc, body = await service.download_by_link(
        session, settings=settings, storage=storage, document_id=document_id, token=token
    )
    return bytes_response(doc, body)
