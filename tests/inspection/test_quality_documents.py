"""Quality documents as priced add-ons (issue #17): a machine listing offers them, a booking orders them (price
snapshotted, added to the amount, one invoice line each), the factory supplies them, and the booking cannot be
completed while one is missing."""

from __future__ import annotations

import uuid
from typing import Any

from httpx import AsyncClient
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from marketplace.documents.service import delete_documents
from tests.bookings.helpers import market, slot
from tests.documents import samples
from tests.documents.helpers import uploaded
from tests.factories import lab_payload, signed_up, supplier

OFFER = {"coc": 3000, "fai": 25000, "material_cert": 8000}


async def _booked(client: AsyncClient, m: dict[str, Any], kinds: list[str], hours: float = 3) -> Any:
    start, end = slot(hours)
    return await client.post(
        "/api/v1/bookings",
        headers={**m["buyer"], "Idempotency-Key": f"q-{uuid.uuid4()}"},
        json={
            "asset_id": m["asset"]["id"],
            "start": start.isoformat(),
            "end": end.isoformat(),
            "quality_documents": kinds,
        },
    )


async def _confirmed(client: AsyncClient, m: dict[str, Any], kinds: list[str], hours: float = 3) -> dict[str, Any]:
    """A booking ordering ``kinds``, paid and accepted (confirmed), starting in about ``hours`` hours."""
    made = await _booked(client, m, kinds, hours)
    assert made.status_code == 201, made.text
    booking: dict[str, Any] = made.json()
    url = f"/api/v1/bookings/{booking['id']}"
    assert (await client.post(f"{url}/payment/accept-terms", headers=m["buyer"])).status_code == 200
    assert (await client.post(f"{url}/accept", headers=m["supplier"])).status_code == 200
    return booking


async def _complete(client: AsyncClient, m: dict[str, Any], booking_id: str) -> Any:
    return await client.post(
        f"/api/v1/bookings/{booking_id}/complete", headers=m["supplier"], json={"reason": "lot finished early"}
    )


async def _key(client: AsyncClient, owner: dict[str, str], org_id: str, *scopes: str) -> dict[str, str]:
    made = await client.post(
        f"/api/v1/orgs/{org_id}/api-keys", json={"name": "MES", "scopes": list(scopes)}, headers=owner
    )
    assert made.status_code == 201, made.text
    return {"X-API-Key": made.json()["secret"]}


