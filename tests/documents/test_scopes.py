"""An API key needs ``documents:write`` to upload and ``documents:read`` to read documents."""

from __future__ import annotations

from httpx import AsyncClient

from tests.documents import samples
from tests.documents.helpers import upload, uploaded
from tests.factories import signed_up


async def _key(client: AsyncClient, owner: dict[str, str], org_id: str, *scopes: str) -> dict[str, str]:
    made = await client.post(
        f"/api/v1/orgs/{org_id}/api-keys", json={"name": "MES", "scopes": list(scopes)}, headers=owner
    )
    assert made.status_code == 201, made.text
    return {"X-API-Key": made.json()["secret"]}


async def test_a_key_without_the_documents_scopes_gets_403(client: AsyncClient) -> None:
    reg, owner = await signed_up(client, roles=("buyer",))
    org_id = reg["org"]["id"]
    doc = await uploaded(client, owner, samples.PDF, "drawing.pdf")
    key = await _key(client, owner, org_id, "requests:read", "requests:write")

    refused = await upload(client, key, samples.PDF, "other.pdf")
    assert refused.status_code == 403, refused.text
    assert "documents:write" in refused.text
    for path in ("", "/meta", "/link"):
        got = await client.get(f"/api/v1/documents/{doc['id']}{path}", headers=key)
        assert got.status_code == 403, (path, got.text)
        assert "documents:read" in got.text


async def test_a_key_with_the_documents_scopes_uploads_and_reads(client: AsyncClient) -> None:
    reg, owner = await signed_up(client, roles=("buyer",))
    org_id = reg["org"]["id"]
    writer = await _key(client, owner, org_id, "documents:write")
    reader = await _key(client, owner, org_id, "documents:read")

    doc = await uploaded(client, writer, samples.PDF, "drawing.pdf")
    assert (await client.get(f"/api/v1/documents/{doc['id']}", headers=writer)).status_code == 403
    got = await client.get(f"/api/v1/documents/{doc['id']}", headers=reader)
    assert got.status_code == 200 and got.content == samples.PDF
    assert (await client.get(f"/api/v1/documents/{doc['id']}/meta", headers=reader)).json()["id"] == doc["id"]
    assert (await upload(client, reader, samples.PNG, "photo.png")).status_code == 403
