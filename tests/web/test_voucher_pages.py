"""The buyer's innovation-voucher pages (issue #18): the vouchers page (held vouchers with their terms, open
programmes with an application form and the refusal named beside it), the voucher select of the booking form
(and a refused voucher shown there with the entries kept), and the split on the booking page and the invoice
pages of both sides (advance: the voucher's share and the smaller amount due; after use: the reimbursement)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import web_sign_in
from tests.vouchers.conftest import (
    SHANGHAI,
    book,
    buyer_in,
    china_today,
    lab_booking_body,
    listing,
    programme,
    programme_org,
    voucher_market,
)


async def _invoice_id(db: AsyncSession, booking_id: str) -> str:
    found = await db.scalar(sa.text("SELECT id FROM invoices WHERE booking_id = :b"), {"b": uuid.UUID(booking_id)})
    assert found is not None, "the booking has no invoice"
    return str(found)


def _text(html: str) -> str:
    """The page's visible text, one space between words (tags dropped)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def test_a_buyer_in_the_region_applies_and_an_auto_grant_programme_grants_at_once(
    client: AsyncClient, db: AsyncSession
) -> None:
    p_reg, p_headers = await programme_org(client, db)
    prog = await programme(client, p_headers, p_reg["org"]["id"], auto_grant=True, rate_bp=3000)
    reg, _headers = await buyer_in(client)
    org = reg["org"]["id"]
    token = await web_sign_in(client, reg["email"])

    home = await client.get(f"/buyer/{org}")
    assert f'href="/buyer/{org}/vouchers"' in home.text  # linked from the buyer's page
    page = await client.get(f"/buyer/{org}/vouchers")
    assert page.status_code == 200
    offer = re.search(rf'<article class="programme" id="programme-{prog["id"]}".*?</article>', page.text, re.S)
    assert offer, "the open programme is offered"
    assert "30%" in offer.group(0) and "CN¥1,000.00" in offer.group(0) and "CN¥3,000.00" in offer.group(0)
    assert "Granted at once to eligible buyers" in offer.group(0)
    assert "Paid on the invoice" in _text(offer.group(0))

    applied = await client.post(
        f"/buyer/{org}/vouchers/{prog['id']}/apply",
        data={"csrf_token": token, "note": "Tensile tests for a new bracket"},
    )
    assert applied.status_code == 303
    assert applied.headers["location"] == f"/buyer/{org}/vouchers?notice=granted"
    page = await client.get(applied.headers["location"])
    assert "Your voucher has been granted" in page.text
    row = re.search(r'<tr id="voucher-[^"]+" data-status="granted">.*?</tr>', page.text, re.S)
    assert row, "the granted voucher is listed"
    cells = _text(row.group(0))
    assert "Suzhou innovation vouchers" in cells and "voucher granted" in cells
    assert "CN¥0.00" in cells  # used this year
    assert "CN¥3,000.00" in cells  # left this year: the yearly cap
    assert str(china_today() + timedelta(days=365)) in cells  # valid until
    assert f'id="programme-{prog["id"]}"' not in page.text  # no second application offered


async def test_a_buyer_outside_the_region_is_told_why_beside_the_programme_with_its_note_kept(
    client: AsyncClient, db: AsyncSession
) -> None:
    p_reg, p_headers = await programme_org(client, db)
    prog = await programme(client, p_headers, p_reg["org"]["id"], auto_grant=True)
    reg, _headers = await buyer_in(client, "350200")  # Xiamen, outside Suzhou (3205)
    org = reg["org"]["id"]
    token = await web_sign_in(client, reg["email"])

    refused = await client.post(
        f"/buyer/{org}/vouchers/{prog['id']}/apply", data={"csrf_token": token, "note": "Our bracket project"}
    )
    assert refused.status_code == 422
    block = re.search(
        rf'<article class="programme invalid" id="programme-{prog["id"]}".*?</article>', refused.text, re.S
    )
    assert block, "the refused programme is marked"
    assert "registered in region 350200, outside the programme&#39;s region 3205" in block.group(0)
    assert "Our bracket project</textarea>" in block.group(0)  # the note is kept
    assert 'role="alert"' in refused.text  # and summed up at the top
    count = await db.scalar(sa.text("SELECT count(*) FROM vouchers WHERE buyer_org_id = :o"), {"o": uuid.UUID(org)})
    assert count == 0


