"""Issue #15 item 6: drawings under the platform NDA. A supplier that may see the request is refused the
drawings (and their bytes) until its organisation accepted the NDA; acceptance records who, when and which
version; strangers get 404 throughout."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.messages import nda
from tests.documents.samples import STEP
from tests.messages.helpers import step_file, world

ROOT = Path(__file__).resolve().parents[2]


async def test_drawings_are_refused_before_the_nda_and_served_after_it(client: AsyncClient, db: AsyncSession) -> None:
    w = await world(client, db, nda_required=True)
    rid = w["request"]["id"]
    doc = await step_file(client, w["buyer"])
    added = await client.post(
        f"/api/v1/requests/{rid}/drawings", json={"document_ids": [doc["id"]]}, headers=w["buyer"]
    )
    assert added.status_code == 201, added.text
    assert added.json()["nda_required"] is True and [d["id"] for d in added.json()["items"]] == [doc["id"]]
    assert (await client.get(f"/api/v1/requests/{rid}/drawings", headers=w["buyer"])).status_code == 200

    # Before: refused with a clear reason to the supplier, 404 for the bytes; 404 for a stranger.
    refused = await client.get(f"/api/v1/requests/{rid}/drawings", headers=w["supplier"])
    assert refused.status_code == 403 and refused.json()["detail"] == "Accept the NDA to see the drawings."
    assert (await client.get(f"/api/v1/documents/{doc['id']}", headers=w["supplier"])).status_code == 404
    assert (await client.get(f"/api/v1/requests/{rid}/drawings", headers=w["third"])).status_code == 404
    assert (
        await client.post(f"/api/v1/requests/{rid}/nda", json={"version": "2026-12"}, headers=w["third"])
    ).status_code == 404

    text = (await client.get("/api/v1/nda")).json()
    assert text["version"] == "2026-12" and "Non-disclosure" in text["text_en"] and "保密协议" in text["text_zh"]
    stale = await client.post(f"/api/v1/requests/{rid}/nda", json={"version": "2025-01"}, headers=w["supplier"])
    assert stale.status_code == 422
    accepted = await client.post(
        f"/api/v1/requests/{rid}/nda", json={"version": text["version"]}, headers=w["supplier"]
    )
    assert accepted.status_code == 200, accepted.text
    row = accepted.json()
    assert row["org_id"] == w["supplier_org"] and row["user_id"] == w["supplier_user"] and row["version"] == "2026-12"
    again = await client.post(f"/api/v1/requests/{rid}/nda", json={"version": "2026-12"}, headers=w["supplier"])
    assert again.json() == row  # idempotent: the first acceptance stays
    stored = (
        await db.execute(
            sa.text(
                "SELECT org_id::text, user_id::text, version, accepted_at FROM nda_acceptances WHERE request_id = :r"
            ),
            {"r": rid},
        )
    ).all()
    assert len(stored) == 1 and stored[0][:3] == (w["supplier_org"], w["supplier_user"], "2026-12")
    assert stored[0][3] is not None

    # After: the metadata and the bytes.
    listed = await client.get(f"/api/v1/requests/{rid}/drawings", headers=w["supplier"])
    assert listed.status_code == 200 and listed.json()["items"][0]["name"] == "bracket.step"
    file = await client.get(f"/api/v1/documents/{doc['id']}", headers=w["supplier"])
    assert file.status_code == 200 and file.content == STEP
    assert (await client.get(f"/api/v1/documents/{doc['id']}", headers=w["third"])).status_code == 404


async def test_without_an_nda_a_supplier_that_may_see_the_request_sees_the_drawings(
    client: AsyncClient, db: AsyncSession
) -> None:
    w = await world(client, db)
    rid = w["request"]["id"]
    doc = await step_file(client, w["buyer"])
    body = {"document_ids": [doc["id"]]}
    # Only the buyer adds drawings, only its own uploads, only while the request is open.
    assert (await client.post(f"/api/v1/requests/{rid}/drawings", json=body, headers=w["supplier"])).status_code == 404
    theirs = await step_file(client, w["supplier"])
    foreign = await client.post(
        f"/api/v1/requests/{rid}/drawings", json={"document_ids": [theirs["id"]]}, headers=w["buyer"]
    )
    assert foreign.status_code == 422
    assert (
        await client.post(f"/api/v1/requests/{rid}/drawings", json={"document_ids": []}, headers=w["buyer"])
    ).status_code == 422
    assert (await client.post(f"/api/v1/requests/{rid}/drawings", json=body, headers=w["buyer"])).status_code == 201
    listed = await client.get(f"/api/v1/requests/{rid}/drawings", headers=w["supplier"])
    assert listed.status_code == 200 and [d["id"] for d in listed.json()["items"]] == [doc["id"]]
    assert (await client.get(f"/api/v1/documents/{doc['id']}", headers=w["supplier"])).status_code == 200
    assert (await client.get(f"/api/v1/requests/{rid}/drawings", headers=w["third"])).status_code == 404

    assert (await client.post(f"/api/v1/requests/{rid}/cancel", headers=w["buyer"])).status_code == 200
    closed = await client.post(f"/api/v1/requests/{rid}/drawings", json=body, headers=w["buyer"])
    assert closed.status_code == 409


def test_the_nda_text_served_is_the_one_in_docs() -> None:
    doc = (ROOT / "docs" / "nda.md").read_text(encoding="utf-8")
    assert nda.NDA_VERSION == "2026-12"
    for text in (nda.NDA_TEXT_EN, nda.NDA_TEXT_ZH):
        assert text.strip() in doc
