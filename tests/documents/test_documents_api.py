"""Upload, download, access and the download log of the document store (local storage)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.settings import Settings
from marketplace.documents import service
from marketplace.documents.storage import storage_for
from tests.documents import samples
from tests.documents.helpers import blobs, run_blob_jobs, staged, upload, uploaded
from tests.factories import admin_headers, signed_up


async def _downloads(db: AsyncSession, document_id: str) -> list[tuple[str | None, str | None, str]]:
    rows = await db.execute(
        sa.text("SELECT user_id::text, org_id::text, via FROM document_downloads WHERE document_id = :d ORDER BY at"),
        {"d": document_id},
    )
    return [(r[0], r[1], r[2]) for r in rows.all()]


async def test_the_uploader_uploads_and_downloads_and_every_download_is_logged(
    client: AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    reg, headers = await signed_up(client, roles=("buyer",))
    resp = await upload(client, headers, samples.PDF, name="../../etc/Zeichnung Ü.pdf", content_type="text/plain")
    assert resp.status_code == 201, resp.text
    doc = resp.json()
    assert set(doc) >= {"id", "name", "size", "content_type", "sha256"}
    assert doc["name"] == "Zeichnung Ü.pdf"
    assert doc["size"] == len(samples.PDF)
    assert doc["content_type"] == "application/pdf"  # sniffed, not the client's text/plain
    assert doc["sha256"] == hashlib.sha256(samples.PDF).hexdigest()

    got = await client.get(f"/api/v1/documents/{doc['id']}", headers=headers)
    assert got.status_code == 200
    assert got.content == samples.PDF
    assert got.headers["content-type"] == "application/pdf"
    disposition = got.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''" + quote("Zeichnung Ü.pdf", safe="") in disposition

    meta = await client.get(f"/api/v1/documents/{doc['id']}/meta", headers=headers)
    assert meta.status_code == 200 and meta.json()["sha256"] == doc["sha256"]

    assert await _downloads(db, doc["id"]) == [(reg["user"]["id"], reg["org"]["id"], "api")]
    assert staged(settings.data_dir) == []


async def test_a_third_organisation_and_anonymous_callers_get_404_like_an_unknown_id(
    client: AsyncClient, db: AsyncSession
) -> None:
    _reg, owner = await signed_up(client, roles=("buyer",))
    _other, stranger = await signed_up(client, roles=("supplier",))
    doc = await uploaded(client, owner, samples.STEP, "bracket.step")

    unknown = await client.get(f"/api/v1/documents/{uuid.uuid4()}", headers=owner)
    for headers in (stranger, {}):
        resp = await client.get(f"/api/v1/documents/{doc['id']}", headers=headers)
        assert resp.status_code == 404
        assert resp.json()["error"] == unknown.json()["error"] == "not_found"
        assert resp.json()["detail"] == unknown.json()["detail"]
    for path in ("meta", "link"):
        assert (await client.get(f"/api/v1/documents/{doc['id']}/{path}", headers=stranger)).status_code == 404
    assert await _downloads(db, doc["id"]) == []

    admin = await admin_headers(client, db)
    assert (await client.get(f"/api/v1/documents/{doc['id']}", headers=admin)).content == samples.STEP


@pytest.mark.parametrize("kind", sorted(samples.ALLOWED))
async def test_each_allowed_type_is_recognised_from_its_bytes(client: AsyncClient, kind: str) -> None:
    data, content_type = samples.ALLOWED[kind]
    _reg, headers = await signed_up(client, roles=("buyer",))
    resp = await upload(client, headers, data, name="upload.bin")
    assert resp.status_code == 201, resp.text
    assert resp.json()["content_type"] == content_type


@pytest.mark.parametrize(
    ("data", "name", "content_type"),
    [
        (samples.EXE, "drawing.pdf", "application/pdf"),
        (samples.ELF, "model.step", "model/step"),
        (samples.TEXT, "drawing.pdf", "application/pdf"),
        (b"solid but no facets here, just words", "part.stl", "model/stl"),
    ],
)
async def test_a_renamed_executable_or_text_is_refused_with_415(
    client: AsyncClient, db: AsyncSession, settings: Settings, data: bytes, name: str, content_type: str
) -> None:
    _reg, headers = await signed_up(client, roles=("buyer",))
    resp = await upload(client, headers, data, name=name, content_type=content_type)
    assert resp.status_code == 415, resp.text
    body = resp.json()
    assert body["error"] == "unsupported_media_type"
    assert "STEP" in body["detail"] and body["request_id"]
    assert blobs(settings.data_dir) == [] and staged(settings.data_dir) == []
    assert (await db.execute(sa.text("SELECT count(*) FROM documents"))).scalar_one() == 0


async def test_an_upload_over_the_size_limit_is_413_and_nothing_is_stored(
    client: AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    settings.document_max_bytes = 2048
    _reg, headers = await signed_up(client, roles=("buyer",))
    big = samples.PDF + b"%" * 4096
    resp = await upload(client, headers, big)
    assert resp.status_code == 413, resp.text
    assert resp.json()["error"] == "payload_too_large"
    assert blobs(settings.data_dir) == [] and staged(settings.data_dir) == []
    assert (await db.execute(sa.text("SELECT count(*) FROM documents"))).scalar_one() == 0
    # control: just under the limit is accepted
    assert (await upload(client, headers, samples.PDF + b"%" * (2048 - len(samples.PDF)))).status_code == 201


async def test_uploading_needs_a_verified_email_and_a_chosen_organisation(client: AsyncClient) -> None:
    _reg, unverified = await signed_up(client, roles=("buyer",), verified=False)
    resp = await upload(client, unverified, samples.PDF)
    assert resp.status_code == 403 and resp.json()["error"] == "email_unverified"
    reg, headers = await signed_up(client, roles=("buyer",))
    other, _h = await signed_up(client, roles=("buyer",))
    assert (await upload(client, headers, samples.PDF, org_id=str(other["org"]["id"]))).status_code == 404
    ok = await upload(client, headers, samples.PDF, org_id=str(reg["org"]["id"]))
    assert ok.status_code == 201, ok.text
    assert (await client.post("/api/v1/documents", headers=headers)).status_code == 422  # no file


async def test_identical_bytes_are_stored_once_and_deleting_one_keeps_the_other(
    client: AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    _a, first_org = await signed_up(client, roles=("buyer",))
    _b, second_org = await signed_up(client, roles=("supplier",))
    one = await uploaded(client, first_org, samples.STL_ASCII, "a.stl")
    two = await uploaded(client, second_org, samples.STL_ASCII, "b.stl")
    assert one["id"] != two["id"] and one["sha256"] == two["sha256"]
    assert [p.name for p in blobs(settings.data_dir)] == [one["sha256"]]

    storage = storage_for(settings)
    assert await service.delete_documents(db, document_ids=[uuid.UUID(one["id"])], reason="test") == 1
    assert await run_blob_jobs(db, storage) == []  # the other document still uses the blob
    assert [p.name for p in blobs(settings.data_dir)] == [one["sha256"]]
    assert (await client.get(f"/api/v1/documents/{one['id']}", headers=first_org)).status_code == 404
    assert (await client.get(f"/api/v1/documents/{two['id']}", headers=second_org)).content == samples.STL_ASCII

    assert await service.delete_documents(db, document_ids=[uuid.UUID(two["id"])], reason="test") == 1
    assert [p.name for p in blobs(settings.data_dir)] == [one["sha256"]]  # kept until the job runs after commit
    assert await run_blob_jobs(db, storage) == [one["sha256"]]
    assert blobs(settings.data_dir) == []
    # idempotent: nothing left to delete
    assert await service.delete_documents(db, document_ids=[uuid.UUID(two["id"])], reason="x") == 0
    audit = await db.execute(
        sa.text("SELECT count(*) FROM audit_log WHERE action = 'document.deleted' AND target_id IN (:a, :b)"),
        {"a": one["id"], "b": two["id"]},
    )
    assert audit.scalar_one() == 2


async def test_a_signed_link_works_without_sign_in_is_logged_and_expires(
    client: AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    reg, headers = await signed_up(client, roles=("buyer",))
    doc = await uploaded(client, headers, samples.PNG, "photo.png")
    link = await client.get(f"/api/v1/documents/{doc['id']}/link", headers=headers)
    assert link.status_code == 200, link.text
    body = link.json()
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(0) < expires - datetime.now(UTC) <= timedelta(seconds=settings.document_link_seconds)
    assert body["url"].startswith(f"/api/v1/documents/{doc['id']}/download?token=")

    got = await client.get(body["url"])  # no credentials
    assert got.status_code == 200 and got.content == samples.PNG
    assert await _downloads(db, doc["id"]) == [(reg["user"]["id"], reg["org"]["id"], "link")]

    expired = service.link_token(
        settings,
        document_id=uuid.UUID(doc["id"]),
        user_id=uuid.UUID(reg["user"]["id"]),
        org_id=None,
        expires_at=datetime.now(UTC) - timedelta(seconds=1),
    )
    resp = await client.get(f"/api/v1/documents/{doc['id']}/download", params={"token": expired})
    assert resp.status_code == 404 and "expired" in resp.json()["detail"]
    other = await uploaded(client, headers, samples.JPEG, "other.jpg")
    token = body["url"].split("token=", 1)[1]
    assert (await client.get(f"/api/v1/documents/{other['id']}/download", params={"token": token})).status_code == 404
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert (await client.get(f"/api/v1/documents/{doc['id']}/download", params={"token": tampered})).status_code == 404
    assert len(await _downloads(db, doc["id"])) == 1


async def test_a_body_far_over_the_limit_is_refused_before_it_is_read(
    client: AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    settings.document_max_bytes = 2048
    _reg, headers = await signed_up(client, roles=("buyer",))
    resp = await upload(client, headers, samples.PDF + b"%" * 64 * 1024)
    assert resp.status_code == 413 and resp.json()["error"] == "payload_too_large"
    assert staged(settings.data_dir) == []


async def test_a_malformed_or_non_multipart_body_is_422(client: AsyncClient) -> None:
    _reg, headers = await signed_up(client, roles=("buyer",))
    as_json = await client.post("/api/v1/documents", headers=headers, json={"file": "x"})
    assert as_json.status_code == 422 and as_json.json()["error"] == "validation_error"
    broken = await client.post(
        "/api/v1/documents",
        headers={**headers, "Content-Type": "multipart/form-data; boundary=xyz"},
        content=b"--xyz\r\nnot a header line\r\n\r\n",
    )
    assert broken.status_code == 422
    other_field = await client.post(
        "/api/v1/documents", headers=headers, files={"attachment": ("a.pdf", samples.PDF, "application/pdf")}
    )
    assert other_field.status_code == 422 and "file" in other_field.json()["detail"]
    bad_org = await upload(client, headers, samples.PDF, org_id="not-a-uuid")
    assert bad_org.status_code == 422
