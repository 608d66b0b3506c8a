"""The ``documents.retention`` Celery task: its own unit of work on a database whose commits are real."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

import marketplace.core.tasks as core_tasks
import marketplace.documents.tasks as document_tasks
from marketplace.core.settings import Settings
from marketplace.documents.models import Document, DocumentLink
from marketplace.documents.storage import storage_for
from marketplace.orgs.models import Organisation
from marketplace.requests.models import BuyerRequest
from tests.documents import samples


async def _seed(engine: AsyncEngine, *, status: str, closed_at: datetime) -> uuid.UUID:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        org = Organisation(name="Buyer", country="CN", roles=["buyer"])
        session.add(org)
        await session.flush()
        req = BuyerRequest(
            buyer_org_id=org.id,
            status=status,
            kind="machine",
            process_code="machining.milling.cnc_5axis",
            duration_minutes=60,
            earliest_start=closed_at,
            deadline=closed_at + timedelta(days=7),
            currency="CNY",
            updated_at=closed_at,
        )
        doc_id = uuid.uuid4()
        sha = hashlib.sha256(samples.STEP + str(doc_id).encode()).hexdigest()
        doc = Document(id=doc_id, org_id=org.id, name="part.step", size=10, content_type="model/step", sha256=sha)
        session.add_all([req, doc])
        await session.flush()
        session.add(DocumentLink(document_id=doc.id, target_kind="request", target_id=req.id))
        await session.commit()
    return doc_id


async def test_the_retention_task_deletes_in_its_own_transaction_and_is_idempotent(
    committed_engine: AsyncEngine, committed_db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data_dir = tmp_path
    settings = Settings(
        environment="test",
        jwt_secret="t" * 40,
        database_url=committed_db_url,
        data_dir=data_dir,
        drawing_retention_days=30,
    )
    monkeypatch.setattr(core_tasks, "get_settings", lambda: settings)
    monkeypatch.setattr(document_tasks, "get_settings", lambda: settings)
    now = datetime.now(UTC)
    old = await _seed(committed_engine, status="closed", closed_at=now - timedelta(days=31))
    young = await _seed(committed_engine, status="closed", closed_at=now - timedelta(days=29))
    opened = await _seed(committed_engine, status="open", closed_at=now - timedelta(days=400))
    storage = storage_for(settings)
    async with committed_engine.connect() as conn:
        shas = {r[0]: r[1] for r in (await conn.execute(sa.text("SELECT id, sha256 FROM documents"))).all()}
    for sha in shas.values():
        staged = storage.staging_dir / sha
        staged.write_bytes(b"x")
        await storage.put_file(sha, staged)

    assert await asyncio.to_thread(document_tasks.retention_sweep) == 1
    assert await asyncio.to_thread(document_tasks.retention_sweep) == 0  # idempotent

    async with committed_engine.connect() as conn:
        live = set((await conn.execute(sa.text("SELECT id FROM documents WHERE deleted_at IS NULL"))).scalars())
        audited = (
            await conn.execute(
                sa.text("SELECT count(*) FROM audit_log WHERE action = 'document.deleted' AND target_id = :id"),
                {"id": str(old)},
            )
        ).scalar_one()
    assert live == {young, opened}
    assert audited == 1
    assert await storage.exists(shas[old])  # the bytes go with the job the deletion enqueued, after its commit
    async with committed_engine.connect() as conn:
        jobs = (await conn.execute(sa.text("SELECT task, args FROM outbox ORDER BY id"))).all()
    assert [(task, args) for task, args in jobs] == [("documents.remove_blob", [shas[old]])]
    assert await asyncio.to_thread(document_tasks.remove_blob, shas[old]) is True
    assert await asyncio.to_thread(document_tasks.remove_blob, shas[old]) is False  # idempotent
    assert not await storage.exists(shas[old])
    assert await storage.exists(shas[young]) and await storage.exists(shas[opened])
