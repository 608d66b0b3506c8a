"""The report's PDF rendered by the ``inspection.render_report`` job on a real Celery worker process (real Redis,
committed PostgreSQL, the document store on disk): rendered once, and a redelivered job renders nothing new."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from celery import Celery
from httpx import ASGITransport, AsyncClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from marketplace.core.celery import kombu_url
from marketplace.core.settings import Settings
from marketplace.documents.storage import LocalStorage
from tests import processes
from tests.conftest import build_app
from tests.inspection.test_verify_helpers import inspected_lot, pdf_contains
from tests.processes import Proc, running

pytestmark = pytest.mark.worker


@pytest.fixture
def queue() -> str:
    return f"test-pdf-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "worker-data"


@pytest.fixture
def worker(committed_db_url: str, redis_url: str, queue: str, data_dir: Path) -> Iterator[Proc]:
    with running(processes.worker(committed_db_url, redis_url, queue, data_dir=data_dir)) as proc:
        yield proc


@pytest.fixture
def committed_sessions(committed_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(committed_engine, expire_on_commit=False, autoflush=False)


@pytest.fixture
async def committed_client(
    settings: Settings,
    committed_sessions: async_sessionmaker[AsyncSession],
    committed_engine: AsyncEngine,
    redis: Redis,
    redis_url: str,
) -> AsyncIterator[AsyncClient]:
    app = build_app(settings, committed_sessions, committed_engine, redis, redis_url)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


def _run(client: Celery, worker: Proc, name: str, *args: Any) -> Any:
    result = client.send_task(name, args=list(args))
    try:
        return result.get(timeout=90)
    except Exception:
        raise AssertionError(f"the worker did not answer {name}; its output:\n{worker.output()}") from None


async def test_the_worker_renders_the_report_pdf_once(
    worker: Proc,
    committed_client: AsyncClient,
    committed_sessions: async_sessionmaker[AsyncSession],
    redis_url: str,
    queue: str,
    data_dir: Path,
) -> None:
    async with committed_sessions() as db:
        lot = await inspected_lot(committed_client, db)
    celery = Celery("pdf-test-client", broker=kombu_url(redis_url), backend=kombu_url(redis_url))
    celery.conf.task_default_queue = queue

    first = _run(celery, worker, "inspection.render_report", str(lot.report.id))
    assert first is not None
    again = _run(celery, worker, "inspection.render_report", str(lot.report.id))
    assert again == first  # a redelivered job returns the document issued first
    assert _run(celery, worker, "inspection.render_report", str(uuid.uuid4())) is None  # no such report

    async with committed_sessions() as db:
        rows = (
            await db.execute(
                sa.text(
                    "SELECT v.hash, v.file_sha256, v.document_id, r.pdf_document_id FROM verifiable_documents v "
                    "JOIN inspection_reports r ON r.pdf_document_id = v.document_id WHERE r.id = :id"
                ),
                {"id": lot.report.id},
            )
        ).all()
        count = (await db.execute(sa.text("SELECT count(*) FROM verifiable_documents"))).scalar_one()
    assert count == 1 and len(rows) == 1
    content_hash, file_sha256, document_id, pdf_document_id = rows[0]
    assert str(document_id) == first == str(pdf_document_id)
    storage = LocalStorage(data_dir / "documents")
    data = b"".join([chunk async for chunk in storage.read(file_sha256)])
    assert data.startswith(b"%PDF-") and hashlib.sha256(data).hexdigest() == file_sha256
    assert pdf_contains(data, content_hash)

    # The public check finds it by its bytes.
    r = await committed_client.post("/api/v1/verify", files={"file": ("r.pdf", data, "application/pdf")})
    assert r.status_code == 200 and r.json()["code"] == content_hash
