"""Helpers of the documents tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.documents import blobs as blob_jobs
from marketplace.documents.storage import Storage


async def upload(
    client: AsyncClient,
    headers: dict[str, str],
    data: bytes,
    name: str = "part.pdf",
    content_type: str = "application/octet-stream",
    **form: str,
) -> Response:
    return await client.post(
        "/api/v1/documents", headers=headers, files={"file": (name, data, content_type)}, data=form or None
    )


async def uploaded(client: AsyncClient, headers: dict[str, str], data: bytes, name: str = "part.pdf") -> dict[str, Any]:
    resp = await upload(client, headers, data, name)
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def blobs(root: Path) -> list[Path]:
    """The stored blobs of a local store (staging files excluded)."""
    store = root / "documents"
    return sorted(p for p in store.rglob("*") if p.is_file() and "staging" not in p.parts) if store.exists() else []


def staged(root: Path) -> list[Path]:
    staging = root / "documents" / "staging"
    return sorted(staging.iterdir()) if staging.exists() else []


async def run_blob_jobs(session: AsyncSession, storage: Storage) -> list[str]:
    """Run the ``documents.remove_blob`` jobs waiting in the outbox (as the relay and worker would after commit)
    with the job function itself; returns the hashes whose blobs were removed."""
    rows = await session.execute(
        sa.text("DELETE FROM outbox WHERE task = :task RETURNING args"), {"task": blob_jobs.REMOVE_BLOB_TASK}
    )
    removed = []
    for (args,) in rows.all():
        if await blob_jobs.remove_if_unused(session, storage=storage, sha256=args[0]):
            removed.append(args[0])
    return removed
