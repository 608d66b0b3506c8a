"""Helpers of the documents tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from httpx import AsyncClient, Response


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
