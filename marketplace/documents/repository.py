"""All SQL of the document store."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.core.sqltypes import utcnow
from marketplace.documents.models import Document, DocumentDownload, DocumentLink

# A booking in one of these states is over; its documents' retention counts from its last change.
ENDED_BOOKING_STATUSES = ("settled", "resolved", "cancelled", "declined", "expired")

_ENDED_SQL = ", ".join(f"'{s}'" for s in ENDED_BOOKING_STATUSES)
# Each link resolved to the request or booking it belongs to: a file sent in a message belongs to its thread's
# request or booking, so a closed request's message attachments follow its drawings. A document with a link of
# any other kind is never deleted here.
_RETENTION = sa.text(
    f"""
    WITH subjects AS (
        SELECT l.document_id, l.target_kind AS kind, l.target_id AS subject_id
        FROM document_links l WHERE l.target_kind IN ('request', 'booking')
        UNION ALL
        SELECT l.document_id, CASE WHEN t.request_id IS NOT NULL THEN 'request' ELSE 'booking' END,
               COALESCE(t.request_id, t.booking_id)
        FROM document_links l JOIN messages m ON m.id = l.target_id JOIN message_threads t ON t.id = m.thread_id
        WHERE l.target_kind = 'message'
    )
    SELECT d.id FROM documents d
    WHERE d.deleted_at IS NULL
      AND EXISTS (SELECT 1 FROM subjects s WHERE s.document_id = d.id)
      AND NOT EXISTS (SELECT 1 FROM document_links l
                      WHERE l.document_id = d.id AND l.target_kind NOT IN ('request', 'booking', 'message'))
      AND NOT EXISTS (SELECT 1 FROM subjects s JOIN requests r ON r.id = s.subject_id
                      WHERE s.document_id = d.id AND s.kind = 'request'
                        AND (r.status = 'open' OR r.updated_at > :drawing_cutoff))
      AND NOT EXISTS (SELECT 1 FROM subjects s JOIN bookings b ON b.id = s.subject_id
                      WHERE s.document_id = d.id AND s.kind = 'booking'
                        AND (b.status NOT IN ({_ENDED_SQL}) OR b.updated_at > :booking_cutoff))
    ORDER BY d.id
    LIMIT :limit
    """
)

# Live documents uploaded before the cutoff that nothing uses: attached to nothing, or only to certificates and
# organisations (licences) that no longer exist. A link of any other kind (a request, a booking, a message ...)
# keeps the document: those follow _RETENTION.
_UNATTACHED = sa.text(
    """
    SELECT d.id FROM documents d
    WHERE d.deleted_at IS NULL AND d.created_at < :cutoff
      AND NOT EXISTS (
          SELECT 1 FROM document_links l
          WHERE l.document_id = d.id
            AND NOT (l.target_kind = 'certificate'
                     AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.id = l.target_id))
            AND NOT (l.target_kind = 'org_licence'
                     AND NOT EXISTS (SELECT 1 FROM organisations o WHERE o.id = l.target_id))
      )
    ORDER BY d.id
    LIMIT :limit
    """
)


class DocumentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, doc: Document) -> Document:
        self.session.add(doc)
        await self.session.flush()
        return doc

    async def lock_blob(self, sha256: str) -> None:
        """Serialise writers of one blob (an upload against the deletion of its last live row) until commit."""
        await self.session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(sha256, 17))))

    async def get(self, document_id: uuid.UUID) -> Document | None:
        stmt = sa.select(Document).where(col(Document.id) == document_id, col(Document.deleted_at).is_(None))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_many(self, document_ids: Sequence[uuid.UUID]) -> list[Document]:
        stmt = sa.select(Document).where(col(Document.id).in_(list(document_ids)))
        return list((await self.session.execute(stmt)).scalars())

    async def links_of(self, document_id: uuid.UUID) -> list[tuple[str, uuid.UUID]]:
        stmt = sa.select(col(DocumentLink.target_kind), col(DocumentLink.target_id)).where(
            col(DocumentLink.document_id) == document_id
        )
        return [(str(kind), target) for kind, target in (await self.session.execute(stmt)).all()]

    async def link(self, document_ids: Sequence[uuid.UUID], *, target_kind: str, target_id: uuid.UUID) -> None:
        if not document_ids:
            return
        stmt = (
            insert(DocumentLink)
            .values([{"document_id": d, "target_kind": target_kind, "target_id": target_id} for d in document_ids])
            .on_conflict_do_nothing()
        )
        await self.session.execute(stmt)

    async def attached(self, *, target_kind: str, target_id: uuid.UUID) -> list[Document]:
        stmt = (
            sa.select(Document)
            .join(DocumentLink, col(DocumentLink.document_id) == col(Document.id))
            .where(
                col(DocumentLink.target_kind) == target_kind,
                col(DocumentLink.target_id) == target_id,
                col(Document.deleted_at).is_(None),
            )
            .order_by(col(Document.created_at), col(Document.id))
        )
        return list((await self.session.execute(stmt)).scalars())

    async def mark_deleted(self, document_ids: Sequence[uuid.UUID]) -> list[Document]:
        """Mark the live ones deleted; returns the rows that changed."""
        stmt = (
            sa.update(Document)
            .where(col(Document.id).in_(list(document_ids)), col(Document.deleted_at).is_(None))
            .values(deleted_at=utcnow())
            .returning(Document)
            .execution_options(synchronize_session=False)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def live_count(self, sha256: str) -> int:
        stmt = sa.select(sa.func.count()).where(col(Document.sha256) == sha256, col(Document.deleted_at).is_(None))
        return int((await self.session.execute(stmt)).scalar_one())

    async def log_download(
        self, document_id: uuid.UUID, *, user_id: uuid.UUID | None, org_id: uuid.UUID | None, via: str
    ) -> None:
        self.session.add(DocumentDownload(document_id=document_id, user_id=user_id, org_id=org_id, via=via))
        await self.session.flush()

    async def booking_parties(self, booking_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID] | None:
        """(buyer organisation, supplier organisation) of a booking."""
        row = (
            await self.session.execute(
                sa.text("SELECT buyer_org_id, supplier_org_id FROM bookings WHERE id = :id"), {"id": booking_id}
            )
        ).first()
        return (row[0], row[1]) if row is not None else None

    async def certificate_customer(self, cert_id: uuid.UUID, org_ids: frozenset[uuid.UUID]) -> bool:
        """Has one of ``org_ids`` booked with the organisation that owns the certificate?"""
        if not org_ids:
            return False
        row = (
            await self.session.execute(
                sa.text(
                    "SELECT 1 FROM certificates c JOIN bookings b ON b.supplier_org_id = c.org_id "
                    "WHERE c.id = :id AND b.buyer_org_id = ANY(:orgs) LIMIT 1"
                ),
                {"id": cert_id, "orgs": list(org_ids)},
            )
        ).first()
        return row is not None

    async def latest_attached(self, *, target_kind: str, target_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Document]:
        """The newest live document attached to each target (targets with none are left out)."""
        if not target_ids:
            return {}
        stmt = (
            sa.select(col(DocumentLink.target_id), Document)
            .join(DocumentLink, col(DocumentLink.document_id) == col(Document.id))
            .where(
                col(DocumentLink.target_kind) == target_kind,
                col(DocumentLink.target_id).in_(list(target_ids)),
                col(Document.deleted_at).is_(None),
            )
            .order_by(col(DocumentLink.created_at), col(Document.created_at))
        )
        return {target: doc for target, doc in (await self.session.execute(stmt)).all()}

    async def past_retention(
        self, *, drawing_cutoff: datetime, booking_cutoff: datetime, limit: int
    ) -> list[uuid.UUID]:
        """Live documents attached to requests and bookings all of which are over and older than their cutoff:
        requests closed before ``drawing_cutoff``, bookings ended before ``booking_cutoff``."""
        params = {
            "drawing_cutoff": drawing_cutoff,
            "booking_cutoff": booking_cutoff,
            "limit": limit,
        }
        return list((await self.session.execute(_RETENTION, params)).scalars())

    async def unattached(self, *, cutoff: datetime, limit: int) -> list[uuid.UUID]:
        """Live documents uploaded before ``cutoff`` that are attached to nothing that still exists."""
        return list((await self.session.execute(_UNATTACHED, {"cutoff": cutoff, "limit": limit})).scalars())
