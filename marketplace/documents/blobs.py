"""Removing a blob once nothing uses it: the ``documents.remove_blob`` job.

Deleting a document only marks its row deleted and enqueues this job through the transactional outbox, so the
bytes are removed after the deletion has committed and never when it rolls back. Identical uploads share one
blob (the key is the SHA-256), so the job removes it only while no live document has that hash; it holds the
blob's lock (:meth:`DocumentRepository.lock_blob`) meanwhile, so an upload of the same bytes either comes first
(and the blob stays) or waits and stores the bytes again. Delivery is at least once: the job is idempotent.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.documents.repository import DocumentRepository
from marketplace.documents.storage import Storage

REMOVE_BLOB_TASK = "documents.remove_blob"


async def remove_if_unused(session: AsyncSession, *, storage: Storage, sha256: str) -> bool:
    """Remove the blob ``sha256`` unless a live document uses it; returns whether there was one to remove."""
    repo = DocumentRepository(session)
    await repo.lock_blob(sha256)
    if await repo.live_count(sha256) > 0 or not await storage.exists(sha256):
        return False
    await storage.delete(sha256)
    return True
