"""Deleting a document removes its bytes only after the deletion commits (an outbox job), and only when no live
document shares them."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.settings import Settings
from marketplace.documents import service
from marketplace.documents.storage import storage_for
from tests.documents import samples
from tests.documents.helpers import blobs, run_blob_jobs, uploaded
from tests.factories import signed_up


async def _blob_jobs(db: AsyncSession) -> list[str]:
    rows = await db.execute(sa.text("SELECT args->>0 FROM outbox WHERE task = 'documents.remove_blob'"))
    return list(rows.scalars())


async def test_a_deletion_that_rolls_back_keeps_the_document_and_its_bytes(
    client: AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    _reg, headers = await signed_up(client, roles=("buyer",))
    doc = await uploaded(client, headers, samples.PDF, "drawing.pdf")

    transaction = await db.begin_nested()
    assert await service.delete_documents(db, document_ids=[uuid.UUID(doc["id"])], reason="test") == 1
    assert await _blob_jobs(db) == [doc["sha256"]]
    assert [p.name for p in blobs(settings.data_dir)] == [doc["sha256"]]  # nothing removed before commit
    await transaction.rollback()

    assert await _blob_jobs(db) == []  # the job went with the transaction
    assert await run_blob_jobs(db, storage_for(settings)) == []
    got = await client.get(f"/api/v1/documents/{doc['id']}", headers=headers)
    assert got.status_code == 200 and got.content == samples.PDF


async def test_a_committed_deletion_removes_the_bytes_through_the_job(
    client: AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    _reg, headers = await signed_up(client, roles=("buyer",))
    doc = await uploaded(client, headers, samples.PNG, "photo.png")

    assert await service.delete_documents(db, document_ids=[uuid.UUID(doc["id"])], reason="test") == 1
    assert await run_blob_jobs(db, storage_for(settings)) == [doc["sha256"]]
    assert blobs(settings.data_dir) == []
    assert (await client.get(f"/api/v1/documents/{doc['id']}", headers=headers)).status_code == 404
    assert await run_blob_jobs(db, storage_for(settings)) == []  # done once


async def test_the_job_keeps_a_blob_uploaded_again_after_the_deletion(
    client: AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    _reg, headers = await signed_up(client, roles=("buyer",))
    first = await uploaded(client, headers, samples.STL_ASCII, "a.stl")
    assert await service.delete_documents(db, document_ids=[uuid.UUID(first["id"])], reason="test") == 1
    again = await uploaded(client, headers, samples.STL_ASCII, "b.stl")  # same bytes before the job ran

    assert await run_blob_jobs(db, storage_for(settings)) == []
    got = await client.get(f"/api/v1/documents/{again['id']}", headers=headers)
    assert got.status_code == 200 and got.content == samples.STL_ASCII


async def test_deleting_one_of_two_documents_sharing_a_blob_enqueues_no_removal(
    client: AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    _a, first_org = await signed_up(client, roles=("buyer",))
    _b, second_org = await signed_up(client, roles=("supplier",))
    one = await uploaded(client, first_org, samples.STEP, "one.step")
    two = await uploaded(client, second_org, samples.STEP, "two.step")

    assert await service.delete_documents(db, document_ids=[uuid.UUID(one["id"])], reason="test") == 1
    assert await _blob_jobs(db) == []
    got = await client.get(f"/api/v1/documents/{two['id']}", headers=second_org)
    assert got.status_code == 200 and got.content == samples.STEP
