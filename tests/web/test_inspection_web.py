"""Make + verify on the web (issue #17), through the HTTP client in both languages: the buyer orders an
independent inspection on the booking page, the factory records the shipment, the lab records the receipt and
submits its measurements; refused input comes back (422) beside its field in the page's language with nothing
saved, and strangers get 404/403."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import create_admin, signed_up, web_sign_in
from tests.inspection.test_plans_helpers import act, inspection_market

pytestmark = pytest.mark.asyncio


async def _email(client: AsyncClient, headers: dict[str, str]) -> str:
    me = await client.get("/api/v1/me", headers=headers)
    assert me.status_code == 200, me.text
    return str(me.json()["user"]["email"])


async def _count(db: AsyncSession, table: str) -> int:
    return int((await db.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one())


def _order_form(m: dict[str, Any], token: str, **fields: str) -> dict[str, str]:
    data = {
        "csrf_token": token,
        "rows": "3",
        "lab_asset_id": m["lab"]["id"],
        "c0_name": "Bore diameter",
        "c0_nominal": "12.000",
        "c0_lower_tol": "-0.020",
        "c0_upper_tol": "0.020",
        "c0_unit": "mm",
        "lot_size": "20",
        "inspection_level": "II",
        "aql": "15",
        "transit_days": "0",
    }
    data.update(fields)
    return data


async def _market(client: AsyncClient, db: AsyncSession) -> dict[str, Any]:
    m = await inspection_market(client, db, status="completed")
    m["buyer_email"] = await _email(client, m["buyer"])
    m["supplier_email"] = await _email(client, m["supplier"])
    m["lab_email"] = await _email(client, m["lab_headers"])
    m["supplier_org"] = m["asset"]["org_id"]
    m["lab_org"] = m["lab"]["org_id"]
    m["booking_page"] = f"/buyer/{m['buyer_org']}/bookings/{m['production']['id']}"
    m["order_url"] = f"{m['booking_page']}/inspection/new"
    return m


_MESSAGES = {
    "en": ("This field is required.", "The lower tolerance is zero or negative", "Order an independent inspection"),
    "zh-CN": ("此项为必填项。", "下偏差应为零或负数", "委托独立检验"),
}


async def _refused_in(client: AsyncClient, db: AsyncSession, m: dict[str, Any], locale: str) -> str:
    """The buyer's order form refuses bad input (422) beside each field in ``locale``; nothing is saved."""
    required, lower, heading = _MESSAGES[locale]
    token = await web_sign_in(client, m["buyer_email"], locale=locale)
    booking = await client.get(m["booking_page"])
    assert booking.status_code == 200
    assert 'id="order-inspection-link"' in booking.text
    form = await client.get(m["order_url"])
    assert form.status_code == 200
    assert heading in form.text
    assert m["lab"]["id"] in form.text  # the published lab service is offered
    before = (await _count(db, "inspections"), await _count(db, "bookings"))
    bad = await client.post(m["order_url"], data=_order_form(m, token, lot_size="", c0_lower_tol="0.5"))
    assert bad.status_code == 422
    assert re.search(r'id="f-lot_size-error">' + re.escape(required), bad.text)
    assert re.search(r'id="f-c0_lower_tol-error">' + re.escape(lower), bad.text)
    assert 'value="Bore diameter"' in bad.text  # what was typed comes back
    assert (await _count(db, "inspections"), await _count(db, "bookings")) == before
    return token


