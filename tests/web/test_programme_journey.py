"""The programme operator's innovation-voucher journey in a real browser (Debian's Chromium via Playwright), in
Chinese (issue #18): a verified Suzhou bureau creates an advance-mode programme with the form, approves a buyer's
application, builds last month's claim of the buyer's settled voucher booking, approves its line, records the
programme's payment and sees the claim paid and the paid figure in its statistics; then the booking's programme
receivable is cleared in the books.

Accounts, the lab, the buyer's application and its booking are made through the API; only what the API
deliberately does not offer is SQL (verifying addresses and the organisations, and backdating the settlement into
last month). Screenshots go to test-artifacts/screenshots/ (``programme-operator-*.png``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from marketplace.web.i18n import translations
from marketplace.web.voucher_labels import voucher_label
from tests.bookings.live_server import LiveServer, admin_headers, login, published, sql, verified_supplier
from tests.factories import lab_payload
from tests.vouchers.conftest import CHINA, china_today, lab_booking_body, registered_in_suzhou
from tests.web.conftest import in_browser, live_server, new_page, run_sync, sign_in

PROGRAMME = "苏州市科技创新券"
SHARE = 15_000  # 2 samples x 150 CNY (tests.factories.lab_payload), 50 %: 150 CNY


@pytest.fixture(scope="module")
def live(server_url: str, redis_url: str) -> Iterator[LiveServer]:
    with live_server(server_url, redis_url, prefix="prg") as (server, _url):
        yield server


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json()


def _zh(code: str, kind: str) -> str:
    """What a zh-CN page shows for a voucher status (translated or not yet, the page and this agree)."""
    return voucher_label(code, kind, translations("zh-CN").gettext)


async def _market(server: LiveServer) -> dict[str, Any]:
    """A verified bureau (a programme organisation), a Suzhou buyer, and a verified Suzhou lab's listing."""
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        admin = await admin_headers(client, server.database_url)
        _sup_reg, supplier, site = await verified_supplier(client, server.database_url)
        lab = await published(client, supplier, admin, lab_payload(site["id"], title="拉伸试验 Tensile test"))
        bureau = await registered_in_suzhou(server, client, ["programme"])
        # The platform's verification of the bureau (as the other tests verify organisations).
        await sql(
            server.database_url,
            "UPDATE organisations SET verification_status = 'verified' WHERE id = :id",
            {"id": bureau["org"]["id"]},
        )
        buyer = await registered_in_suzhou(server, client, ["buyer"])
        return {
            "admin": admin,
            "supplier": supplier,
            "lab": lab,
            "bureau": bureau,
            "buyer": buyer,
            "buyer_headers": await login(client, buyer["email"]),
        }


async def _apply(server: LiveServer, m: dict[str, Any], programme_id: str) -> str:
    """The buyer applies for the programme's voucher through the API; returns the (applied) voucher's id."""
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        body = {"buyer_org_id": m["buyer"]["org"]["id"], "note": "新支架的拉伸试验"}
        url = f"/api/v1/programmes/{programme_id}/vouchers"
        voucher = _ok(await client.post(url, json=body, headers=m["buyer_headers"]), 201)
    assert voucher["status"] == "applied", voucher
    return str(voucher["id"])


async def _settled_voucher_booking(server: LiveServer, m: dict[str, Any], voucher_id: str) -> str:
    """The buyer books the lab with its voucher, pays its share by bank transfer (recorded by the admin), the lab
    does the test and the buyer confirms: the booking settles. Returns the booking's id."""
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        buyer, supplier = m["buyer_headers"], m["supplier"]
        body = lab_booking_body(m["lab"]["id"], samples=2, voucher_id=voucher_id, days_ahead=1)
        headers = {**buyer, "Idempotency-Key": str(uuid.uuid4())}
        booking = _ok(await client.post("/api/v1/bookings", json=body, headers=headers), 201)
        assert booking["voucher_share"] == SHARE, booking
        bid = booking["id"]
        pay = _ok(await client.get(f"/api/v1/bookings/{bid}/payment", headers=buyer))
        transfer = {"amount": booking["amount"] - SHARE, "reference": "ICBC-BUYER-1"}
        _ok(
            await client.post(
                f"/api/v1/admin/invoices/{pay['invoice_id']}/payments", json=transfer, headers=m["admin"]
            ),
            201,
        )
        _ok(await client.post(f"/api/v1/bookings/{bid}/payment/accept-terms", headers=buyer))
        for action in ("accept", "start", "complete"):
            reason = {"reason": "samples tested ahead of the due day (test)"} if action == "complete" else None
            _ok(await client.post(f"/api/v1/bookings/{bid}/{action}", json=reason, headers=supplier))
        settled = _ok(await client.post(f"/api/v1/bookings/{bid}/confirm", headers=buyer))
        assert settled["status"] == "settled", settled
    # A claim only takes a month that is over, and the booking settled today: its voucher share is backdated to
    # the middle of last month (China time), as if the lab's test had been confirmed then.
    await sql(
        server.database_url,
        "UPDATE voucher_redemptions SET settled_at = :at WHERE booking_id = :b AND status = 'settled'",
        {"at": _last_month_mid(), "b": bid},
    )
    return str(bid)