async def test_a_machine_listing_offers_priced_documents_and_a_lab_service_cannot(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await market(client, db, quality_documents=OFFER)
    assert m["asset"]["quality_documents"] == OFFER
    public = await client.get(f"/api/v1/assets/{m['asset']['id']}")
    assert public.status_code == 200 and public.json()["quality_documents"] == OFFER

    changed = await client.patch(
        f"/api/v1/assets/{m['asset']['id']}", headers=m["supplier"], json={"quality_documents": {"coc": 0}}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["quality_documents"] == {"coc": 0}
    for bad in ({"coc": -1}, {"cmm": 100}, {"coc": "free"}):
        refused = await client.patch(
            f"/api/v1/assets/{m['asset']['id']}", headers=m["supplier"], json={"quality_documents": bad}
        )
        assert refused.status_code == 422, (bad, refused.text)

    _reg, lab_owner, site = await supplier(client, db)
    refused = await client.post(
        "/api/v1/assets", headers=lab_owner, json=lab_payload(site["id"], quality_documents={"coc": 100})
    )
    assert refused.status_code == 422, refused.text
    lab = await client.post("/api/v1/assets", headers=lab_owner, json=lab_payload(site["id"]))
    assert lab.status_code == 201 and lab.json()["quality_documents"] == {}
    edit = await client.patch(
        f"/api/v1/assets/{lab.json()['id']}", headers=lab_owner, json={"quality_documents": {"coc": 100}}
    )
    assert edit.status_code == 422 and "quality_documents" in edit.json()["detail"]
    listed = await client.get(f"/api/v1/assets/{lab.json()['id']}", headers=lab_owner)
    assert listed.json()["quality_documents"] == {}


async def test_ordered_documents_add_to_the_amount_and_each_gets_an_invoice_line(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await market(client, db, quality_documents=OFFER)
    made = await _booked(client, m, ["coc", "material_cert"])
    assert made.status_code == 201, made.text
    booking = made.json()
    machine_time = 30000 * 2 + 20000  # 2 h at 300.00 + setup fee 200.00
    assert booking["amount"] == machine_time + 3000 + 8000

    listed = await client.get(f"/api/v1/bookings/{booking['id']}/quality-documents", headers=m["buyer"])
    assert listed.status_code == 200, listed.text
    assert listed.json()["currency"] == "CNY"
    assert [(d["kind"], d["price"], d["provided"], d["document_id"]) for d in listed.json()["items"]] == [
        ("coc", 3000, False, None),
        ("material_cert", 8000, False, None),
    ]

    payment = (await client.get(f"/api/v1/bookings/{booking['id']}/payment", headers=m["buyer"])).json()
    invoice = (await client.get(f"/api/v1/invoices/{payment['invoice_id']}", headers=m["buyer"])).json()
    lines = invoice["line_items"]
    assert [line["kind"] for line in lines] == ["machine_time", "setup_fee", "quality_document", "quality_document"]
    assert [(line.get("document"), line["amount"]) for line in lines[2:]] == [("coc", 3000), ("material_cert", 8000)]
    assert lines[0]["amount"] == 30000 * 2
    assert sum(line["amount"] for line in lines) == invoice["total"] == booking["amount"]

    # The price is a snapshot: a later change of the listing's offer leaves the booking's price alone.
    await client.patch(
        f"/api/v1/assets/{m['asset']['id']}", headers=m["supplier"], json={"quality_documents": {"coc": 99999}}
    )
    again = await client.get(f"/api/v1/bookings/{booking['id']}/quality-documents", headers=m["supplier"])
    assert again.json()["items"][0]["price"] == 3000


async def test_a_booking_without_documents_is_priced_as_before_and_costs_no_extra_statement(
    client: AsyncClient, db: AsyncSession, engine: AsyncEngine
) -> None:
    m = await market(client, db, quality_documents=OFFER)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        made = await _booked(client, m, [])
        with_documents = await _booked(client, m, ["coc"], hours=10)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
    assert made.status_code == 201 and made.json()["amount"] == 30000 * 2 + 20000
    assert with_documents.status_code == 201 and with_documents.json()["amount"] == 30000 * 2 + 20000 + 3000
    # Control: the booking with a document writes its row; the one without touches no such table at all.
    touching = [s for s in statements if "booking_quality_documents" in s]
    assert len(touching) == 1 and touching[0].lstrip().upper().startswith("INSERT")
    listed = await client.get(f"/api/v1/bookings/{made.json()['id']}/quality-documents", headers=m["buyer"])
    assert listed.json()["items"] == []


async def test_ordering_a_document_the_listing_does_not_offer_is_refused(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db, quality_documents={"coc": 3000})
    refused = await _booked(client, m, ["fai"])
    assert refused.status_code == 422, refused.text
    assert refused.json()["fields"] == [{"field": "quality_documents", "message": "this listing does not offer 'fai'"}]
    assert (await _booked(client, m, ["coc", "coc"], hours=10)).status_code == 422  # each kind once
    assert (await _booked(client, m, ["cmm"], hours=20)).status_code == 422  # not a kind at all
    assert (await _booked(client, m, ["coc"], hours=30)).status_code == 201


async def test_the_factory_supplies_and_completion_waits_for_every_ordered_document(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await market(client, db, quality_documents=OFFER)
    booking = await _confirmed(client, m, ["coc", "fai"])
    url = f"/api/v1/bookings/{booking['id']}"
    assert (await client.post(f"{url}/start", headers=m["supplier"])).status_code == 200

    refused = await _complete(client, m, booking["id"])
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "quality_documents_missing"
    assert refused.json()["missing"] == ["coc", "fai"]

    fai = await uploaded(client, m["supplier"], samples.PDF, "fai.pdf")
    supplied = await client.put(f"{url}/quality-documents/fai", headers=m["supplier"], json={"document_id": fai["id"]})
    assert supplied.status_code == 200, supplied.text
    assert supplied.json()["provided"] is True and supplied.json()["document_id"] == fai["id"]
    # The buyer can download it (attached to the booking) and was told.
    got = await client.get(f"/api/v1/documents/{fai['id']}", headers=m["buyer"])
    assert got.status_code == 200 and got.content == samples.PDF
    notes = (await client.get("/api/v1/notifications", headers=m["buyer"])).json()["items"]
    assert "quality_document.supplied.fai" in {n["kind"] for n in notes}

    still = await _complete(client, m, booking["id"])
    assert still.status_code == 409 and still.json()["missing"] == ["coc"]
    coc = await uploaded(client, m["supplier"], samples.PDF, "coc.pdf")
    ok = await client.put(f"{url}/quality-documents/coc", headers=m["supplier"], json={"document_id": coc["id"]})
    assert ok.status_code == 200, ok.text
    done = await _complete(client, m, booking["id"])
    assert done.status_code == 200 and done.json()["status"] == "completed"


async def test_only_the_factory_supplies_and_only_its_own_live_documents(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db, quality_documents=OFFER)
    booking = await _confirmed(client, m, ["coc"])
    url = f"/api/v1/bookings/{booking['id']}/quality-documents"
    mine = await uploaded(client, m["supplier"], samples.PDF, "coc.pdf")
    body = {"document_id": mine["id"]}

    _reg, stranger = await signed_up(client, roles=("buyer", "supplier"))
    assert (await client.get(url, headers=stranger)).status_code == 404
    assert (await client.put(f"{url}/coc", headers=stranger, json=body)).status_code == 404
    assert (await client.put(f"{url}/coc", headers=m["buyer"], json=body)).status_code == 403
    assert (await client.put(f"{url}/coc", headers=m["admin"], json=body)).status_code == 403
    assert (await client.get(url, headers=m["admin"])).status_code == 200

    buyers = await uploaded(client, m["buyer"], samples.PDF, "fake.pdf")
    wrong = await client.put(f"{url}/coc", headers=m["supplier"], json={"document_id": buyers["id"]})
    assert wrong.status_code == 422 and wrong.json()["fields"][0]["field"] == "document_id"
    unknown = await client.put(f"{url}/coc", headers=m["supplier"], json={"document_id": str(uuid.uuid4())})
    assert unknown.status_code == 422
    await delete_documents(db, document_ids=[uuid.UUID(mine["id"])], reason="test: withdrawn")
    await db.commit()
    deleted = await client.put(f"{url}/coc", headers=m["supplier"], json=body)
    assert deleted.status_code == 422, deleted.text

    not_ordered = await client.put(f"{url}/fai", headers=m["supplier"], json=body)
    assert not_ordered.status_code == 404
    assert (await client.put(f"{url}/cmm", headers=m["supplier"], json=body)).status_code == 422


async def test_documents_are_supplied_only_once_the_booking_is_confirmed(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db, quality_documents=OFFER)
    made = await _booked(client, m, ["coc"])
    doc = await uploaded(client, m["supplier"], samples.PDF, "coc.pdf")
    early = await client.put(
        f"/api/v1/bookings/{made.json()['id']}/quality-documents/coc",
        headers=m["supplier"],
        json={"document_id": doc["id"]},
    )
    assert early.status_code == 409 and early.json()["current_status"] == "held"


async def test_api_keys_need_the_bookings_scopes(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db, quality_documents=OFFER)
    booking = await _confirmed(client, m, ["coc"])
    url = f"/api/v1/bookings/{booking['id']}/quality-documents"
    org_id = m["asset"]["org_id"]
    doc = await uploaded(client, m["supplier"], samples.PDF, "coc.pdf")
    reader = await _key(client, m["supplier"], org_id, "bookings:read")
    writer = await _key(client, m["supplier"], org_id, "bookings:read", "bookings:write")
    unrelated = await _key(client, m["supplier"], org_id, "documents:read")

    assert (await client.get(url, headers=unrelated)).status_code == 403
    assert (await client.get(url, headers=reader)).status_code == 200
    refused = await client.put(f"{url}/coc", headers=reader, json={"document_id": doc["id"]})
    assert refused.status_code == 403 and "bookings:write" in refused.text
    ok = await client.put(f"{url}/coc", headers=writer, json={"document_id": doc["id"]})
    assert ok.status_code == 200, ok.text
    buyer_key = await _key(client, m["buyer"], m["buyer_org"], "bookings:read")
    assert (await client.put(f"{url}/coc", headers=buyer_key, json={"document_id": doc["id"]})).status_code == 403


async def test_the_platform_issues_the_ordered_certificate_of_conformance(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await market(client, db, quality_documents=OFFER)
    booking = await _confirmed(client, m, ["coc"])
    url = f"/api/v1/bookings/{booking['id']}/quality-documents"
    assert (await client.post(f"{url}/coc/issue", headers=m["buyer"], json={})).status_code == 403

    issued = await client.post(
        f"{url}/coc/issue", headers=m["supplier"], json={"statement": "Lot 7 conforms to drawing A-12 rev. C."}
    )
    assert issued.status_code == 200, issued.text
    assert issued.json()["kind"] == "coc" and issued.json()["provided"] is True
    pdf = await client.get(f"/api/v1/documents/{issued.json()['document_id']}", headers=m["buyer"])
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

    no_coc = await _confirmed(client, m, [], hours=10)
    missing = await client.post(
        f"/api/v1/bookings/{no_coc['id']}/quality-documents/coc/issue", headers=m["supplier"], json={}
    )
    assert missing.status_code == 404
