"""The lab's report through the API (issue #17): the computed verdict, the accreditation check, the payout gate
on the production booking (settled, disputed, or left to the buyer), rework, who may post and read, and the
ledger balanced at every step. The same chains through a real worker: test_chain_worker.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.admin.queue_repository import AdminQueueRepository
from tests.factories import signed_up
from tests.inspection.test_plans_helpers import inspection_market
from tests.inspection.test_reports_helpers import (
    SAMPLE,
    booking,
    certify,
    ledger,
    ok,
    outbox,
    planned_with,
    post_report,
    received,
    report_body,
    signed_document,
    to_received,
)


async def test_an_accepted_lot_settles_the_completed_production_booking_and_completes_the_lab_booking(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await received(client, db, require_accreditation=True)
    lab_org = m["inspection"]["lab_org_id"]
    await certify(db, lab_org)
    production = m["production"]["id"]
    lab_booking = m["inspection"]["lab_booking_id"]
    before = await ledger(db, production)
    assert before["held"] == m["production"]["amount"] and before["payable"] == 0

    doc = await signed_document(client, m["lab_headers"])
    r = await post_report(client, m, report_body(doc, failing=2))  # exactly Ac = 2 nonconforming units
    report = await ok(r, 201)
    assert report["verdict"] == "accepted" and report["nonconforming"] == 2
    assert (report["sample_size"], report["accept_number"], report["reject_number"]) == (SAMPLE, 2, 3)
    assert report["accreditation"] == "covered" and report["certificate_id"] and report["gates_payment"] is True
    assert [u["conforming"] for u in report["units"]] == [False, False, True, True, True]
    assert report["units"][0]["failed"] == ["Bore diameter"] and report["units"][0]["serial"] == "S-1"
    assert report["units"][4]["measurements"][0] == {
        "characteristic": "Bore diameter",
        "value": "12.020",  # the upper bound itself conforms
        "unit": "mm",
        "conforming": True,
    }
    assert report["pdf_document_id"] is None and report["production_booking_id"] == production

    settled = await booking(client, m["buyer"], production)
    assert settled["status"] == "settled"
    assert settled["timeline"][-1]["actor_kind"] == "system" and "accepted" in settled["timeline"][-1]["reason"]
    after = await ledger(db, production)
    assert after["held"] == 0 and after["payable"] > 0

    lab = await booking(client, m["lab_headers"], lab_booking)
    assert lab["status"] == "completed"
    assert [(e["action"], e["actor_kind"]) for e in lab["timeline"][-2:]] in (
        [("start", "supplier"), ("complete", "supplier")],
        [("start", "system"), ("complete", "supplier")],
    )
    assert (await ledger(db, lab_booking))["held"] == lab["amount"]  # the lab settles after its own window
    assert [str(lab_booking)] in await outbox(db, "bookings.settle_one")
    assert [report["id"]] in await outbox(db, "inspection.render_report")

    inspection = await ok(await client.get(f"/api/v1/inspections/{m['inspection']['id']}", headers=m["buyer"]))
    assert inspection["status"] == "reported" and inspection["verdict"] == "accepted"

    # The buyer, the factory, the lab and an admin read the report both ways and the signed document.
    for who in (m["buyer"], m["supplier"], m["lab_headers"], m["admin"]):
        for url in (f"/api/v1/bookings/{lab_booking}/report", f"/api/v1/inspections/{m['inspection']['id']}/report"):
            got = await ok(await client.get(url, headers=who))
            assert got["id"] == report["id"]
        assert (await client.get(f"/api/v1/documents/{doc}", headers=who)).status_code == 200
    notes = (await client.get("/api/v1/notifications", headers=m["supplier"])).json()["items"]
    assert any(n["kind"] == "inspection.accepted" for n in notes)

    # A second report is refused.
    again = await post_report(client, m, report_body(doc))
    assert again.status_code == 409 and again.json()["error"] == "report_exists", again.text


async def test_a_rejected_lot_opens_a_dispute_the_admin_resolves_with_a_refund_and_the_lab_is_still_paid(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await received(client, db)
    production = m["production"]["id"]
    doc = await signed_document(client, m["lab_headers"])
    report = await ok(await post_report(client, m, report_body(doc, failing=3)), 201)  # Re = 3
    assert report["verdict"] == "rejected" and report["nonconforming"] == 3
    assert report["accreditation"] == "no_certificate" and report["gates_payment"] is True  # not required

    disputed = await booking(client, m["buyer"], production)
    assert disputed["status"] == "disputed"
    assert disputed["timeline"][-1]["actor_kind"] == "system"
    # A fixed reason (translated on the pages); the details are the report, which the dispute links to.
    assert disputed["dispute_reason"] == "lot rejected by the inspection report"
    assert (await ledger(db, production))["held"] == m["production"]["amount"]  # money still held
    # On the admins' dispute queue (the web admin's page reads this), and both sides are told.
    queue = await AdminQueueRepository(db).open_disputes(after=None, limit=500)
    assert uuid.UUID(production) in [d.id for d in queue]
    notes = (await client.get("/api/v1/notifications", headers=m["buyer"])).json()["items"]
    assert any(n["kind"] == "inspection.rejected" for n in notes)
    notes = (await client.get("/api/v1/notifications", headers=m["supplier"])).json()["items"]
    # The factory hears it from the inspection's notice, not from "the buyer disputed" (nobody typed a dispute).
    kinds = {n["kind"] for n in notes}
    assert "inspection.rejected" in kinds and "booking.disputed" not in kinds

    refund = m["production"]["amount"] // 2
    resolved = await ok(
        await client.post(
            f"/api/v1/admin/bookings/{production}/resolve",
            headers=m["admin"],
            json={"refund_amount": refund, "note": "half the lot is scrap"},
        )
    )
    assert resolved["status"] == "resolved"
    money = await ledger(db, production)
    assert money["held"] == 0 and money["payable"] > 0
    lab = await booking(client, m["lab_headers"], m["inspection"]["lab_booking_id"])
    assert lab["status"] == "completed"  # settles after its own dispute window, whatever the verdict


async def test_the_report_validates_its_body(client: AsyncClient, db: AsyncSession) -> None:
    m = await received(client, db)
    doc = await signed_document(client, m["lab_headers"])
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    unknown = report_body(doc)
    unknown["units"][1]["measurements"][0]["characteristic"] = "Colour"
    wrong_unit = report_body(doc)
    wrong_unit["units"][0]["measurements"][1]["unit"] = "HV"
    infinite = report_body(doc)
    infinite["units"][0]["measurements"][0]["value"] = "Infinity"
    _, other = await signed_up(client, roles=("supplier",))
    foreign_doc = await signed_document(client, other)
    cases: list[tuple[dict[str, Any], str]] = [
        (report_body(doc, units=SAMPLE - 1), "units"),
        (unknown, "Colour"),
        (wrong_unit, "HV cannot be converted"),
        (infinite, "value"),
        (report_body(doc, tested_on=tomorrow), "tested_on"),
        (report_body(doc, tested_on="2020-01-01"), "tested_on"),
        (report_body(foreign_doc), "document"),
        (report_body(doc, operator="a\u0000b"), "operator"),
        (report_body(doc, test_standard=""), "test_standard"),
    ]
    for body, says in cases:
        r = await post_report(client, m, body)
        assert r.status_code == 422 and says in r.text, (says, r.text)
    # Nothing was recorded: the inspection is still waiting for its report.
    insp = await ok(await client.get(f"/api/v1/inspections/{m['inspection']['id']}", headers=m["buyer"]))
    assert insp["status"] == "received"


async def test_only_the_lab_posts_the_report_and_only_once_the_samples_are_received(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await inspection_market(client, db)
    m["inspection"] = await planned_with(client, m, require_accreditation=False)
    doc = await signed_document(client, m["lab_headers"])
    body = report_body(doc)
    early = await post_report(client, m, body)
    assert early.status_code == 409 and early.json()["error"] == "inspection_not_received", early.text
    assert "planned" in early.json()["detail"]
    m["inspection"] = await to_received(client, m, m["inspection"])
    # An API key of the lab needs bookings:write.
    lab_org = m["inspection"]["lab_org_id"]
    for scopes, status in ((("bookings:read",), 403), (("documents:read",), 403)):
        made = await client.post(
            f"/api/v1/orgs/{lab_org}/api-keys", json={"name": "LIMS", "scopes": list(scopes)}, headers=m["lab_headers"]
        )
        key = {"X-API-Key": made.json()["secret"]}
        refused = await post_report(client, m, body, key)
        assert refused.status_code == status and "bookings:" in refused.text, refused.text
    _, stranger = await signed_up(client, roles=("supplier",))
    assert (await post_report(client, m, body, stranger)).status_code == 404
    # The buyer (of the lab booking too) and an admin are refused; the factory is no party to the lab booking.
    for who in (m["buyer"], m["admin"]):
        r = await post_report(client, m, body, who)
        assert r.status_code == 403 and "Only the lab" in r.text, r.text
    assert (await post_report(client, m, body, m["supplier"])).status_code == 404
    # Strangers cannot read it either (the lab has not reported: 404 for the parties too).
    lab_booking = m["inspection"]["lab_booking_id"]
    assert (await client.get(f"/api/v1/bookings/{lab_booking}/report", headers=m["buyer"])).status_code == 404
    await ok(await post_report(client, m, body), 201)
    for url in (f"/api/v1/bookings/{lab_booking}/report", f"/api/v1/inspections/{m['inspection']['id']}/report"):
        assert (await client.get(url, headers=stranger)).status_code == 404
    assert (await client.get(f"/api/v1/inspections/{uuid.uuid4()}/report", headers=m["admin"])).status_code == 404
    # The production booking carries no report of its own (it is not a lab booking).
    r = await post_report(client, {"inspection": {"lab_booking_id": m["production"]["id"]}}, body, m["supplier"])
    assert r.status_code in (403, 404)
