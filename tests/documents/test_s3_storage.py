"""The S3 adapter against a real S3 API: moto's server in a subprocess, spoken to over HTTP."""

from __future__ import annotations

import hashlib
import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.settings import Settings
from marketplace.documents import service
from marketplace.documents.storage import S3Storage, storage_for
from tests.documents import samples
from tests.documents.helpers import run_blob_jobs, uploaded
from tests.factories import signed_up
from tests.processes import Proc, free_port


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    executable = Path(sys.executable).parent / "moto_server"
    # A missing server is a broken environment, not a reason to skip: the test fails.
    assert executable.exists(), f"{executable} is missing: install moto[server]"
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    proc = Proc([str(executable), "-H", "127.0.0.1", "-p", str(port)], env, "moto")
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/", timeout=1)
                break
            except httpx.TransportError:
                assert proc.alive(), proc.output()
                assert time.monotonic() < deadline, "moto_server did not start: " + proc.output()
                time.sleep(0.2)
        yield url
    finally:
        proc.stop()


@pytest.fixture
def settings(settings: Settings, moto_url: str) -> Settings:
    settings.storage_backend = "s3"
    settings.storage_s3_endpoint_url = moto_url
    settings.storage_s3_bucket = f"docs-{uuid.uuid4().hex[:10]}"
    settings.storage_s3_access_key = "test"
    settings.storage_s3_secret_key = "test"
    return settings


def _keys(storage: S3Storage) -> list[str]:
    listed = storage.client.list_objects_v2(Bucket=storage.bucket)
    return sorted(o["Key"] for o in listed.get("Contents", []))


async def test_s3_upload_download_presigned_link_dedupe_and_delete(
    client: AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    storage = storage_for(settings)
    assert isinstance(storage, S3Storage)
    _a, first = await signed_up(client, roles=("buyer",))
    _b, second = await signed_up(client, roles=("supplier",))
    one = await uploaded(client, first, samples.STEP, "Bauteil 1.step")
    two = await uploaded(client, second, samples.STEP, "copy.step")
    sha = hashlib.sha256(samples.STEP).hexdigest()
    assert one["sha256"] == two["sha256"] == sha
    assert _keys(storage) == [sha]  # stored once

    got = await client.get(f"/api/v1/documents/{one['id']}", headers=first)
    assert got.status_code == 200 and got.content == samples.STEP

    link = await client.get(f"/api/v1/documents/{one['id']}/link", headers=first)
    assert link.status_code == 200, link.text
    url = link.json()["url"]
    assert url.startswith(settings.storage_s3_endpoint_url or "?")
    async with httpx.AsyncClient() as outside:  # over HTTP, without the API's credentials
        fetched = await outside.get(url)
    assert fetched.status_code == 200 and fetched.content == samples.STEP
    assert fetched.headers["content-type"] == "model/step"
    assert "filename*=UTF-8''Bauteil%201.step" in fetched.headers["content-disposition"]
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=" in url  # (moto does not check signatures)
    logged = await db.execute(
        sa.text("SELECT via FROM document_downloads WHERE document_id = :d ORDER BY at"), {"d": one["id"]}
    )
    assert list(logged.scalars()) == ["api", "link"]  # a presigned link is logged when it is issued

    deleted = await service.delete_documents(db, document_ids=[uuid.UUID(one["id"])], reason="t")
    assert deleted == 1
    assert _keys(storage) == [sha]
    again = await client.get(f"/api/v1/documents/{two['id']}", headers=second)
    assert again.status_code == 200 and again.content == samples.STEP
    await service.delete_documents(db, document_ids=[uuid.UUID(two["id"])], reason="t")
    assert _keys(storage) == [sha]  # removed by the job, after commit
    assert await run_blob_jobs(db, storage) == [sha]
    assert _keys(storage) == []
    assert not await storage.exists(sha)