async def test_an_application_awaits_the_programme_and_cannot_be_sent_twice(
    client: AsyncClient, db: AsyncSession
) -> None:
    p_reg, p_headers = await programme_org(client, db)
    prog = await programme(client, p_headers, p_reg["org"]["id"])  # the programme decides itself
    reg, _headers = await buyer_in(client)
    org = reg["org"]["id"]
    token = await web_sign_in(client, reg["email"])
    applied = await client.post(f"/buyer/{org}/vouchers/{prog['id']}/apply", data={"csrf_token": token})
    assert applied.headers["location"] == f"/buyer/{org}/vouchers?notice=applied"
    page = await client.get(applied.headers["location"])
    assert "Your application has been sent" in page.text
    row = re.search(r'<tr id="voucher-[^"]+" data-status="applied">.*?</tr>', page.text, re.S)
    assert row and "applied, awaiting decision" in row.group(0)
    assert '<td class="num voucher-remaining">–</td>' in row.group(0)  # nothing to spend before the grant

    again = await client.post(f"/buyer/{org}/vouchers/{prog['id']}/apply", data={"csrf_token": token})
    assert again.status_code == 422
    assert "already applied for this programme" in again.text
    assert 'role="alert"' in again.text


async def test_a_buyer_without_a_uscc_is_asked_to_add_it(client: AsyncClient, db: AsyncSession) -> None:
    p_reg, p_headers = await programme_org(client, db)
    prog = await programme(client, p_headers, p_reg["org"]["id"])
    reg, _headers = await buyer_in(client, None)
    token = await web_sign_in(client, reg["email"])
    refused = await client.post(f"/buyer/{reg['org']['id']}/vouchers/{prog['id']}/apply", data={"csrf_token": token})
    assert refused.status_code == 422
    assert "has no Unified Social Credit Code" in refused.text


async def test_another_organisations_vouchers_page_and_form_are_not_found(
    client: AsyncClient, db: AsyncSession
) -> None:
    p_reg, p_headers = await programme_org(client, db)
    prog = await programme(client, p_headers, p_reg["org"]["id"], auto_grant=True)
    victim, _h = await buyer_in(client)
    stranger, _h2 = await buyer_in(client)
    token = await web_sign_in(client, stranger["email"])
    assert (await client.get(f"/buyer/{victim['org']['id']}/vouchers")).status_code == 404
    forged = await client.post(f"/buyer/{victim['org']['id']}/vouchers/{prog['id']}/apply", data={"csrf_token": token})
    assert forged.status_code == 404
    count = await db.scalar(
        sa.text("SELECT count(*) FROM vouchers WHERE buyer_org_id = :o"), {"o": uuid.UUID(victim["org"]["id"])}
    )
    assert count == 0


