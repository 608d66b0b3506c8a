"""The invoice in a real browser (Debian's Chromium via Playwright): the page and its print view load without
a Content-Security-Policy violation, the print view hides its button when printing, and Chromium saves it as
a PDF. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.bookings.live_server import LiveServer, _ok, build_market, http_client, login, register
from tests.factories import PASSWORD
from tests.web.conftest import in_browser, live_server


def run_sync(coro: Any) -> Any:
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="module")
def live(server_url: str, redis_url: str) -> Iterator[tuple[LiveServer, str]]:
    with live_server(server_url, redis_url, prefix="inv") as (server, url):
        yield server, url


async def _booked_buyer(server: LiveServer, db_url: str) -> dict[str, Any]:
    async with http_client(server) as client:
        market = await build_market(client, db_url)
        reg = await register(client, ("buyer",), database_url=db_url)
        headers = await login(client, reg["email"])
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=4)
        booking = _ok(
            await client.post(
                "/api/v1/bookings",
                headers={**headers, "Idempotency-Key": f"print-{uuid.uuid4()}"},
                json={
                    "asset_id": market.machine["id"],
                    "start": start.isoformat(),
                    "end": (start + timedelta(hours=2)).isoformat(),
                },
            ),
            201,
        )
        payment = _ok(await client.get(f"/api/v1/bookings/{booking['id']}/payment", headers=headers))
    return {"email": reg["email"], "org": reg["org"]["id"], "invoice": payment["invoice_id"], "booking": booking["id"]}


def test_the_invoice_prints_and_saves_as_pdf_in_a_real_browser(live: tuple[LiveServer, str], artifacts: Path) -> None:
    server, db_url = live
    buyer = run_sync(_booked_buyer(server, db_url))
    in_browser(_print_invoice, server.url, buyer, artifacts)


def _print_invoice(browser: Any, base: str, buyer: dict[str, Any], artifacts: Path) -> None:
    page = browser.new_context(locale="zh-CN", viewport={"width": 1100, "height": 900}).new_page()
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.goto(f"{base}/login")
    page.fill("#email", buyer["email"])
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state("networkidle")

    page.goto(f"{base}/buyer/{buyer['org']}/bookings/{buyer['booking']}")
    assert page.is_visible("#payment-state") and page.is_visible("#invoice-link") and page.is_visible("#cancel-terms")
    page.screenshot(path=str(artifacts / "invoice-booking-page.png"), full_page=True)

    page.goto(f"{base}/buyer/{buyer['org']}/invoices")
    page.click(f"#invoice-{buyer['invoice']} a[href$='/{buyer['invoice']}']")
    page.wait_for_load_state("networkidle")
    assert page.is_visible("#payee-account") and page.is_visible("#payee-reference")
    page.screenshot(path=str(artifacts / "invoice-page.png"), full_page=True)

    page.goto(f"{base}/buyer/{buyer['org']}/invoices/{buyer['invoice']}/print")
    page.wait_for_load_state("networkidle")
    assert page.is_visible("[data-print]") and page.locator("nav").count() == 0
    page.screenshot(path=str(artifacts / "invoice-print.png"), full_page=True)
    page.emulate_media(media="print")
    assert page.is_hidden("[data-print]")  # the print button is not on the paper
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF") and len(pdf) > 5000
    (artifacts / "invoice.pdf").write_bytes(pdf)
    assert violations == []
    page.context.close()
