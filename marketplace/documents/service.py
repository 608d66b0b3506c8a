"""The document store's rules: upload (streamed, limited, sniffed, hashed, stored once per SHA-256), who may
read, downloads (every one logged), signed links, attaching to other rooms' objects and deletion.

Other rooms call :func:`attach`, :func:`attached`, :func:`delete_documents` and :func:`document_out`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
import unicodedata
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core import audit
from marketplace.core.errors import Forbidden, NotFound, Unprocessable
from marketplace.core.jobs import enqueue
from marketplace.core.principal import Principal
from marketplace.core.security import purpose_key
from marketplace.core.settings import Settings
from marketplace.documents import access
from marketplace.documents.blobs import REMOVE_BLOB_TASK
from marketplace.documents.errors import PayloadTooLarge, UnsupportedMediaType
from marketplace.documents.models import Document
from marketplace.documents.repository import DocumentRepository
from marketplace.documents.schemas import DocumentOut
from marketplace.documents.sniff import HEAD_BYTES, sniff
from marketplace.documents.storage import Storage

_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029/\\]")


class DocumentNotFound(NotFound):
    """Document not found."""


def document_out(doc: Document) -> DocumentOut:
    return DocumentOut(
        id=doc.id,
        name=doc.name,
        size=doc.size,
        content_type=doc.content_type,
        sha256=doc.sha256,
        created_at=doc.created_at,
    )


def sanitise_name(raw: str | None) -> str:
    """The original file name without directories and control characters, NFC, at most 255 characters
    (the extension is kept when shortening)."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("", unicodedata.normalize("NFC", name)).strip().strip(".")
    if not name:
        return "document"
    if len(name) > 255:
        stem, dot, ext = name.rpartition(".")
        name = stem[: 255 - len(ext) - 1] + dot + ext if dot and len(ext) <= 16 else name[:255]
    return name


# -- upload ------------------------------------------------------------------------------------------


READ = "documents:read"
WRITE = "documents:write"


def require_scope(principal: Principal | None, scope: str) -> None:
    """An API key needs ``documents:read`` to read and ``documents:write`` to upload (403); a signed-in user has
    every scope and an anonymous caller is left to the 404 of :func:`readable`."""
    if principal is not None and not principal.has_scope(scope):
        raise Forbidden(f"This API key lacks the '{scope}' scope.")


def require_uploader(principal: Principal) -> None:
    """Checked before the body is read: the ``documents:write`` scope, a verified e-mail and a membership."""
    require_scope(principal, WRITE)
    principal.require_verified_email()
    if not principal.org_ids:
        raise Forbidden("Only members of an organisation can upload documents.")


def upload_org(principal: Principal, org_id: uuid.UUID | None) -> uuid.UUID:
    """The organisation an upload belongs to: ``org_id`` (one of the caller's) or the caller's only one."""
    require_uploader(principal)
    if org_id is not None:
        if not principal.can_act_for(org_id):
            raise NotFound("Organisation not found.")
        return org_id
    orgs = sorted(principal.org_ids)
    if len(orgs) > 1:
        raise Unprocessable("You belong to several organisations: say which one the document belongs to (org_id).")
    return orgs[0]


class UploadSource(Protocol):
    """An upload: its bytes, then (once they are read) the client's file name and the chosen organisation."""

    filename: str | None

    @property
    def org_id(self) -> uuid.UUID | None: ...

    def chunks(self) -> AsyncIterator[bytes]: ...


@dataclass
class Staged:
    path: Path
    size: int
    sha256: str
    head: bytes


async def stage(storage: Storage, chunks: AsyncIterator[bytes], *, max_bytes: int) -> Staged:
    """Write the upload to a staging file while hashing it; over ``max_bytes`` the file is removed and 413."""
    fd, name = tempfile.mkstemp(dir=storage.staging_dir, prefix="upload-")
    path = Path(name)
    digest = hashlib.sha256()
    size = 0
    head = b""
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(f"The file is larger than the limit of {max_bytes} bytes.")
                digest.update(chunk)
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
                await asyncio.to_thread(out.write, chunk)
    except BaseException:
        await asyncio.to_thread(path.unlink, True)
        raise
    return Staged(path=path, size=size, sha256=digest.hexdigest(), head=head)


async def upload(
    session: AsyncSession,
    *,
    principal: Principal,
    storage: Storage,
    org_id: uuid.UUID,
    filename: str | None,
    chunks: AsyncIterator[bytes],
    max_bytes: int,
) -> Document:
    """Store an upload for ``org_id`` (from :func:`upload_org`). Identical bytes share one blob."""
    require_uploader(principal)
    staged = await stage(storage, chunks, max_bytes=max_bytes)
    return await _store(session, principal=principal, storage=storage, staged=staged, org_id=org_id, filename=filename)


