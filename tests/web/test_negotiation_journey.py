"""The negotiation in a real browser (Debian's Chromium via Playwright), in Chinese and in English: a buyer
posts a request that requires the NDA and uploads a STEP drawing; the factory finds it on its job board,
accepts the NDA, sees the drawing and quotes; the buyer counters, the factory counters back, the buyer accepts
and lands on the booking; a message with a file on the booking's thread reaches the factory. Screenshots go to
test-artifacts/screenshots/ (``<locale>-negotiation-*.png``)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.bookings.live_server import LiveServer, admin_headers, published, register, verified_supplier
from tests.factories import machine_payload
from tests.web.conftest import in_browser, live_server, new_page, sign_in
from tests.web.test_browser_journey import run_sync

STEP = b"ISO-10303-21;\nHEADER;\nFILE_DESCRIPTION(('bracket'),'2;1');\nENDSEC;\nDATA;\nENDSEC;\nEND-ISO-10303-21;\n"
SHANGHAI = ZoneInfo("Asia/Shanghai")
# What a person reads, per language: the quote states and a few headings.
TEXT = {
    "zh-CN": {
        "received": "已收到报价",
        "countered": "已还价",
        "accepted": "报价已接受",
        "opportunities": "商机",
        "nda": "保密协议",
    },
    "en": {
        "received": "quote received",
        "countered": "counter-offer made",
        "accepted": "quote accepted",
        "opportunities": "Opportunities",
        "nda": "Non-disclosure agreement",
    },
}


@pytest.fixture(scope="module")
def live(server_url: str, redis_url: str) -> Iterator[LiveServer]:
    with live_server(server_url, redis_url, prefix="nego") as (server, _url):
        yield server


async def _market(server: LiveServer, locale: str) -> dict[str, Any]:
    """A verified factory with a published 5-axis mill (always open) and a buyer, both using ``locale``."""
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        admin = await admin_headers(client, server.database_url)
        sup_reg, sup, site = await verified_supplier(client, server.database_url, locale=locale)
        title = f"DMU 50 {uuid.uuid4().hex[:6]}"
        asset = await published(client, sup, admin, machine_payload(site["id"], title=title))
        buyer_reg = await register(client, ("buyer",), database_url=server.database_url, locale=locale)
    return {"supplier": sup_reg, "buyer": buyer_reg, "asset": asset, "title": title}


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_negotiation_in_a_real_browser(live: LiveServer, artifacts: Path, locale: str) -> None:
    market = run_sync(_market(live, locale))
    in_browser(_journey, live, artifacts, locale, market)


def _local(dt: datetime) -> str:
    return dt.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


def _journey(browser: Any, server: LiveServer, artifacts: Path, locale: str, market: dict[str, Any]) -> None:
    text, base = TEXT[locale], server.url
    buyer_org, supplier_org = market["buyer"]["org"]["id"], market["supplier"]["org"]["id"]

    def shot(page: Any, name: str) -> None:
        page.screenshot(path=str(artifacts / f"{locale}-negotiation-{name}.png"), full_page=True)

    # 1. The buyer posts a request that requires the NDA, then uploads a STEP drawing.
    buyer = new_page(browser, locale)
    sign_in(buyer, base, market["buyer"]["email"])
    buyer.goto(f"{base}/buyer/{buyer_org}/requests/new")
    today = datetime.now(SHANGHAI).date()
    buyer.select_option("#f-process_code", "machining.milling.cnc_5axis")
    buyer.select_option("#f-material", "al_6061")
    buyer.fill("#f-hours", "4")
    buyer.fill("#f-earliest", (today + timedelta(days=1)).isoformat())
    buyer.fill("#f-deadline", (today + timedelta(days=10)).isoformat())
    buyer.check("input[name=nda_required]")
    buyer.click("form button[type=submit].primary")
    buyer.wait_for_selector("#quotes-link")
    assert buyer.locator(".result", has_text=market["title"]).count() == 1
    buyer.click("#quotes-link")
    buyer.wait_for_selector("#drawing-form")
    request_id = re.search(r"/requests/([0-9a-f-]{36})/quotes", buyer.url)
    assert request_id, buyer.url
    buyer.set_input_files(
        "#drawing-file", files=[{"name": "bracket.step", "mimeType": "application/step", "buffer": STEP}]
    )
    buyer.click("#drawing-form button[type=submit]")
    buyer.wait_for_load_state("networkidle")
    assert buyer.locator("#drawings a", has_text="bracket.step").count() == 1, buyer.content()[-3000:]
    quotes_url = buyer.url.split("#")[0].split("?")[0]
    shot(buyer, "01-request-drawings")

    # 2. The factory finds it on its job board (NDA badge, no buyer), accepts the NDA, sees the drawing, quotes.
    factory = new_page(browser, locale)
    sign_in(factory, base, market["supplier"]["email"])
    factory.wait_for_selector("#nav-opportunities")
    factory.click("#nav-opportunities")
    factory.wait_for_selector(f"#opportunity-{request_id.group(1)}")
    card = factory.locator(f"#opportunity-{request_id.group(1)}")
    assert card.locator(".badge.nda").count() == 1
    assert market["buyer"]["org"]["name"] not in factory.content()
    assert text["opportunities"] in factory.locator("h1").inner_text()
    shot(factory, "02-opportunities")
    card.locator("h2 a").click()
    factory.wait_for_selector("#nda-form")
    assert text["nda"] in factory.locator(".nda-text").inner_text()
    assert factory.locator("#drawings a").count() == 0
    factory.click("#nda-form button")
    factory.wait_for_selector("#drawings a")
    drawing = factory.locator("#drawings a", has_text="bracket.step")
    assert drawing.count() == 1
    got = factory.request.get(f"{base}{drawing.get_attribute('href')}")
    assert got.status == 200 and got.body() == STEP
    start = datetime.now(SHANGHAI).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=3)
    factory.select_option("#f-asset_id", market["asset"]["id"])
    factory.fill("#f-amount", "1234")
    factory.fill("#f-start", _local(start))
    factory.fill("#f-end", _local(start + timedelta(hours=4)))
    factory.fill("#f-valid_until", _local(start - timedelta(days=1)))
    factory.fill("#f-note", "含去毛刺" if locale == "zh-CN" else "Including deburring")
    factory.click("#quote-form button[type=submit]")
    factory.wait_for_selector("#quotes .quote")
    assert factory.locator("#quotes .quote-status").first.inner_text() == text["received"], factory.content()[-3000:]
    opportunity_url = factory.url.split("#")[0].split("?")[0]
    shot(factory, "03-opportunity-quoted")

    # 3. The buyer sees the quote (status translated, amount formatted) and counters.
    buyer.goto(quotes_url)
    quote = buyer.locator("#quotes .quote").first
    assert quote.locator(".quote-status").inner_text() == text["received"]
    assert "1,234.00" in quote.locator(".quote-amount").inner_text()
    quote.locator("details.counter summary").click()
    quote.locator("input[name=amount]").fill("1100")
    quote.locator("input[name=note]").fill("可否 1100？" if locale == "zh-CN" else "Could you do 1100?")
    quote.locator("details.counter button[type=submit]").click()
    buyer.wait_for_load_state("networkidle")
    assert buyer.locator("#quotes .quote-status").first.inner_text() == text["countered"]

    # 4. The factory counters back; the buyer accepts and lands on the booking.
    factory.goto(opportunity_url)
    mine = factory.locator("#quotes .quote").first
    assert mine.locator(".quote-status").inner_text() == text["countered"]
    mine.locator("details.counter summary").click()
    mine.locator("input[name=amount]").fill("1150")
    mine.locator("details.counter button[type=submit]").click()
    factory.wait_for_load_state("networkidle")
    buyer.goto(quotes_url)
    assert buyer.locator("#quotes .versions li").count() == 3
    shot(buyer, "04-quote-versions")
    buyer.locator("#quotes form[data-action=accept] button").first.click()
    buyer.wait_for_selector("#booking-status")
    assert re.search(rf"/buyer/{buyer_org}/bookings/[0-9a-f-]{{36}}$", buyer.url), buyer.url
    assert "1,150.00" in buyer.content()
    shot(buyer, "05-booking-from-quote")
    buyer.goto(quotes_url)
    assert buyer.locator("#quotes .quote-status").first.inner_text() == text["accepted"]
    buyer.go_back()

    # 5. A message with a file on the booking's thread; the factory reads it and downloads the file.
    buyer.click("#booking-thread-link")
    buyer.wait_for_selector("#message-form")
    body = "图纸已更新，请查收。" if locale == "zh-CN" else "Updated drawing attached."
    buyer.fill("#message-body", body)
    buyer.set_input_files(
        "#message-file", files=[{"name": "rev-b.step", "mimeType": "application/step", "buffer": STEP}]
    )
    buyer.click("#message-form button[type=submit]")
    buyer.wait_for_selector(".message .body")
    assert buyer.locator(".message .body").last.inner_text() == body
    shot(buyer, "06-booking-thread")
    factory.goto(f"{base}/factory/{supplier_org}/bookings")
    factory.locator("a.thread-link").first.click()
    factory.wait_for_selector(".message")
    assert factory.locator(".message .body").last.inner_text() == body
    link = factory.locator(".message .files a", has_text="rev-b.step")
    got = factory.request.get(f"{base}{link.get_attribute('href')}")
    assert got.status == 200 and got.body() == STEP
    shot(factory, "07-factory-reads-thread")

    # 6. The notification centre lists what happened; the bell counts the unread ones.
    factory.goto(f"{base}/notifications")
    assert factory.locator(".notification").count() >= 1
    shot(factory, "08-notifications")
    for page in (buyer, factory):
        page.context.close()
