"""Files people upload through web forms (a business licence, a certificate scan) into the document store, with
every refusal turned into a message beside the form field, in the page's language."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from marketplace.core.errors import AppError
from marketplace.core.principal import Principal
from marketplace.documents import kinds
from marketplace.documents import service as documents
from marketplace.documents.endpoints import get_storage
from marketplace.documents.errors import PayloadTooLarge, UnsupportedMediaType
from marketplace.documents.models import Document
from marketplace.documents.storage import CHUNK, content_disposition
from marketplace.web import i18n
from marketplace.web.core import N_, FieldError, locale_of

MISSING = N_("Choose a file to upload.")
WRONG_TYPE = N_("Upload a PDF, JPEG or PNG file.")
TOO_LARGE = N_("The file is too large: at most %(size)s MB.")
EMPTY = N_("The file is empty.")
# What the file inputs offer in the browser's file chooser (the server reads the type from the bytes anyway).
ACCEPT = ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"


def chosen(upload: Any) -> bool:
    return isinstance(upload, UploadFile) and bool(upload.filename)


async def store_scan(
    request: Request, session: AsyncSession, user: Principal, *, org_id: uuid.UUID, upload: Any, field: str
) -> Document:
    """Store a PDF, JPEG or PNG from a multipart form for ``org_id``; a refusal is a :class:`FieldError` on
    ``field``. The caller has checked that ``user`` acts for ``org_id``."""
    gettext = i18n.translations(locale_of(request)).gettext
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise FieldError(field, gettext(MISSING))
    max_bytes: int = request.app.state.settings.document_max_bytes

    async def chunks() -> AsyncIterator[bytes]:
        while chunk := await upload.read(CHUNK):
            yield chunk

    try:
        doc = await documents.upload(
            session,
            principal=user,
            storage=get_storage(request),
            org_id=org_id,
            filename=upload.filename,
            chunks=chunks(),
            max_bytes=max_bytes,
        )
    except UnsupportedMediaType as exc:
        raise FieldError(field, gettext(WRONG_TYPE)) from exc
    except PayloadTooLarge as exc:
        raise FieldError(field, gettext(TOO_LARGE) % {"size": max(1, max_bytes // (1024 * 1024))}) from exc
    except AppError as exc:
        if "empty" in str(exc.detail):
            raise FieldError(field, gettext(EMPTY)) from exc
        raise
    if doc.content_type not in kinds.SCAN_TYPES:  # a CAD drawing is no licence or certificate
        raise FieldError(field, gettext(WRONG_TYPE))
    return doc


async def inline_response(request: Request, doc: Document) -> StreamingResponse:
    """A scan's bytes to show in the page (``inline``: an <img> or <iframe> preview), never sniffed or cached.
    Only PDF, PNG and JPEG (read from the bytes at upload) are ever served inline."""
    body = await documents.open_blob(get_storage(request), doc)
    disposition = content_disposition(doc.name)
    if doc.content_type in kinds.SCAN_TYPES:
        disposition = disposition.replace("attachment", "inline", 1)
    return StreamingResponse(
        body,
        media_type=doc.content_type,
        headers={
            "Content-Disposition": disposition,
            "Content-Length": str(doc.size),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )
