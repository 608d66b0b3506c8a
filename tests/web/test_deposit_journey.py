"""A deposit in a real browser (Debian's Chromium via Playwright; issue #18 item 4): a factory sets a 30 %
deposit on its listing with the listing form, a buyer books two hours and accepts the payment terms, the
factory accepts the booking, and the buyer finds the deposit invoice from the schedule on its booking page (the
deposit's share of the price, saying which instalment it is). The accounts, the listing's machine data and
its approval are set up through the API. Screenshots go to test-artifacts/screenshots/ (``deposit-*.png``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.bookings.helpers import ALWAYS_OPEN
from tests.bookings.live_server import LiveServer, admin_headers, register, sql, verified_supplier
from tests.factories import machine_payload
from tests.web.conftest import in_browser, live_server, new_page, run_sync, sign_in


@pytest.fixture(scope="module")
def live(server_url: str, redis_url: str) -> Iterator[LiveServer]:
    with live_server(server_url, redis_url, prefix="dep") as (server, _url):
        yield server


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json()


async def _market(server: LiveServer) -> dict[str, Any]:
    """A verified factory with a draft machine (300 CNY an hour, 200 CNY setup, open around the clock), an
    admin to approve it, and a buyer."""
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        admin = await admin_headers(client, server.database_url)
        reg, headers, site = await verified_supplier(client, server.database_url)
        payload = machine_payload(site["id"], title="Deposit mill")
        asset = _ok(await client.post("/api/v1/assets", json=payload, headers=headers), 201)
        week = {"weekly": ALWAYS_OPEN, "exceptions": []}
        _ok(await client.put(f"/api/v1/assets/{asset['id']}/availability", json=week, headers=headers))
        buyer = await register(client, ("buyer",), database_url=server.database_url)
    return {"factory": reg, "headers": headers, "admin": admin, "asset": asset, "site": site, "buyer": buyer}


async def _approve(server: LiveServer, m: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        url = f"/api/v1/assets/{m['asset']['id']}"
        _ok(await client.post(f"{url}/submit", headers=m["headers"]))
        _ok(await client.post(f"/api/v1/admin/assets/{m['asset']['id']}/approve", headers=m["admin"]))


def test_a_factory_sets_a_deposit_and_the_buyer_gets_the_deposit_invoice_on_acceptance(
    live: LiveServer, artifacts: Path
) -> None:
    m = run_sync(_market(live))
    in_browser(_set_deposit, live, artifacts, m)
    run_sync(_approve(live, m))
    in_browser(_book_and_invoice, live, artifacts, m)
    rows = run_sync(
        sql(
            live.database_url,
            "SELECT i.instalment, i.total FROM invoices i JOIN bookings b ON b.id = i.booking_id "
            "WHERE b.asset_id = :a ORDER BY i.instalment",
            {"a": m["asset"]["id"]},
        )
    )
    assert [tuple(r) for r in rows] == [(1, 24000)]  # only the deposit is invoiced: 30 % of 800 CNY


def _shot(page: Any, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"deposit-{name}.png"), full_page=True)


def _set_deposit(browser: Any, server: LiveServer, artifacts: Path, m: dict[str, Any]) -> None:
    base, org, asset = server.url, m["factory"]["org"]["id"], m["asset"]["id"]
    page = new_page(browser, "en")
    sign_in(page, base, m["factory"]["email"])
    page.goto(f"{base}/factory/{org}/assets/{asset}/edit")
    page.fill("#f-deposit_percent", "30")
    _shot(page, artifacts, "listing-form")
    page.click(f"form[action='/factory/{org}/assets/{asset}/edit'] button[type=submit]")
    page.wait_for_url(f"{base}/factory/{org}?notice=saved")
    page.goto(f"{base}/factory/{org}/assets/{asset}/edit")
    assert page.locator("#f-deposit_percent").input_value() == "30"
    page.context.close()


def _book_and_invoice(browser: Any, server: LiveServer, artifacts: Path, m: dict[str, Any]) -> None:
    base, asset = server.url, m["asset"]["id"]
    factory_org, buyer_org = m["factory"]["org"]["id"], m["buyer"]["org"]["id"]
    buyer = new_page(browser, "en")
    sign_in(buyer, base, m["buyer"]["email"])

    # Two hours at the site, three days ahead: 2 x 300 + 200 = 800 CNY.
    start = (datetime.now(ZoneInfo(m["site"]["timezone"])) + timedelta(days=3)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    buyer.goto(f"{base}/book/{asset}")
    buyer.fill("#f-start", start.strftime("%Y-%m-%dT%H:%M"))
    buyer.fill("#f-hours", "2")
    buyer.click(f"form[action='/book/{asset}'] button[type=submit]")
    buyer.wait_for_url(re.compile(rf".*/buyer/{buyer_org}/bookings/[0-9a-f-]+$"))
    booking_url = buyer.url
    booking_id = booking_url.rsplit("/", 1)[-1]
    deposit = buyer.locator("#schedule-1")
    assert "Deposit" in deposit.inner_text() and "¥240.00" in deposit.inner_text()
    assert "not invoiced yet" in deposit.inner_text()
    assert "¥560.00" in buyer.locator("#schedule-2").inner_text()
    _shot(buyer, artifacts, "booking-held")
    buyer.click(f"form[action='/buyer/{buyer_org}/bookings/{booking_id}/pay'] button")
    buyer.wait_for_url(booking_url)
    assert buyer.locator("#booking-status").get_attribute("data-status") == "requested"

    factory = new_page(browser, "en")
    sign_in(factory, base, m["factory"]["email"])
    factory.goto(f"{base}/factory/{factory_org}/bookings")
    assert factory.locator(f"#schedule-{booking_id}").is_visible()
    factory.click(f"#booking-{booking_id} form[action$='/accept'] button")
    factory.wait_for_url(f"{base}/factory/{factory_org}/bookings")
    assert "Invoice" in factory.locator(f"#schedule-{booking_id}-1").inner_text()
    _shot(factory, artifacts, "factory-bookings")
    factory.context.close()

    buyer.goto(booking_url)
    assert buyer.locator("#booking-status").get_attribute("data-status") == "confirmed"
    assert "unpaid" in buyer.locator("#schedule-1").inner_text()
    assert "not invoiced yet" in buyer.locator("#schedule-2").inner_text()
    _shot(buyer, artifacts, "booking-confirmed")
    buyer.click("#schedule-1 a.instalment-invoice")
    buyer.wait_for_url(re.compile(rf".*/buyer/{buyer_org}/invoices/[0-9a-f-]+$"))
    caption = buyer.locator("#invoice-instalment").inner_text()
    assert "instalment 1" in caption and "Deposit, 30%" in caption
    assert buyer.locator("#invoice-total").inner_text().endswith("¥240.00")
    assert buyer.locator("#invoice-due").inner_text().endswith("¥240.00")
    _shot(buyer, artifacts, "deposit-invoice")
    buyer.context.close()
