"""The listings room's certificate scans, kept in the document store (``listings.ports.CertificateScans``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.documents import kinds, service
from marketplace.documents.models import Document


class DocumentStoreScans:
    async def attach(
        self, session: AsyncSession, *, org_id: uuid.UUID, document_id: uuid.UUID, certificate_id: uuid.UUID
    ) -> None:
        await service.attach_for_org(
            session,
            org_id=org_id,
            document_id=document_id,
            target_kind=kinds.CERTIFICATE,
            target_id=certificate_id,
            content_types=kinds.SCAN_TYPES,
        )

    async def scans(self, session: AsyncSession, certificate_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        found = await scan_documents(session, certificate_ids)
        return {cert_id: doc.id for cert_id, doc in found.items()}


async def scan_documents(session: AsyncSession, certificate_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Document]:
    """The latest scan of each certificate that has one."""
    return await service.latest_attached(session, target_kind=kinds.CERTIFICATE, target_ids=certificate_ids)