async def upload_from(
    session: AsyncSession, *, principal: Principal, storage: Storage, source: UploadSource, max_bytes: int
) -> Document:
    """Like :func:`upload` for a source that names its organisation after its bytes (a multipart stream)."""
    require_uploader(principal)
    staged = await stage(storage, source.chunks(), max_bytes=max_bytes)
    try:
        org_id = upload_org(principal, source.org_id)
    except BaseException:
        await asyncio.to_thread(staged.path.unlink, True)
        raise
    return await _store(
        session, principal=principal, storage=storage, staged=staged, org_id=org_id, filename=source.filename
    )


async def _store(
    session: AsyncSession,
    *,
    principal: Principal,
    storage: Storage,
    staged: Staged,
    org_id: uuid.UUID,
    filename: str | None,
) -> Document:
    """Sniff the staged file, hand it to the storage (once per SHA-256) and record the document."""
    try:
        if staged.size == 0:
            raise Unprocessable("The file is empty.")
        content_type = sniff(staged.head, staged.size)
        if content_type is None:
            raise UnsupportedMediaType()
        repo = DocumentRepository(session)
        await repo.lock_blob(staged.sha256)
        await storage.put_file(staged.sha256, staged.path)
    finally:
        await asyncio.to_thread(staged.path.unlink, True)
    doc = Document(
        org_id=org_id,
        uploaded_by=principal.user_id,
        name=sanitise_name(filename),
        size=staged.size,
        content_type=content_type,
        sha256=staged.sha256,
    )
    return await repo.add(doc)


# -- reading -----------------------------------------------------------------------------------------


async def can_read(session: AsyncSession, principal: Principal, doc: Document) -> bool:
    """Admins; members of the uploader organisation; parties of anything the document is attached to."""
    if principal.is_platform_admin or doc.org_id in principal.org_ids:
        return True
    if not principal.org_ids:
        return False
    for kind, target_id in await DocumentRepository(session).links_of(doc.id):
        check = access.PARTY_CHECKS.get(kind)
        if check is not None and await check(session, target_id, principal.org_ids):
            return True
    return False


async def readable(session: AsyncSession, principal: Principal | None, document_id: uuid.UUID) -> Document:
    """The live document if ``principal`` may read it; 404 alike for unknown, deleted and forbidden."""
    doc = await DocumentRepository(session).get(document_id)
    if doc is None or principal is None or not await can_read(session, principal, doc):
        raise DocumentNotFound()
    return doc


def _reader_org(principal: Principal, doc: Document) -> uuid.UUID | None:
    if doc.org_id in principal.org_ids:
        return doc.org_id
    return next(iter(principal.org_ids)) if len(principal.org_ids) == 1 else None


async def open_blob(storage: Storage, doc: Document) -> AsyncIterator[bytes]:
    """The document's bytes; the first chunk is read here so a missing blob is a 404, not a broken body."""
    stream = storage.read(doc.sha256)
    try:
        first = await anext(stream, b"")
    except FileNotFoundError as exc:
        raise DocumentNotFound() from exc

    async def rest() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in stream:
            yield chunk

    return rest()


async def download(
    session: AsyncSession, *, principal: Principal | None, storage: Storage, document_id: uuid.UUID
) -> tuple[Document, AsyncIterator[bytes]]:
    doc = await readable(session, principal, document_id)
    if principal is None:  # readable() lets nobody anonymous through; kept explicit under python -O
        raise NotFound("Document not found.")
    body = await open_blob(storage, doc)
    await DocumentRepository(session).log_download(
        doc.id, user_id=principal.user_id, org_id=_reader_org(principal, doc), via="api"
    )
    return doc, body


# -- signed links ------------------------------------------------------------------------------------


def _serializer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(purpose_key(settings, "document-links"), salt="document-download")


def link_token(
    settings: Settings,
    *,
    document_id: uuid.UUID,
    user_id: uuid.UUID | None,
    org_id: uuid.UUID | None,
    expires_at: datetime,
) -> str:
    claims = {
        "d": str(document_id),
        "u": str(user_id) if user_id else None,
        "o": str(org_id) if org_id else None,
        "e": int(expires_at.timestamp()),
    }
    return str(_serializer(settings).dumps(claims))


async def create_link(
    session: AsyncSession, *, principal: Principal, settings: Settings, storage: Storage, document_id: uuid.UUID
) -> tuple[str, datetime]:
    """A short-lived download URL: S3's presigned URL (logged now: the download bypasses the API) or the API's
    own signed ``/download?token=`` link (logged when used)."""
    doc = await readable(session, principal, document_id)
    seconds = settings.document_link_seconds
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds)
    org_id = _reader_org(principal, doc)
    url = await storage.signed_url(doc.sha256, filename=doc.name, content_type=doc.content_type, seconds=seconds)
    if url is not None:
        await DocumentRepository(session).log_download(doc.id, user_id=principal.user_id, org_id=org_id, via="link")
        return url, expires_at
    token = link_token(settings, document_id=doc.id, user_id=principal.user_id, org_id=org_id, expires_at=expires_at)
    return f"/api/v1/documents/{doc.id}/download?token={token}", expires_at


