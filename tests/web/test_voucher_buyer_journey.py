"""The buyer's innovation-voucher journey in a real browser (Debian's Chromium via Playwright), in Chinese (issue
#18): a buyer registered in Suzhou (its USCC's region) applies on its vouchers page for the voucher of an
auto-grant Suzhou programme, books a Suzhou lab test paying part with the voucher on the booking form, and sees
the split on its booking page and on the invoice: the full price, the voucher's share and the smaller amount due.
The programme, the lab and the accounts are set up through the API. Screenshots go to
test-artifacts/screenshots/ (``voucher-buyer-*.png``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.bookings.live_server import LiveServer, admin_headers, login, published, sql, verified_supplier
from tests.factories import lab_payload
from tests.vouchers.conftest import china_today, programme_body, registered_in_suzhou
from tests.web.conftest import in_browser, live_server, new_page, run_sync, sign_in


@pytest.fixture(scope="module")
def live(server_url: str, redis_url: str) -> Iterator[LiveServer]:
    with live_server(server_url, redis_url, prefix="vch") as (server, _url):
        yield server


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json()


async def _market(server: LiveServer) -> dict[str, Any]:
    """A verified Suzhou bureau running an auto-grant programme (50 %, advance), a Suzhou lab (150 CNY a sample)
    and a buyer registered in Suzhou."""
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        admin = await admin_headers(client, server.database_url)
        _sup_reg, supplier, site = await verified_supplier(client, server.database_url)
        lab = await published(client, supplier, admin, lab_payload(site["id"], title="拉伸试验 Tensile test"))
        bureau = await registered_in_suzhou(server, client, ["programme"])
        await sql(
            server.database_url,
            "UPDATE organisations SET verification_status = 'verified' WHERE id = :id",
            {"id": bureau["org"]["id"]},
        )
        bureau_headers = await login(client, bureau["email"])
        body = programme_body(bureau["org"]["id"], name="苏州市科技创新券", auto_grant=True)
        prog = _ok(await client.post("/api/v1/programmes", json=body, headers=bureau_headers), 201)
        buyer = await registered_in_suzhou(server, client, ["buyer"])
    return {"lab": lab, "programme": prog, "buyer": buyer}


def test_a_buyer_applies_for_a_voucher_books_with_it_and_sees_the_split_invoice(
    live: LiveServer, artifacts: Path
) -> None:
    m = run_sync(_market(live))
    in_browser(_journey, live, artifacts, m)
    booking = run_sync(
        sql(
            live.database_url,
            "SELECT b.amount, b.voucher_share, r.status FROM bookings b "
            "JOIN voucher_redemptions r ON r.booking_id = b.id WHERE b.asset_id = :a",
            {"a": m["lab"]["id"]},
        )
    )
    assert [tuple(row) for row in booking] == [(30000, 15000, "active")]


def _shot(page: Any, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"voucher-buyer-{name}.png"), full_page=True)


def _journey(browser: Any, server: LiveServer, artifacts: Path, m: dict[str, Any]) -> None:
    base, org, prog, lab = server.url, m["buyer"]["org"]["id"], m["programme"]["id"], m["lab"]["id"]
    page = new_page(browser, "zh-CN")
    sign_in(page, base, m["buyer"]["email"])

    # The vouchers page, from the buyer's page: apply for the programme's voucher (granted at once).
    page.goto(f"{base}/buyer/{org}")
    page.click("#buyer-vouchers-link")
    page.wait_for_url(f"{base}/buyer/{org}/vouchers")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    offer = page.locator(f"#programme-{prog}")
    assert "苏州市科技创新券" in offer.inner_text() and "50%" in offer.inner_text()
    page.fill(f"#apply-{prog}", "新支架的拉伸试验")
    _shot(page, artifacts, "apply")
    page.click(f"#apply-{prog}-submit")
    page.wait_for_url(f"{base}/buyer/{org}/vouchers?notice=granted")
    assert page.locator("#voucher-notice").is_visible()
    row = page.locator("#my-vouchers tr[data-status='granted']")
    assert row.count() == 1 and "苏州市科技创新券" in row.inner_text() and "¥3,000.00" in row.inner_text()
    _shot(page, artifacts, "granted")

    # The booking form offers the voucher (none by default); the buyer chooses it.
    page.goto(f"{base}/book/{lab}")
    select = page.locator("#f-voucher_id")
    assert select.input_value() == ""
    voucher_id = select.locator("option").nth(1).get_attribute("value")
    assert voucher_id
    page.fill("#f-drop_off_date", str(china_today() + timedelta(days=3)))
    page.fill("#f-samples", "2")
    select.select_option(voucher_id)
    _shot(page, artifacts, "book")
    page.click(f"form[action='/book/{lab}'] button[type=submit]")
    page.wait_for_url(f"{base}/buyer/{org}/bookings/*")

    # The booking page: 2 samples x 150 CNY = 300 CNY, the voucher pays 150, the buyer's share is 150.
    assert "−¥150.00" in page.locator("#voucher-share").inner_text()
    assert "苏州市科技创新券" in page.locator("#voucher-share").inner_text()
    assert "¥150.00" in page.locator("#buyer-share").inner_text()
    _shot(page, artifacts, "booking")

    # The invoice: the full price, the voucher's share, and only the buyer's share due.
    page.click("#invoice-link")
    page.wait_for_url(f"{base}/buyer/{org}/invoices/*")
    assert page.locator("#invoice-total").inner_text() == "¥300.00"
    assert "−¥150.00" in page.locator("#invoice-voucher-share").inner_text()
    assert "¥150.00" in page.locator("#invoice-buyer-share").inner_text()
    assert page.locator("#invoice-due").inner_text() == "¥150.00"
    _shot(page, artifacts, "invoice")
    page.context.close()
