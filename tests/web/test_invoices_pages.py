"""Invoice lists and pages for buyers and factories, the payee bank details, the print view, the payment
state on the booking pages and the buyer's dead ends (request → booking link, review notice, cancel terms)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.settings import Settings
from marketplace.web import invoices as invoice_pages
from tests.factories import invoiced_market, signed_up, web_sign_in


async def _invoice_rows(db: AsyncSession, booking_ids: list[str]) -> dict[str, Any]:
    rows = await db.execute(
        sa.text("SELECT booking_id, id, number, total FROM invoices WHERE booking_id = ANY(:ids)"),
        {"ids": [uuid.UUID(b) for b in booking_ids]},
    )
    return {str(r.booking_id): r for r in rows}


async def test_buyer_and_factory_see_exactly_their_invoices(client: AsyncClient, db: AsyncSession) -> None:
    m = await invoiced_market(client, db, bookings=2)
    other_buyer, other_headers = await signed_up(client, roles=("buyer",))
    foreign = await client.post(
        "/api/v1/bookings",
        headers={**other_headers, "Idempotency-Key": "foreign-1"},
        json={
            "asset_id": m["asset"]["id"],
            "start": m["bookings"][1]["end"],
            "end": _plus_hours(m["bookings"][1]["end"], 2),
        },
    )
    assert foreign.status_code == 201, foreign.text
    invoices = await _invoice_rows(db, [b["id"] for b in m["bookings"]] + [foreign.json()["id"]])
    mine = [invoices[b["id"]] for b in m["bookings"]]
    theirs = invoices[foreign.json()["id"]]

    await web_sign_in(client, m["buyer_reg"]["email"])
    page = await client.get(f"/buyer/{m['buyer_org']}/invoices")
    assert page.status_code == 200
    for inv in mine:
        row = re.search(rf'<tr id="invoice-{inv.id}".*?</tr>', page.text, re.S)
        assert row, inv.number
        assert inv.number in row.group(0) and "¥" in row.group(0) and "awaiting payment" in row.group(0)
        assert f"/buyer/{m['buyer_org']}/invoices/{inv.id}/print" in row.group(0)
    assert theirs.number not in page.text
    assert page.text.count('<tr id="invoice-') == 2

    await web_sign_in(client, m["supplier_reg"]["email"], locale="zh-CN")
    factory = await client.get(f"/factory/{m['supplier_org']}/invoices")
    assert factory.status_code == 200
    assert all(inv.number in factory.text for inv in [*mine, theirs])
    assert "待付款" in factory.text or "等待付款" in factory.text  # the payment state in Chinese
    assert other_buyer["org"]["name"] in factory.text  # the factory sees who it invoiced


def _plus_hours(iso: str, hours: int) -> str:
    from datetime import datetime, timedelta

    return (datetime.fromisoformat(iso) + timedelta(hours=hours)).isoformat()


async def test_the_invoice_list_pages_with_a_cursor(
    client: AsyncClient, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = await invoiced_market(client, db, bookings=3)
    monkeypatch.setattr(invoice_pages, "PAGE_SIZE", 2)
    await web_sign_in(client, m["buyer_reg"]["email"])
    first = await client.get(f"/buyer/{m['buyer_org']}/invoices")
    link = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert first.text.count('<tr id="invoice-') == 2 and link
    second = await client.get(link.group(1).replace("&amp;", "&"))
    assert second.status_code == 200 and second.text.count('<tr id="invoice-') == 1
    assert 'rel="next"' not in second.text
    seen = set(re.findall(r'<tr id="invoice-([0-9a-f-]+)"', first.text + second.text))
    assert seen == {str(r.id) for r in (await _invoice_rows(db, [b["id"] for b in m["bookings"]])).values()}
    stale = await client.get(f"/buyer/{m['buyer_org']}/invoices", params={"cursor": "not-a-cursor"})
    assert stale.status_code == 400 and "Traceback" not in stale.text


async def test_outsiders_get_404_on_every_invoice_page_and_export(client: AsyncClient, db: AsyncSession) -> None:
    m = await invoiced_market(client, db)
    inv = (await _invoice_rows(db, [m["bookings"][0]["id"]]))[m["bookings"][0]["id"]]
    stranger, _ = await signed_up(client, roles=("buyer", "supplier"))
    buyer, supplier = m["buyer_org"], m["supplier_org"]
    urls = [
        f"/buyer/{buyer}/invoices",
        f"/buyer/{buyer}/invoices/{inv.id}",
        f"/buyer/{buyer}/invoices/{inv.id}/print",
        f"/buyer/{buyer}/invoices.csv",
        f"/buyer/{buyer}/bookings.csv",
        f"/factory/{supplier}/invoices",
        f"/factory/{supplier}/invoices/{inv.id}",
        f"/factory/{supplier}/invoices/{inv.id}/print",
        f"/factory/{supplier}/invoices.csv",
        f"/factory/{supplier}/bookings.csv",
    ]
    await web_sign_in(client, stranger["email"])
    for url in urls:
        resp = await client.get(url)
        assert resp.status_code == 404, url
        assert inv.number not in resp.text, url
    # The stranger's own organisation does not open someone else's invoice either.
    own = stranger["org"]["id"]
    for url in (f"/buyer/{own}/invoices/{inv.id}", f"/factory/{own}/invoices/{inv.id}/print"):
        assert (await client.get(url)).status_code == 404, url
    # The buyer cannot open the factory's side, even of its own invoice.
    await web_sign_in(client, m["buyer_reg"]["email"])
    assert (await client.get(f"/factory/{supplier}/invoices/{inv.id}")).status_code == 404
    assert (await client.get(f"/buyer/{buyer}/invoices/{uuid.uuid4()}")).status_code == 404


async def test_the_invoice_shows_the_payee_bank_details_and_prints_without_navigation(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await invoiced_market(client, db)
    inv = (await _invoice_rows(db, [m["bookings"][0]["id"]]))[m["bookings"][0]["id"]]
    settings = Settings()
    await web_sign_in(client, m["buyer_reg"]["email"], locale="zh-CN")
    page = await client.get(f"/buyer/{m['buyer_org']}/invoices/{inv.id}")
    assert page.status_code == 200
    payee = re.search(r'<section class="invoice-payee".*?</section>', page.text, re.S)
    assert payee
    # A Chinese page names the account as registered in Chinese (户名, bank); number and SWIFT are the same.
    for value in (settings.payee_name_zh, settings.payee_bank_zh, settings.payee_account, settings.payee_swift):
        assert value in payee.group(0)
    assert settings.payee_name not in payee.group(0)
    reference = re.search(r'id="payee-reference"><strong>([^<]+)</strong>', page.text)
    assert reference and reference.group(1) == inv.number
    assert "银行转账" in page.text and "¥" in page.text  # in the page's language, money in major units
    assert f"/buyer/{m['buyer_org']}/bookings/{m['bookings'][0]['id']}" in page.text

    printed = await client.get(f"/buyer/{m['buyer_org']}/invoices/{inv.id}/print")
    assert printed.status_code == 200
    assert "<nav" not in printed.text and "/static/invoice-print.css" in printed.text
    assert inv.number in printed.text and settings.payee_account in printed.text
    css = await client.get("/static/invoice-print.css")
    assert css.status_code == 200 and "@media print" in css.text

    await web_sign_in(client, m["supplier_reg"]["email"])
    factory = await client.get(f"/factory/{m['supplier_org']}/invoices/{inv.id}")
    assert factory.status_code == 200 and inv.number in factory.text
    assert settings.payee_name in factory.text and settings.payee_bank in factory.text  # English page
    assert f"/factory/{m['supplier_org']}/bookings#booking-{m['bookings'][0]['id']}" in factory.text


async def test_the_booking_page_keeps_the_invoice_link_and_payment_state_after_terms_are_accepted(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await invoiced_market(client, db)
    booking = m["bookings"][0]
    inv = (await _invoice_rows(db, [booking["id"]]))[booking["id"]]
    token = await web_sign_in(client, m["buyer_reg"]["email"])
    url = f"/buyer/{m['buyer_org']}/bookings/{booking['id']}"
    held = await client.get(url)
    assert f"/buyer/{m['buyer_org']}/invoices/{inv.id}" in held.text
    paid = await client.post(f"{url}/pay", data={"csrf_token": token})
    assert paid.status_code == 303
    page = await client.get(url)
    assert 'data-status="requested"' in page.text
    assert f'href="/buyer/{m["buyer_org"]}/invoices/{inv.id}" id="invoice-link"' in page.text
    state = re.search(r'<section class="card" id="payment-state" data-payment="([a-z_]+)"', page.text)
    assert state and state.group(1) == "awaiting_payment"
    assert "awaiting payment" in page.text and "Still to pay" in page.text

    await web_sign_in(client, m["supplier_reg"]["email"])
    bookings = await client.get(f"/factory/{m['supplier_org']}/bookings")
    row = re.search(rf'<tr id="booking-{booking["id"]}".*?</tr>', bookings.text, re.S)
    assert row and f"/factory/{m['supplier_org']}/invoices/{inv.id}" in row.group(0)
    assert 'data-payment="awaiting_payment"' in row.group(0)


async def test_an_unpaid_booking_says_cancelling_is_free_not_a_zero_refund(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await invoiced_market(client, db)
    await web_sign_in(client, m["buyer_reg"]["email"])
    page = await client.get(f"/buyer/{m['buyer_org']}/bookings/{m['bookings'][0]['id']}")
    terms = re.search(r'<p id="cancel-terms">(.*?)</p>', page.text, re.S)
    assert terms and "Nothing has been paid yet; cancelling is free." in terms.group(1)
    assert "refunds ¥0.00" not in page.text


async def test_the_request_page_links_to_the_booking_made_for_it(client: AsyncClient, db: AsyncSession) -> None:
    from datetime import UTC, datetime, timedelta

    m = await invoiced_market(client, db, bookings=0)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    req = await client.post(
        "/api/v1/requests",
        headers=m["buyer"],
        json={
            "kind": "machine",
            "process_code": "machining.milling.cnc_5axis",
            "material": "al_6061",
            "quantity": 1,
            "duration_minutes": 120,
            "earliest_start": (now + timedelta(days=1)).isoformat(),
            "deadline": (now + timedelta(days=20)).isoformat(),
            "currency": "CNY",
        },
    )
    assert req.status_code == 201, req.text
    start = now + timedelta(days=6)
    booked = await client.post(
        "/api/v1/bookings",
        headers={**m["buyer"], "Idempotency-Key": "req-link"},
        json={
            "asset_id": m["asset"]["id"],
            "start": start.isoformat(),
            "end": (start + timedelta(hours=2)).isoformat(),
            "request_id": req.json()["id"],
        },
    )
    assert booked.status_code == 201, booked.text
    await web_sign_in(client, m["buyer_reg"]["email"])
    page = await client.get(f"/buyer/{m['buyer_org']}/requests/{req.json()['id']}")
    assert page.status_code == 200
    assert f'href="/buyer/{m["buyer_org"]}/bookings/{booked.json()["id"]}" class="request-booking-link"' in page.text


async def test_a_review_is_confirmed_and_the_empty_actions_card_disappears(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await invoiced_market(client, db, hours_ahead=3)  # check-in opens 24 h before the start
    booking = m["bookings"][0]
    walk = [
        ("payment/accept-terms", "buyer"),
        ("accept", "supplier"),
        ("start", "supplier"),
        ("complete", "supplier"),
        ("confirm", "buyer"),
    ]
    for action, who in walk:
        body = {"reason": "finished ahead of the slot (test)"} if action == "complete" else None
        r = await client.post(f"/api/v1/bookings/{booking['id']}/{action}", headers=m[who], json=body)
        assert r.status_code == 200, (action, r.text)
    token = await web_sign_in(client, m["buyer_reg"]["email"])
    url = f"/buyer/{m['buyer_org']}/bookings/{booking['id']}"
    before = await client.get(url)
    assert 'data-status="settled"' in before.text and 'class="card actions-card"' in before.text
    sent = await client.post(f"{url}/review", data={"csrf_token": token, "rating": "4", "comment": "Precise work"})
    assert sent.status_code == 303 and sent.headers["location"].endswith("?notice=reviewed")
    after = await client.get(sent.headers["location"])
    notice = re.search(r'<p class="notice" role="status" id="booking-notice">([^<]+)</p>', after.text)
    assert notice and "review" in notice.group(1)
    assert 'class="card actions-card"' not in after.text  # nothing left to do: no empty "Actions" card
    assert 'id="my-review"' in after.text and "Precise work" in after.text
    forged = await client.get(f"{url}?notice=%3Cscript%3E")
    assert 'id="booking-notice"' not in forged.text  # only known notices are shown