async def download_by_link(
    session: AsyncSession, *, settings: Settings, storage: Storage, document_id: uuid.UUID, token: str
) -> tuple[Document, AsyncIterator[bytes]]:
    invalid = DocumentNotFound("This download link is invalid or has expired.")
    try:
        claims = _serializer(settings).loads(token)
        same = claims["d"] == str(document_id)
        expires = datetime.fromtimestamp(int(claims["e"]), UTC)
        user_id = uuid.UUID(claims["u"]) if claims["u"] else None
        org_id = uuid.UUID(claims["o"]) if claims["o"] else None
    except (BadSignature, KeyError, TypeError, ValueError) as exc:
        raise invalid from exc
    if not same or expires <= datetime.now(UTC):
        raise invalid
    repo = DocumentRepository(session)
    doc = await repo.get(document_id)
    if doc is None:
        raise invalid
    body = await open_blob(storage, doc)
    await repo.log_download(doc.id, user_id=user_id, org_id=org_id, via="link")
    return doc, body


# -- the API other rooms call ------------------------------------------------------------------------


async def attach(
    session: AsyncSession,
    *,
    principal: Principal,
    document_ids: list[uuid.UUID],
    target_kind: str,
    target_id: uuid.UUID,
) -> list[Document]:
    """Attach documents uploaded by one of the principal's organisations (idempotent; links are kept)."""
    wanted = list(dict.fromkeys(document_ids))
    repo = DocumentRepository(session)
    found = {d.id: d for d in await repo.get_many(wanted)}
    for document_id in wanted:
        doc = found.get(document_id)
        if doc is None or doc.deleted_at is not None or doc.org_id not in principal.org_ids:
            raise Unprocessable(f"Document {document_id} does not exist or was not uploaded by your organisation.")
    await repo.link(wanted, target_kind=target_kind, target_id=target_id)
    return [found[d] for d in wanted]


async def attach_for_org(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    document_id: uuid.UUID,
    target_kind: str,
    target_id: uuid.UUID,
    content_types: frozenset[str] | None = None,
) -> Document:
    """Attach one document uploaded for ``org_id`` (the caller has checked who acts for ``org_id``); with
    ``content_types``, only a document of one of those types (else 415)."""
    doc = await DocumentRepository(session).get(document_id)
    if doc is None or doc.org_id != org_id:
        raise Unprocessable(f"document_id: document {document_id} does not exist or is not this organisation's.")
    if content_types is not None and doc.content_type not in content_types:
        raise UnsupportedMediaType("This kind of file is not accepted here: upload a PDF, PNG or JPEG file.")
    await DocumentRepository(session).link([doc.id], target_kind=target_kind, target_id=target_id)
    return doc


async def latest_attached(
    session: AsyncSession, *, target_kind: str, target_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Document]:
    """The newest live document attached to each of ``target_ids``."""
    return await DocumentRepository(session).latest_attached(target_kind=target_kind, target_ids=target_ids)


async def attached(session: AsyncSession, *, target_kind: str, target_id: uuid.UUID) -> list[Document]:
    """The live documents attached to a target, oldest first."""
    return await DocumentRepository(session).attached(target_kind=target_kind, target_id=target_id)


async def delete_documents(
    session: AsyncSession,
    *,
    document_ids: Sequence[uuid.UUID],
    reason: str,
    actor_user_id: uuid.UUID | None = None,
) -> int:
    """Mark documents deleted (audited) and enqueue, through the outbox, the removal of each blob no live row
    shares any more: the bytes go only once this transaction has committed (a rollback keeps them readable).
    Returns how many documents were deleted (already deleted ones are skipped: idempotent)."""
    repo = DocumentRepository(session)
    deleted = await repo.mark_deleted(list(dict.fromkeys(document_ids)))
    for doc in deleted:
        await audit.record(
            session,
            actor_user_id=actor_user_id,
            action="document.deleted",
            target_type="document",
            target_id=doc.id,
            before={"name": doc.name, "sha256": doc.sha256, "org_id": str(doc.org_id), "size": doc.size},
            reason=reason,
        )
    for sha in sorted({d.sha256 for d in deleted}):
        if await repo.live_count(sha) == 0:
            await enqueue(session, REMOVE_BLOB_TASK, sha)
    return len(deleted)


async def _booking_party(session: AsyncSession, booking_id: uuid.UUID, org_ids: frozenset[uuid.UUID]) -> bool:
    parties = await DocumentRepository(session).booking_parties(booking_id)
    return parties is not None and bool(set(parties) & org_ids)


access.register_party_check("booking", _booking_party)

# The attachment kinds of the app shell (licences, certificate scans) register their party checks on import.
from marketplace.documents import kinds as _kinds  # noqa: E402,F401