def _last_month() -> date:
    return china_today().replace(day=1) - timedelta(days=1)


def _last_month_mid() -> datetime:
    return datetime.combine(_last_month().replace(day=15), time(12), tzinfo=CHINA)


def test_an_operator_creates_a_programme_approves_a_voucher_and_gets_last_months_claim_paid(
    live: LiveServer, artifacts: Path
) -> None:
    m = run_sync(_market(live))
    got = in_browser(_journey, live, artifacts, m)
    programme_id, booking_id, claim_id = got["programme"], got["booking"], got["claim"]

    claim = run_sync(
        sql(
            live.database_url,
            "SELECT status, total, approved, payment_reference FROM voucher_claims WHERE id = :c",
            {"c": claim_id},
        )
    )
    assert [tuple(row) for row in claim] == [("paid", SHARE, SHARE, "SZ-TREASURY-0001")]
    mode = run_sync(
        sql(live.database_url, "SELECT payment_mode FROM voucher_programmes WHERE id = :p", {"p": programme_id})
    )
    assert [tuple(row) for row in mode] == [("advance",)]
    # Advance mode: the invoice put the voucher's share on the programme's receivable; the claim's payment
    # cleared it (the booking owes the platform nothing from the programme any more).
    receivable = run_sync(
        sql(
            live.database_url,
            "SELECT coalesce(sum(e.amount) FILTER (WHERE e.amount > 0), 0), coalesce(sum(e.amount), 0) "
            "FROM journal_entries e JOIN journals j ON j.id = e.journal_id "
            "WHERE j.booking_id = :b AND e.account = 'programme_receivable'",
            {"b": booking_id},
        )
    )
    assert [tuple(row) for row in receivable] == [(SHARE, 0)]


def _shot(page: Any, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"programme-operator-{name}.png"), full_page=True)


def _journey(browser: Any, server: LiveServer, artifacts: Path, m: dict[str, Any]) -> dict[str, str]:
    base, org = server.url, m["bureau"]["org"]["id"]
    page = new_page(browser, "zh-CN")
    sign_in(page, base, m["bureau"]["email"])

    # The programme organisation's page, in Chinese: the new-programme form.
    page.goto(f"{base}/programme/{org}")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    assert page.locator("#unverified-banner").count() == 0  # verified: it may run programmes
    assert page.locator("label[for='f-name']").inner_text().strip() == "名称"
    assert page.locator("label[for='f-currency']").inner_text().strip() == "币种"
    assert page.locator("label[for='f-valid_from']").inner_text().strip() == "生效日期"
    page.fill("#f-name", PROGRAMME)
    page.fill("#f-region_prefix", "3205")
    assert page.locator("#kind-machine").is_checked() and page.locator("#kind-lab_service").is_checked()
    page.check("#family-testing")
    page.fill("#f-rate", "50")
    assert page.locator("#f-currency").input_value() == "CNY"
    page.fill("#f-cap_per_booking", "1000")
    page.fill("#f-cap_per_buyer_year", "3000")
    page.fill("#f-budget", "100000")
    page.fill("#f-valid_from", str(china_today() - timedelta(days=1)))
    page.fill("#f-valid_until", str(china_today() + timedelta(days=365)))
    page.select_option("#f-payment_mode", "advance")
    _shot(page, artifacts, "new")
    page.click("#create-programme")
    page.wait_for_url(f"{base}/programme/{org}/programmes/*?notice=created")
    programme_id = page.url.split("/programmes/")[1].split("?")[0]
    assert page.locator("#programme-notice").is_visible()
    assert page.locator("h1").inner_text() == PROGRAMME
    assert page.locator("#stat-budget").inner_text() == "¥100,000.00"
    assert page.locator("#stat-paid").inner_text() == "¥0.00"

    # The buyer applies (API); the operator approves the application on the page.
    voucher_id = run_sync(_apply(server, m, programme_id))
    page.reload()
    application = page.locator(f"#voucher-{voucher_id}")
    assert m["buyer"]["org"]["name"] in application.inner_text() and "新支架的拉伸试验" in application.inner_text()
    approve = page.locator(f"#approve-{voucher_id}")
    assert approve.inner_text().strip() == "批准"
    _shot(page, artifacts, "application")
    approve.click()
    page.wait_for_url(f"{base}/programme/{org}/programmes/{programme_id}?notice=approve*")
    assert page.locator("#programme-notice").is_visible()
    assert m["buyer"]["org"]["name"] in page.locator(f"#granted #voucher-{voucher_id}").inner_text()
    assert page.locator("#applications").count() == 0

    # The buyer books with the voucher; the booking settles (backdated into last month).
    booking_id = run_sync(_settled_voucher_booking(server, m, voucher_id))

    # Last month's claim: built on the programme's page.
    page.reload()
    assert page.locator("#stat-used").inner_text() == "¥150.00"
    page.fill("#f-month", _last_month().strftime("%Y-%m"))
    page.click("#build-claim")
    page.wait_for_url(f"{base}/programme/{org}/programmes/{programme_id}/claims/*")
    claim_id = page.url.split("/claims/")[1].split("?")[0].split("#")[0]
    assert page.locator("#claim-status").inner_text() == _zh("open", "claim")
    assert page.locator("#claim-total").inner_text() == "¥150.00"
    assert page.locator("#claim-approved").inner_text() == "¥0.00"
    assert "月份" in page.locator("#claim-summary").inner_text()
    assert _last_month().strftime("%Y-%m") in page.locator("#claim-summary").inner_text()
    lines = page.locator("article.claim-line")
    assert lines.count() == 1
    line = lines.first
    line_id = (line.get_attribute("id") or "").removeprefix("line-")
    assert m["buyer"]["org"]["name"] in line.inner_text() and "拉伸试验" in line.inner_text()
    assert line.locator(".line-status").inner_text() == _zh("pending", "line")
    _shot(page, artifacts, "claim")

    # The operator approves the line, then records the programme's transfer of exactly the approved total.
    page.click(f"#approve-line-{line_id}")
    page.wait_for_url(f"{base}/programme/{org}/programmes/{programme_id}/claims/{claim_id}?notice=decided*")
    assert page.locator(f"#line-{line_id} .line-status").inner_text() == _zh("approved", "line")
    assert page.locator("#claim-status").inner_text() == _zh("decided", "claim")
    assert page.locator("#claim-approved").inner_text() == "¥150.00"
    assert page.locator("#f-amount").input_value() == "150.00"
    page.fill("#f-reference", "SZ-TREASURY-0001")
    page.click("#record-payment")
    page.wait_for_url(f"{base}/programme/{org}/programmes/{programme_id}/claims/{claim_id}?notice=paid")
    assert page.locator("#claim-notice").is_visible()
    assert page.locator("#claim-status").inner_text() == _zh("paid", "claim")
    assert page.locator("#claim-reference").inner_text() == "SZ-TREASURY-0001"
    assert page.locator("#record-payment").count() == 0  # nothing left to pay
    _shot(page, artifacts, "paid")

    # Back on the programme: the statistics show what the programme paid on claims.
    page.goto(f"{base}/programme/{org}/programmes/{programme_id}")
    assert page.locator("#stat-paid").inner_text() == "¥150.00"
    assert page.locator("#stat-firms").inner_text() == "1"
    assert _zh("paid", "claim") in page.locator("#claims-table").inner_text()
    _shot(page, artifacts, "statistics")
    page.context.close()
    return {"programme": programme_id, "booking": booking_id, "claim": claim_id}
