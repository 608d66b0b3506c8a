"""Retention also deletes uploads nobody attached (or whose certificate is gone) after a grace period, and never
a licence or a certificate scan that is still attached."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from listings.models import Certificate
from marketplace.core.settings import Settings
from marketplace.documents import kinds, retention, service
from marketplace.documents.storage import storage_for
from marketplace.requests.models import BuyerRequest
from tests.documents import samples
from tests.documents.helpers import blobs, run_blob_jobs, uploaded
from tests.factories import signed_up


async def _certificate(db: AsyncSession, org_id: uuid.UUID) -> Certificate:
    cert = Certificate(
        org_id=org_id,
        standard="ISO 9001",
        number=f"Q-{uuid.uuid4().hex[:8]}",
        issuer="TÜV",
        valid_from=date(2026, 1, 1),
        valid_until=date(2029, 1, 1),
    )
    db.add(cert)
    await db.flush()
    return cert


async def _open_request(db: AsyncSession, org_id: uuid.UUID) -> uuid.UUID:
    now = datetime.now(UTC)
    req = BuyerRequest(
        buyer_org_id=org_id,
        kind="machine",
        process_code="machining.milling.cnc_5axis",
        duration_minutes=60,
        earliest_start=now,
        deadline=now + timedelta(days=7),
        currency="CNY",
        status="open",
    )
    db.add(req)
    await db.flush()
    return req.id


async def test_unattached_uploads_go_after_the_grace_period_and_attached_scans_stay(
    client: AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    reg, headers = await signed_up(client, roles=("buyer", "supplier"))
    org_id = uuid.UUID(reg["org"]["id"])
    names = ("loose", "scan", "removed-scan", "licence", "drawing")
    docs = {name: await uploaded(client, headers, samples.PDF + name.encode(), f"{name}.pdf") for name in names}

    async def attach(name: str, kind: str, target: uuid.UUID) -> None:
        doc_id = uuid.UUID(docs[name]["id"])
        await service.attach_for_org(db, org_id=org_id, document_id=doc_id, target_kind=kind, target_id=target)

    kept, removed = await _certificate(db, org_id), await _certificate(db, org_id)
    await attach("scan", kinds.CERTIFICATE, kept.id)
    await attach("removed-scan", kinds.CERTIFICATE, removed.id)
    await attach("licence", kinds.ORG_LICENCE, org_id)
    await attach("drawing", "request", await _open_request(db, org_id))
    await db.delete(removed)
    await db.flush()

    uploaded_at = datetime.now(UTC)
    grace = timedelta(hours=settings.document_unattached_hours)
    assert await retention.sweep(db, settings=settings, now=uploaded_at + grace - timedelta(hours=1)) == 0

    assert await retention.sweep(db, settings=settings, now=uploaded_at + grace + timedelta(minutes=5)) == 2
    live = await db.execute(
        sa.text("SELECT name FROM documents WHERE org_id = :org AND deleted_at IS NULL ORDER BY name"), {"org": org_id}
    )
    assert list(live.scalars()) == ["drawing.pdf", "licence.pdf", "scan.pdf"]
    reasons = await db.execute(
        sa.text("SELECT DISTINCT reason FROM audit_log WHERE action = 'document.deleted' AND target_id = ANY(:ids)"),
        {"ids": [docs["loose"]["id"], docs["removed-scan"]["id"]]},
    )
    assert list(reasons.scalars()) == [retention.UNATTACHED]

    gone = await run_blob_jobs(db, storage_for(settings))
    assert sorted(gone) == sorted([docs["loose"]["sha256"], docs["removed-scan"]["sha256"]])
    assert len(blobs(settings.data_dir)) == 3
    assert await retention.sweep(db, settings=settings, now=uploaded_at + 10 * grace) == 0  # idempotent


async def test_an_upload_whose_bytes_a_kept_document_shares_leaves_the_blob(
    client: AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    reg, headers = await signed_up(client, roles=("supplier",))
    org_id = uuid.UUID(reg["org"]["id"])
    loose = await uploaded(client, headers, samples.PNG, "loose.png")
    scan = await uploaded(client, headers, samples.PNG, "scan.png")
    cert = await _certificate(db, org_id)
    await service.attach_for_org(
        db, org_id=org_id, document_id=uuid.UUID(scan["id"]), target_kind=kinds.CERTIFICATE, target_id=cert.id
    )

    later = datetime.now(UTC) + timedelta(hours=settings.document_unattached_hours + 1)
    assert await retention.sweep(db, settings=settings, now=later) == 1
    assert await run_blob_jobs(db, storage_for(settings)) == []
    assert (await client.get(f"/api/v1/documents/{loose['id']}", headers=headers)).status_code == 404
    got = await client.get(f"/api/v1/documents/{scan['id']}", headers=headers)
    assert got.status_code == 200 and got.content == samples.PNG
