"""Make + verify in a real browser (Debian's Chromium via Playwright), for the three parties (issue #17): the
buyer orders an independent inspection on a completed production booking (the earlier steps are set up through
the API), the factory records the shipment (in Chinese), the lab records the receipt and submits its report by
pasting CSV, and the buyer sees the verdict with the booking settled on the accepted lot. Screenshots go to
test-artifacts/screenshots/ (``make-verify-*.png``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.bookings.helpers import slot
from tests.bookings.live_server import LiveServer, admin_headers, published, register, scalar, verified_supplier
from tests.factories import PASSWORD, lab_payload, machine_payload
from tests.web.conftest import in_browser, live_server, new_page, run_sync, sign_in

PDF = {"name": "signed-report.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n1 0 obj <<>> endobj\n%%EOF\n"}


@pytest.fixture(scope="module")
def live(server_url: str, redis_url: str) -> Iterator[LiveServer]:
    with live_server(server_url, redis_url, prefix="mkv") as (server, _url):
        yield server


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json()


async def _market(server: LiveServer) -> dict[str, Any]:
    """A factory's machine booked and completed by a buyer, and an independent lab's published lab service."""
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        admin = await admin_headers(client, server.database_url)
        factory_reg, factory, site = await verified_supplier(client, server.database_url, locale="zh-CN")
        title = f"DMU 50 {uuid.uuid4().hex[:6]}"
        machine = await published(client, factory, admin, machine_payload(site["id"], title=title))
        lab_reg, lab, lab_site = await verified_supplier(client, server.database_url)
        payload = lab_payload(lab_site["id"], title="CMM dimensional inspection", test_standard="GB/T 3177-2009")
        lab_listing = await published(client, lab, admin, payload)
        buyer_reg = await register(client, ("buyer",), database_url=server.database_url)
        token = _ok(
            await client.post("/api/v1/auth/token", data={"username": buyer_reg["email"], "password": PASSWORD})
        )
        buyer = {"Authorization": f"Bearer {token['access_token']}"}
        start, end = slot(3)
        booking = _ok(
            await client.post(
                "/api/v1/bookings",
                headers={**buyer, "Idempotency-Key": f"mkv-{uuid.uuid4()}"},
                json={"asset_id": machine["id"], "start": start.isoformat(), "end": end.isoformat()},
            ),
            201,
        )
        url = f"/api/v1/bookings/{booking['id']}"
        _ok(await client.post(f"{url}/payment/accept-terms", headers=buyer))
        for action in ("accept", "start"):
            _ok(await client.post(f"{url}/{action}", headers=factory))
        _ok(await client.post(f"{url}/complete", headers=factory, json={"reason": "made ahead of the slot"}))
    return {
        "factory": factory_reg,
        "lab": lab_reg,
        "lab_headers": lab,
        "buyer": buyer_reg,
        "buyer_headers": buyer,
        "booking": booking,
        "lab_listing": lab_listing,
        "title": title,
    }


async def _lab_booking_paid_and_accepted(server: LiveServer, m: dict[str, Any]) -> None:
    """The lab booking goes through the lab's normal flow: ordering accepted the invoice terms, the lab accepts."""
    lab_booking = await scalar(server.database_url, "SELECT lab_booking_id FROM inspections")
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        url = f"/api/v1/bookings/{lab_booking}"
        _ok(await client.post(f"{url}/accept", headers=m["lab_headers"]))
    m["lab_booking"] = str(lab_booking)


def test_buyer_factory_and_lab_carry_an_inspection_to_an_accepted_lot(live: LiveServer, artifacts: Path) -> None:
    m = run_sync(_market(live))
    in_browser(_order, live, artifacts, m)
    run_sync(_lab_booking_paid_and_accepted(live, m))
    in_browser(_ship_test_and_see, live, artifacts, m)
    status = run_sync(
        scalar(live.database_url, "SELECT status FROM bookings WHERE id = :id", {"id": m["booking"]["id"]})
    )
    assert status == "settled"


def _shot(page: Any, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"make-verify-{name}.png"), full_page=True)


def _order(browser: Any, server: LiveServer, artifacts: Path, m: dict[str, Any]) -> None:
    base, buyer_org = server.url, m["buyer"]["org"]["id"]
    buyer = new_page(browser, "en")
    sign_in(buyer, base, m["buyer"]["email"])
    buyer.goto(f"{base}/buyer/{buyer_org}/bookings/{m['booking']['id']}")
    buyer.click("#order-inspection-link")
    buyer.select_option("#f-lab_asset_id", m["lab_listing"]["id"])
    # A mistake first: the upper tolerance is negative; the message stands beside the field.
    for name, value in {
        "name": "Bore diameter",
        "nominal": "12.000",
        "lower_tol": "-0.020",
        "upper_tol": "-0.01",
    }.items():
        buyer.fill(f"#f-c0_{name}", value)
    buyer.fill("#f-lot_size", "20")
    buyer.select_option("#f-aql", "15")
    buyer.fill("#f-transit_days", "0")
    buyer.click("#order-inspection")
    assert buyer.locator("#f-c0_upper_tol-error").is_visible()
    _shot(buyer, artifacts, "en-01-order-form-error")
    buyer.fill("#f-c0_upper_tol", "0.020")
    buyer.click("#add-row")  # works without JavaScript: the form comes back with a fourth row
    assert buyer.locator("#f-c3_name").count() == 1
    buyer.fill("#f-c1_name", "Length")
    buyer.fill("#f-c1_nominal", "40")
    buyer.fill("#f-c1_lower_tol", "-0.1")
    buyer.fill("#f-c1_upper_tol", "0.1")
    buyer.click("#order-inspection")
    buyer.wait_for_selector("#inspection-notice")
    text = buyer.inner_text("#inspection")
    assert "code letter C" in text and "Ac 2 · Re 3" in text and "inspection planned" in text
    _shot(buyer, artifacts, "en-02-inspection-planned")
    buyer.context.close()


def _ship_test_and_see(browser: Any, server: LiveServer, artifacts: Path, m: dict[str, Any]) -> None:
    base = server.url
    factory_org, lab_org = m["factory"]["org"]["id"], m["lab"]["org"]["id"]

    # The factory (in Chinese) finds the booking's inspection page and records the shipment.
    factory = new_page(browser, "zh-CN")
    sign_in(factory, base, m["factory"]["email"])
    factory.goto(f"{base}/factory/{factory_org}/bookings")
    factory.click(f"#booking-{m['booking']['id']} a.inspection-link")
    assert "检验已计划" in factory.inner_text("main")
    factory.fill("#ship-tracking_reference", "SF1234567890")
    factory.fill("#ship-carrier", "顺丰速运")
    factory.click("#shipment-form button[type=submit]")
    factory.wait_for_selector("[data-inspection-status=shipped]")
    assert "样本已寄出" in factory.inner_text("main") and "SF1234567890" in factory.inner_text("main")
    _shot(factory, artifacts, "zh-CN-03-factory-shipped")
    factory.context.close()

    # The lab records receipt and pastes its measurements; the platform computes the verdict.
    lab = new_page(browser, "en")
    sign_in(lab, base, m["lab"]["email"])
    lab.goto(f"{base}/factory/{lab_org}/bookings")
    lab.click(f"#booking-{m['lab_booking']} a.inspection-link")
    lab.click("#receipt button[type=submit]")
    lab.wait_for_selector("#report-form")
    assert lab.input_value("#f-test_standard") == "GB/T 3177-2009"  # prefilled from the listing
    lab.fill("#f-tested_on", datetime.now(UTC).date().isoformat())
    lab.fill("#f-instrument", "Zeiss Contura CMM #3")
    lab.fill("#f-operator", "Li Lei")
    lab.set_input_files("#f-signed_document", files=[PDF])
    # One part out of tolerance (12.030 > 12.020): 1 nonconforming ≤ Ac 2, the lot is accepted.
    lab.fill("#f-csv", "P1,12.001,40.00\nP2,12.005,40.02\nP3,12.030,39.95\nP4,11.990,40.05\nP5,12.000,40.00")
    _shot(lab, artifacts, "en-04-lab-report-form")
    lab.click("#submit-report")
    lab.wait_for_selector("[data-verdict=accepted]")
    assert "1 of 5 parts nonconforming" in lab.inner_text("main")
    lab.click("details.nonconforming summary")
    assert "Part 3 (P3): Bore diameter" in lab.inner_text("details.nonconforming")
    _shot(lab, artifacts, "en-05-lab-verdict")
    lab.context.close()

    # The buyer sees the verdict and the settled booking.
    buyer = new_page(browser, "en")
    sign_in(buyer, base, m["buyer"]["email"])
    buyer.goto(f"{base}/buyer/{m['buyer']['org']['id']}/bookings/{m['booking']['id']}")
    assert buyer.locator("#inspection [data-verdict=accepted]").count() >= 1
    assert buyer.get_attribute("#booking-status", "data-status") == "settled"
    assert "Signed report of the lab" in buyer.inner_text("#inspection")
    _shot(buyer, artifacts, "en-06-buyer-verdict")
    buyer.context.close()