async def test_the_booking_form_offers_the_voucher_and_every_page_shows_the_split(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await voucher_market(client, db)
    org, lab, voucher_id = m["buyer_org"], m["lab"], m["voucher"]["id"]
    token = await web_sign_in(client, m["buyer_reg"]["email"])

    form = await client.get(f"/book/{lab['id']}")
    select = re.search(r'<select id="f-voucher_id" name="voucher_id".*?</select>', form.text, re.S)
    assert select, "the voucher select is offered"
    assert '<option value="">No voucher</option>' in select.group(0)  # none by default
    assert f'<option value="{voucher_id}"' in select.group(0) and "Suzhou innovation vouchers" in select.group(0)

    day = str(china_today() + timedelta(days=3))
    booked = await client.post(
        f"/book/{lab['id']}",
        data={"csrf_token": token, "buyer_org_id": org, "drop_off_date": day, "samples": "2", "voucher_id": voucher_id},
    )
    assert booked.status_code == 303, booked.text
    page = await client.get(booked.headers["location"])
    booking_id = booked.headers["location"].rsplit("/", 1)[-1]
    section = re.search(r'<section class="card" id="payment-state".*?</section>', page.text, re.S)
    assert section is not None, page.text
    payment = _text(section.group(0))
    # 2 samples x 150 CNY = 300 CNY; the voucher pays 50 %.
    assert "Total: CN¥300.00" in payment
    assert "Innovation voucher (Suzhou innovation vouchers): −CN¥150.00" in payment
    assert "Your share: CN¥150.00" in payment
    assert "CN¥150.00 by bank transfer" in payment

    invoice_id = await _invoice_id(db, booking_id)
    for url in (f"/buyer/{org}/invoices/{invoice_id}", f"/buyer/{org}/invoices/{invoice_id}/print"):
        doc = await client.get(url)
        assert doc.status_code == 200
        share = re.search(r'<tr id="invoice-voucher-share">.*?</tr>', doc.text, re.S)
        assert share and "−CN¥150.00" in share.group(0) and "Suzhou innovation vouchers" in share.group(0)
        assert m["programme_reg"]["org"]["name"] in share.group(0)  # who pays it
        assert re.search(r'id="invoice-due">CN¥150.00<', doc.text), "the buyer owes only its share"
        assert re.search(r'id="invoice-total">CN¥300.00<', doc.text), "the invoice is for the full price"

    vouchers = _text((await client.get(f"/buyer/{org}/vouchers")).text)
    assert "CN¥150.00 CN¥2,850.00" in vouchers  # used this year, left this year

    supplier_org = lab["org_id"]
    supplier_email = await db.scalar(
        sa.text("SELECT u.email FROM users u JOIN memberships m ON m.user_id = u.id WHERE m.org_id = :o"),
        {"o": uuid.UUID(supplier_org)},
    )
    await web_sign_in(client, supplier_email, locale="zh-CN")
    factory = await client.get(f"/factory/{supplier_org}/invoices/{invoice_id}")
    assert factory.status_code == 200 and 'lang="zh-Hans"' in factory.text
    share = re.search(r'<tr id="invoice-voucher-share">.*?</tr>', factory.text, re.S)
    assert share and "−¥150.00" in share.group(0)
    assert re.search(r'id="invoice-due">¥150.00<', factory.text)


async def test_a_refused_voucher_stands_beside_the_select_with_the_entries_kept(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await voucher_market(client, db)
    far, _headers, _site = await listing(client, db, m["admin"], site=SHANGHAI)  # outside Suzhou, no partner
    token = await web_sign_in(client, m["buyer_reg"]["email"])
    assert 'name="voucher_id"' not in (await client.get(f"/book/{far['id']}")).text  # not offered there

    day = str(china_today() + timedelta(days=4))
    refused = await client.post(
        f"/book/{far['id']}",
        data={
            "csrf_token": token,
            "buyer_org_id": m["buyer_org"],
            "drop_off_date": day,
            "samples": "3",
            "voucher_id": m["voucher"]["id"],  # a stale page or a forged form
        },
    )
    assert refused.status_code == 422
    field = re.search(r'<div class="field invalid"><label for="f-voucher_id">.*?</div>', refused.text, re.S)
    assert field, "the message stands beside the voucher select"
    assert "region 310115" in field.group(0) and "outside the regions where this voucher can be spent" in field.group(0)
    assert f'value="{day}"' in refused.text and re.search(r'id="f-samples"[^>]*value="3"', refused.text)
    count = await db.scalar(sa.text("SELECT count(*) FROM bookings WHERE asset_id = :a"), {"a": uuid.UUID(far["id"])})
    assert count == 0


async def test_an_after_use_voucher_reads_as_reimbursed_after_use(client: AsyncClient, db: AsyncSession) -> None:
    m = await voucher_market(client, db, payment_mode="after_use", name="Kunshan 先用后补")
    booking: dict[str, Any] = await book(
        client, m["buyer"], lab_booking_body(m["lab"]["id"], samples=2, voucher_id=m["voucher"]["id"])
    )
    await web_sign_in(client, m["buyer_reg"]["email"])
    page = _text((await client.get(f"/buyer/{m['buyer_org']}/bookings/{booking['id']}")).text)
    assert "Reimbursed after use by Kunshan 先用后补: CN¥150.00" in page
    assert "Your share" not in page
    invoice_id = await _invoice_id(db, booking["id"])
    doc = await client.get(f"/buyer/{m['buyer_org']}/invoices/{invoice_id}")
    assert "Reimbursed after use by Kunshan 先用后补: CN¥150.00" in _text(doc.text)
    assert 'id="invoice-voucher-share"' not in doc.text
    assert re.search(r'id="invoice-due">CN¥300.00<', doc.text), "the buyer pays the invoice in full"
