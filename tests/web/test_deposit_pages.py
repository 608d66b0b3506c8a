"""Deposits and milestones on the web pages (issue #18 item 4), over HTTP as a browser posts the forms: the
listing form's deposit field (errors beside it, emptied to remove the deposit), a deposit booking's schedule on
the buyer's and the factory's pages with each instalment's invoice, the instalment invoice saying which
instalment it is, milestone rows on the quote form, and the factory's "Milestone reached — invoice it" button
(a second press refused with a message; other organisations cannot press it). The browser journey is
test_deposit_journey.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.bookings.helpers import ALWAYS_OPEN
from tests.factories import admin_headers, create_asset, machine_payload, publish, signed_up, supplier
from tests.web.test_negotiation_pages import Browser, market, quote_form


@pytest.fixture
async def browsers(app: Any) -> AsyncIterator[list[Browser]]:
    made = [Browser(app), Browser(app), Browser(app), Browser(app, "zh-CN")]
    yield made
    for b in made:
        await b.http.aclose()


def _listing_form(site_id: str, **fields: str) -> dict[str, str]:
    return {
        "kind": "machine",
        "site_id": site_id,
        "title": "DMG MORI DMU 50 5-axis",
        "process_codes": "machining.milling.cnc_5axis",
        "materials": "al_6061",
        "env_x": "800",
        "env_y": "500",
        "env_z": "500",
        "tolerance_mm": "0.01",
        "max_part_mass_kg": "200",
        "hourly_rate": "300",
        "setup_fee": "200",
        "min_booking_minutes": "60",
        "slot_minutes": "30",
        "currency": "CNY",
        **fields,
    }


async def test_the_listing_form_sets_checks_and_removes_a_deposit(
    client: AsyncClient, db: AsyncSession, browsers: list[Browser]
) -> None:
    reg, headers, site = await supplier(client, db)
    asset = await create_asset(client, headers, machine_payload(site["id"]), ALWAYS_OPEN)
    org = reg["org"]["id"]
    factory = await browsers[0].sign_in(reg["email"])
    new = await factory.get(f"/factory/{org}/assets/new?kind=machine")
    assert new.status_code == 200 and 'id="f-deposit_percent"' in new.text

    url = f"/factory/{org}/assets/{asset['id']}/edit"
    for wrong in ("95", "0", "thirty"):
        bad = await factory.post(url, _listing_form(site["id"], deposit_percent=wrong))
        assert bad.status_code == 422, wrong
        assert 'id="f-deposit_percent-error"' in bad.text, wrong
    assert (await client.get(f"/api/v1/assets/{asset['id']}", headers=headers)).json()["deposit_percent"] is None

    ok = await factory.post(url, _listing_form(site["id"], deposit_percent="30"))
    assert ok.status_code == 303, ok.text
    assert (await client.get(f"/api/v1/assets/{asset['id']}", headers=headers)).json()["deposit_percent"] == 30
    shown = await factory.get(url)
    assert re.search(r'name="deposit_percent"[^>]*value="30"', shown.text), "the stored deposit is shown"

    emptied = await factory.post(url, _listing_form(site["id"], deposit_percent=""))
    assert emptied.status_code == 303, emptied.text
    assert (await client.get(f"/api/v1/assets/{asset['id']}", headers=headers)).json()["deposit_percent"] is None


async def _deposit_listing(client: AsyncClient, db: AsyncSession) -> dict[str, Any]:
    """A published machine at 300 CNY an hour plus a 200 CNY setup fee, asking a 30 % deposit."""
    reg, headers, site = await supplier(client, db)
    payload = machine_payload(site["id"], title="Deposit mill", deposit_percent=30)
    asset = await create_asset(client, headers, payload, ALWAYS_OPEN)
    await publish(client, headers, await admin_headers(client, db), asset["id"])
    return {"reg": reg, "headers": headers, "asset": asset, "org": reg["org"]["id"]}


def _row(html: str, row_id: str) -> str:
    match = re.search(rf'<tr class="instalment" id="{row_id}".*?</tr>', html, re.S)
    assert match, f"no schedule row {row_id}"
    return match.group(0)


async def test_a_deposit_booking_shows_its_schedule_and_the_deposit_invoice_on_both_sides(
    client: AsyncClient, db: AsyncSession, browsers: list[Browser]
) -> None:
    f = await _deposit_listing(client, db)
    buyer_reg, _buyer = await signed_up(client, roles=("buyer",), country="CN")
    buyer_org = buyer_reg["org"]["id"]
    factory, buyer, _third, buyer_zh = browsers
    await factory.sign_in(f["reg"]["email"])
    await buyer.sign_in(buyer_reg["email"])

    # The buyer books two hours: 2 x 300 + 200 = 800 CNY; deposit 240, balance 560; nothing invoiced yet.
    start = (datetime.now() + timedelta(days=3)).replace(hour=10, minute=0, second=0, microsecond=0)
    form = {"buyer_org_id": buyer_org, "start": start.strftime("%Y-%m-%dT%H:%M"), "hours": "2"}
    booked = await buyer.post(f"/book/{f['asset']['id']}", form)
    assert booked.status_code == 303, booked.text
    page_url = booked.headers["location"]
    bid = page_url.rsplit("/", 1)[-1]
    page = await buyer.get(page_url)
    assert page.status_code == 200
    deposit, balance = _row(page.text, "schedule-1"), _row(page.text, "schedule-2")
    assert "Deposit" in deposit and "30%" in deposit and "¥240.00" in deposit and "not invoiced yet" in deposit
    assert "Balance payment" in balance and "70%" in balance and "¥560.00" in balance
    assert "when the factory confirms the booking" in deposit and "when the work is completed" in balance
    assert f'action="/buyer/{buyer_org}/bookings/{bid}/pay"' in page.text  # accept the payment terms
    assert 'id="invoice-link-line"' not in page.text

    assert (await buyer.post(f"/buyer/{buyer_org}/bookings/{bid}/pay")).status_code == 303
    incoming = await factory.get(f"/factory/{f['org']}/bookings")
    assert f'id="schedule-{bid}"' in incoming.text
    assert "/milestones/" not in incoming.text  # a deposit has no milestone to report
    accepted = await factory.post(f"/factory/{f['org']}/bookings/{bid}/accept")
    assert accepted.status_code == 303 and "error=" not in accepted.headers["location"]

    # The deposit is invoiced on confirmation (unpaid), the balance not yet.
    page = await buyer.get(page_url)
    deposit, balance = _row(page.text, "schedule-1"), _row(page.text, "schedule-2")
    link = re.search(rf'href="(/buyer/{buyer_org}/invoices/[0-9a-f-]{{36}})"[^>]*>Invoice ([^<]+)<', deposit)
    assert link, deposit
    assert "unpaid" in deposit and "not invoiced yet" in balance and "/invoices/" not in balance

    invoice = await buyer.get(link.group(1))
    assert invoice.status_code == 200
    caption = re.search(r'id="invoice-instalment">([^<]+)<', invoice.text)
    assert caption and "instalment 1" in caption.group(1) and "Deposit, 30%" in caption.group(1)
    assert re.search(r'id="invoice-total">(CN)?¥240.00<', invoice.text)
    assert "Instalment 1: Deposit, 30% of Deposit mill: machine time" in invoice.text
    factory_page = await factory.get(f"/factory/{f['org']}/bookings")
    assert f"Invoice {link.group(2)}" in _row(factory_page.text, f"schedule-{bid}-1")

    # In Chinese: the instalments in words, never their codes.
    await buyer_zh.sign_in(buyer_reg["email"])
    buyer_zh.http.cookies.set("lang", "zh-CN")  # the header's language switch
    zh = await buyer_zh.get(page_url)
    assert "定金" in _row(zh.text, "schedule-1") and "尾款" in _row(zh.text, "schedule-2")
    assert ">deposit<" not in zh.text and ">balance<" not in zh.text


def _milestones(*rows: tuple[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, (label, percent) in enumerate(rows):
        out[f"ms{i}_label"], out[f"ms{i}_percent"] = label, percent
    return out


async def test_milestone_quote_becomes_the_schedule_and_the_factory_invoices_a_reached_milestone(
    client: AsyncClient, db: AsyncSession, browsers: list[Browser]
) -> None:
    m = await market(client, db)
    factory, buyer, third, _zh = browsers
    await factory.sign_in(m["supplier_email"])
    await buyer.sign_in(m["buyer_email"])
    await third.sign_in(m["third_email"])
    req_id, sup_org, buy_org = m["request"]["id"], m["supplier_org"], m["buyer_org"]
    quotes_url = f"/factory/{sup_org}/opportunities/{req_id}/quotes"

    # Milestones that do not add up to 100 are refused on the form, the rows kept as typed.
    bad = await factory.post(
        quotes_url, quote_form(m["asset"]["id"]) | _milestones(("Design", "30"), ("Delivery", "60"))
    )
    assert bad.status_code == 422
    assert 'role="alert"' in bad.text or "field-error" in bad.text
    assert 'value="Design"' in bad.text and 'value="60"' in bad.text
    three = _milestones(("Design", "30"), ("Prototype", "40"), ("Delivery", "30"))
    sent = await factory.post(quotes_url, quote_form(m["asset"]["id"], amount="1000") | three)
    assert sent.status_code == 303, sent.text

    page = await buyer.get(f"/buyer/{buy_org}/requests/{req_id}/quotes")
    assert "Milestones: Design 30% · Prototype 40% · Delivery 30%" in page.text
    qid = re.search(r'id="quote-([0-9a-f-]{36})"', page.text)
    assert qid
    # The counter form starts from the offered milestones.
    assert re.search(r'name="ms1_label"[^>]*value="Prototype"', page.text)
    accepted = await buyer.post(f"/buyer/{buy_org}/quotes/{qid.group(1)}/accept")
    assert accepted.status_code == 303 and f"/buyer/{buy_org}/bookings/" in accepted.headers["location"]
    booking_url = accepted.headers["location"]
    bid = booking_url.rsplit("/", 1)[-1]
    page = await buyer.get(booking_url)
    assert "Design" in _row(page.text, "schedule-1") and "¥300.00" in _row(page.text, "schedule-1")
    assert "when the factory reports the milestone reached" in _row(page.text, "schedule-2")
    # Accepting the payment terms confirms a quoted booking at once (the factory agreed in its quote).
    assert f'action="/buyer/{buy_org}/bookings/{bid}/pay"' in page.text
    assert (await buyer.post(f"/buyer/{buy_org}/bookings/{bid}/pay")).status_code == 303
    assert 'data-status="confirmed"' in (await buyer.get(booking_url)).text

    # Confirmed: the first milestone is invoiced; the factory's page offers to invoice the second.
    reach = f"/factory/{sup_org}/bookings/{bid}/milestones/2/reached"
    incoming = await factory.get(f"/factory/{sup_org}/bookings")
    assert f'action="{reach}"' in incoming.text
    assert f"/factory/{sup_org}/bookings/{bid}/milestones/3/reached" not in incoming.text  # due on completion
    page = await buyer.get(booking_url)
    assert "/invoices/" in _row(page.text, "schedule-1") and "/invoices/" not in _row(page.text, "schedule-2")

    # Nobody else can report it: the buyer (not a factory) and a third organisation.
    assert (await buyer.post(f"/factory/{buy_org}/bookings/{bid}/milestones/2/reached")).status_code in (403, 404)
    assert (await third.post(f"/factory/{m['third_org']}/bookings/{bid}/milestones/2/reached")).status_code == 404

    done = await factory.post(reach)
    assert done.status_code == 303 and "error=" not in done.headers["location"]
    page = await buyer.get(booking_url)
    assert "/invoices/" in _row(page.text, "schedule-2") and "/invoices/" not in _row(page.text, "schedule-3")
    assert re.search(r'data-action="milestone"><strong>Milestone reached</strong>.*?Prototype', page.text, re.S)
    incoming = await factory.get(f"/factory/{sup_org}/bookings")
    assert f'action="{reach}"' not in incoming.text

    # A second press is refused with a message, never a code.
    again = await factory.post(reach)
    assert again.status_code == 303 and "error=milestone_not_due" in again.headers["location"]
    shown = await factory.get(again.headers["location"])
    alert = re.search(r'<p class="error" role="alert">([^<]+)</p>', shown.text)
    assert alert and "milestone_not_due" not in alert.group(1)