async def test_the_order_form_refuses_bad_input_in_chinese_and_adds_rows_without_saving(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await _market(client, db)
    token = await _refused_in(client, db, m, "zh-CN")
    more = await client.post(m["order_url"], data={**_order_form(m, token), "add_row": "1"})
    assert more.status_code == 200
    assert 'name="c3_name"' in more.text and 'name="c4_name"' not in more.text
    unknown = await client.post(m["order_url"], data=_order_form(m, token, lab_asset_id=str(uuid.uuid4())))
    assert unknown.status_code == 422
    assert 'id="f-lab_asset_id-error">请选择已发布的检测服务。' in unknown.text
    assert await _count(db, "inspections") == 0


async def test_strangers_cannot_order_or_see_the_inspection_pages(client: AsyncClient, db: AsyncSession) -> None:
    m = await _market(client, db)
    await _refused_in(client, db, m, "en")
    stranger, _headers = await signed_up(client, roles=("buyer", "supplier"))
    token = await web_sign_in(client, stranger["email"])
    assert (await client.get(m["order_url"])).status_code == 404
    assert (await client.post(m["order_url"], data=_order_form(m, token))).status_code == 404
    factory_page = f"/factory/{m['supplier_org']}/bookings/{m['production']['id']}/inspection"
    assert (await client.get(factory_page)).status_code == 404
    own_org = stranger["org"]["id"]
    assert (await client.get(f"/factory/{own_org}/bookings/{m['production']['id']}/inspection")).status_code == 404
    admin_page = f"/admin/bookings/{m['production']['id']}"
    assert (await client.get(f"{admin_page}/inspection")).status_code == 403
    assert (await client.post(f"{admin_page}/rework", data={"csrf_token": token})).status_code == 403
    assert await _count(db, "inspections") == 0

    # The buyer disputes the lot; the admin finds the evidence page from the disputes queue and orders rework.
    disputed = await client.post(
        f"/api/v1/bookings/{m['production']['id']}/dispute", headers=m["buyer"], json={"reason": "bores oversize"}
    )
    assert disputed.status_code == 200, disputed.text
    admin = await create_admin(db)
    await db.commit()
    token = await web_sign_in(client, admin.email, locale="zh-CN")
    assert f"{admin_page}/inspection" in (await client.get("/admin/disputes")).text
    evidence = await client.get(f"{admin_page}/inspection")
    assert evidence.status_code == 200 and "安排返工" in evidence.text
    reworked = await client.post(f"{admin_page}/rework", data={"csrf_token": token, "note": "Remake the bores."})
    assert reworked.status_code == 303
    after = await client.get(reworked.headers["location"])
    assert "工厂将返工该批次" in after.text
    status = await db.execute(sa.text("SELECT status FROM bookings WHERE id = :id"), {"id": m["production"]["id"]})
    assert status.scalar_one() == "in_progress"
    again = await client.post(f"{admin_page}/rework", data={"csrf_token": token})
    assert again.status_code == 409 and "该预订已不在争议中" in again.text


async def test_the_three_parties_carry_an_inspection_to_its_verdict(client: AsyncClient, db: AsyncSession) -> None:
    """The buyer in English, the factory and the lab in Chinese."""
    m = await _market(client, db)
    locale = "en"
    token = await web_sign_in(client, m["buyer_email"], locale=locale)
    ordered = await client.post(m["order_url"], data=_order_form(m, token))
    assert ordered.status_code == 303, ordered.text
    page = (await client.get(ordered.headers["location"])).text
    assert "Ac 2 · Re 3" in page  # lot 20, level II, AQL 15: code letter C, 5 parts
    assert ("code letter C" if locale == "en" else "样本量字码 C") in page
    inspection_id, lab_booking = (await db.execute(sa.text("SELECT id, lab_booking_id FROM inspections"))).one()
    # Ordering accepted the lab's invoice terms: the lab booking waits for the lab's acceptance.
    assert (await act(client, m["lab_headers"], str(lab_booking), "accept")).status_code == 200

    # The factory records the shipment; an empty tracking reference is refused beside its field.
    locale = "zh-CN"
    token = await web_sign_in(client, m["supplier_email"], locale=locale)
    factory_page = f"/factory/{m['supplier_org']}/bookings/{m['production']['id']}/inspection"
    listing = await client.get(f"/factory/{m['supplier_org']}/bookings")
    assert factory_page in listing.text
    assert 'id="shipment-form"' in (await client.get(factory_page)).text
    ship = f"/factory/{m['supplier_org']}/inspections/{inspection_id}/shipment"
    refused = await client.post(ship, data={"csrf_token": token, "tracking_reference": ""}, follow_redirects=True)
    assert 'id="ship-tracking_reference-error">此项为必填项。' in refused.text
    shipped = await client.post(ship, data={"csrf_token": token, "tracking_reference": "SF1234567", "carrier": "SF"})
    assert shipped.status_code == 303
    after = (await client.get(factory_page)).text
    assert "SF1234567" in after and "样本已寄出" in after  # the status by its label, never its code
    # The factory is no lab: the lab's receipt is not for it.
    receipt = f"/factory/{m['supplier_org']}/inspections/{inspection_id}/receipt"
    assert (await client.post(receipt, data={"csrf_token": token})).status_code == 404

    # The lab records receipt and submits the measurements (the grid; then pasted CSV).
    token = await web_sign_in(client, m["lab_email"], locale=locale)
    lab_page = f"/factory/{m['lab_org']}/bookings/{lab_booking}/inspection"
    assert (await client.post(f"/factory/{m['lab_org']}/inspections/{inspection_id}/receipt",
                              data={"csrf_token": token})).status_code == 303  # fmt: skip
    form = (await client.get(lab_page)).text
    assert 'name="m4_0"' in form and 'name="m5_0"' not in form  # 5 parts × 1 characteristic
    assert m["lab"]["test_standard"] in form  # prefilled from the listing
    report = f"/factory/{m['lab_org']}/bookings/{lab_booking}/inspection/report"
    pdf = {"signed_document": ("report.pdf", b"%PDF-1.4\n1 0 obj <<>> endobj\n%%EOF\n", "application/pdf")}
    fields = {"csrf_token": token, "tested_on": "", "instrument": "CMM Zeiss", "operator": "Li Lei",
              "test_standard": "GB/T 3177-2009", "csv": "A1,12.001\nA2,12.002"}  # fmt: skip
    bad = await client.post(report, data=fields, files=pdf)
    assert bad.status_code == 422
    assert 'id="f-tested_on-error"' in bad.text and 'id="f-csv-error"' in bad.text
    assert "请正好填写 5 件零件的测量值" in bad.text
    assert await _count(db, "inspection_reports") == 0
    from datetime import UTC, datetime

    fields.update(tested_on=datetime.now(UTC).date().isoformat(), csv="")
    grid = {f"m{u}_0": "12.00" + str(u) for u in range(5)}
    done = await client.post(report, data={**fields, **grid}, files=pdf)
    assert done.status_code == 303, done.text
    page = (await client.get(lab_page)).text
    assert 'data-verdict="accepted"' in page

    # The buyer sees the verdict; the production booking settled on the accepted lot.
    locale = "en"
    await web_sign_in(client, m["buyer_email"], locale=locale)
    page = (await client.get(m["booking_page"])).text
    assert 'data-verdict="accepted"' in page
    assert ("lot accepted" if locale == "en" else "批次合格") in page
    status = (await db.execute(sa.text("SELECT status FROM bookings WHERE id = :id"),
                               {"id": m["production"]["id"]})).scalar_one()  # fmt: skip
    assert status == "settled"


async def test_the_factory_supplies_an_ordered_document_and_the_buyer_extends_an_overdue_inspection(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await _market(client, db)
    booking_id = m["production"]["id"]
    await db.execute(
        sa.text(
            "INSERT INTO booking_quality_documents (id, booking_id, kind, price) "
            "VALUES (:id, :b, 'fai', 25000), (:id2, :b, 'coc', 3000)"
        ),
        {"id": uuid.uuid4(), "id2": uuid.uuid4(), "b": booking_id},
    )
    await db.commit()

    # The factory uploads the ordered first-article report: a text file is refused beside the field (in Chinese).
    token = await web_sign_in(client, m["supplier_email"], locale="zh-CN")
    page = f"/factory/{m['supplier_org']}/bookings/{booking_id}/inspection"
    assert 'data-kind="fai"' in (await client.get(page)).text
    upload = f"{page}/quality/fai"
    wrong = await client.post(upload, data={"csrf_token": token}, files={"file": ("fai.txt", b"hello", "text/plain")})
    assert wrong.status_code == 422
    assert re.search(r'id="file-fai-error">[^<]*PDF', wrong.text)
    pdf = b"%PDF-1.4\n1 0 obj <<>> endobj\n%%EOF\n"
    done = await client.post(upload, data={"csrf_token": token}, files={"file": ("fai.pdf", pdf, "application/pdf")})
    assert done.status_code == 303, done.text
    # The platform issues the certificate of conformance with the factory's statement (required).
    coc = f"{page}/coc"
    empty = await client.post(coc, data={"csrf_token": token, "statement": " "}, follow_redirects=True)
    assert 'id="coc-statement-error">此项为必填项。' in empty.text
    issued = await client.post(coc, data={"csrf_token": token, "statement": "The parts conform to drawing A-100."})
    assert issued.status_code == 303, issued.text
    rows: dict[str, Any] = dict(
        (await db.execute(sa.text("SELECT kind, document_id FROM booking_quality_documents WHERE booking_id = :b"),
                          {"b": booking_id})).all()
    )  # fmt: skip
    document_id = rows["fai"]
    assert document_id is not None and rows["coc"] is not None

    # The buyer downloads it, orders an inspection, and extends it once it is overdue.
    token = await web_sign_in(client, m["buyer_email"])
    booking = (await client.get(m["booking_page"])).text
    assert f"/files/{document_id}" in booking and "First-article inspection report" in booking
    assert (await client.get(f"/files/{document_id}")).status_code == 200
    assert (await client.post(m["order_url"], data=_order_form(m, token))).status_code == 303
    await db.execute(sa.text("UPDATE inspections SET due_date = current_date - 2"))
    await db.commit()
    inspection_id = (await db.execute(sa.text("SELECT id FROM inspections"))).scalar_one()
    extend = f"{m['booking_page']}/inspection/{inspection_id}/extend"
    booking = (await client.get(m["booking_page"])).text
    assert 'id="extend-due_date"' in booking and 'data-status="overdue"' in booking
    from datetime import date, timedelta

    earlier = (date.today() - timedelta(days=5)).isoformat()
    refused = await client.post(extend, data={"csrf_token": token, "due_date": earlier}, follow_redirects=True)
    assert 'id="extend-due_date-error">Choose a day after the current due date.' in refused.text
    later = (date.today() + timedelta(days=7)).isoformat()
    assert (await client.post(extend, data={"csrf_token": token, "due_date": later})).status_code == 303
    due = (await db.execute(sa.text("SELECT due_date FROM inspections"))).scalar_one()
    assert due.isoformat() == later
