"""The whole marketplace in a real browser (Debian's Chromium via Playwright), in both languages:
a supplier registers → the admin verifies it and approves its machine → a buyer searches, posts a request,
sees ranked matches, books and accepts the invoice terms → the supplier accepts, starts and completes →
the buyer confirms and reviews. Screenshots of the key pages go to test-artifacts/screenshots/."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from marketplace.core.security import hash_password
from tests.bookings.live_server import LiveServer, sql
from tests.web.conftest import in_browser, live_server, run_sync

PASSWORD = "correct-horse-battery"
USCC = {"zh-CN": "91440300708461136T", "en": "914403001922038216"}  # real-world codes, valid check characters
# The business licence the owner uploads (the document store reads the type from the bytes).
LICENCE = {"name": "licence.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n1 0 obj <<>> endobj\n%%EOF\n"}


@pytest.fixture(scope="module")
def live(server_url: str, redis_url: str) -> Iterator[tuple[LiveServer, str]]:
    with live_server(server_url, redis_url, prefix="web") as (server, url):
        yield server, url


def _admin_account(db_url: str) -> str:
    email = f"admin-{uuid.uuid4().hex[:6]}@example.com"
    run_sync(
        sql(
            db_url,
            "INSERT INTO users (id, email, password_hash, full_name, locale, is_platform_admin, "
            "is_active, email_verified_at) VALUES (:id, :e, :h, 'Admin', 'en', true, true, now())",
            {"id": uuid.uuid4(), "e": email, "h": hash_password(PASSWORD)},
        )
    )
    return email


class Journey:
    def __init__(self, browser: Any, base: str, locale: str, shots: Path, db_url: str) -> None:
        self.browser, self.base, self.locale, self.shots = browser, base, locale, shots
        self.db_url = db_url

    def page(self) -> Any:
        context = self.browser.new_context(
            locale=self.locale,
            timezone_id="Asia/Shanghai",
            extra_http_headers={"Accept-Language": self.locale},
            viewport={"width": 1100, "height": 900},
        )
        return context.new_page()

    def shot(self, page: Any, name: str) -> None:
        page.screenshot(path=str(self.shots / f"{self.locale}-{name}.png"), full_page=True)

    def sign_in(self, page: Any, email: str) -> None:
        page.goto(f"{self.base}/login")
        page.fill("#email", email)
        page.fill("#password", PASSWORD)
        page.click("form[action='/login'] button[type=submit]")
        page.wait_for_load_state("networkidle")

    def register(self, page: Any, email: str, company: str, role: str) -> None:
        page.goto(f"{self.base}/register")
        page.fill("#full_name", "Test Person")
        page.fill("#email", email)
        page.fill("#password", PASSWORD)
        page.fill("#org_name", company)
        page.fill("#country", "CN")
        page.check(f"input[name=role_{role}]")
        page.select_option("#locale", self.locale)
        page.click("form[action='/register'] button[type=submit]")
        page.wait_for_url(re.compile(r".*/dashboard$"))
        # The address is then taken as verified (tests/test_email_flows.py follows the e-mailed link itself).
        run_sync(
            sql(self.db_url, "UPDATE users SET email_verified_at = now() WHERE lower(email) = lower(:e)", {"e": email})
        )


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_end_to_end_journey_in_a_real_browser(live: tuple[LiveServer, str], artifacts: Path, locale: str) -> None:
    in_browser(_journey, live, artifacts, locale)


def _journey(browser: Any, live: tuple[LiveServer, str], artifacts: Path, locale: str) -> None:
    server, db_url = live
    j = Journey(browser, server.url, locale, artifacts, server.database_url)
    tag = uuid.uuid4().hex[:6]
    admin_email = _admin_account(db_url)
    supplier_email, buyer_email = f"factory-{tag}@example.com", f"buyer-{tag}@example.com"
    title = f"DMU 50 五轴 {tag}" if locale == "zh-CN" else f"DMU 50 five-axis {tag}"

    # 1. A factory registers and prepares its first machine.
    supplier = j.page()
    j.register(supplier, supplier_email, f"苏州工厂 {tag}" if locale == "zh-CN" else f"Suzhou Works {tag}", "supplier")
    assert ("工作台" if locale == "zh-CN" else "Dashboard") in supplier.content()
    # The owner sends the company for verification (a Chinese company needs its USCC).
    supplier.fill("input[name=uscc]", "91350200776049653B")
    supplier.set_input_files("input[name=licence]", files=[LICENCE])
    supplier.click("form.verify-form button")
    assert supplier.locator(".error").count() == 1  # the check character is wrong
    supplier.fill("input[name=uscc]", USCC[locale])
    supplier.set_input_files("input[name=licence]", files=[LICENCE])
    supplier.click("form.verify-form button")
    assert supplier.locator(".notice").count() == 1
    supplier.click("a[href^='/factory/']")
    factory_url = supplier.url
    supplier.goto(f"{factory_url}/sites/new")
    for field, value in {
        "name": "Plant 1",
        "address": "88 Industrial Rd",
        "country": "CN",
        "region_code": "320500",
        "latitude": "31.30",
        "longitude": "120.62",
        "timezone": "Asia/Shanghai",
    }.items():
        supplier.fill(f"#f-{field}", value)
    supplier.click("form button[type=submit].primary")
    supplier.wait_for_url(re.compile(r".*/assets/new$"))
    supplier.fill("#f-title", title)
    supplier.select_option("#f-process_codes", ["machining.milling.cnc_5axis"])
    supplier.select_option("#f-materials", ["al_6061"])
    for field, value in {
        "env_x": "800",
        "env_y": "500",
        "env_z": "500",
        "tolerance_mm": "0.01",
        "hourly_rate": "-1",
        "setup_fee": "200",
    }.items():
        supplier.fill(f"#f-{field}", value)
    supplier.click("form button[type=submit].primary")
    # Bad input: the error is shown next to the field, not as a stack trace.
    assert supplier.locator("#f-hourly_rate-error").is_visible()
    assert "Traceback" not in supplier.content()
    j.shot(supplier, "01-listing-form-error")
    supplier.fill("#f-hourly_rate", "300")
    supplier.select_option("#f-process_codes", ["machining.milling.cnc_5axis"])
    supplier.select_option("#f-materials", ["al_6061"])
    supplier.click("form button[type=submit].primary")
    supplier.wait_for_url(re.compile(r".*/availability\?created=1$"))
    for day in range(7):  # open around the clock (an end equal to the start is 24 hours)
        supplier.fill(f"#d{day}s1a", "00:00")
        supplier.fill(f"#d{day}s1b", "00:00")
    j.shot(supplier, "02-availability-editor")
    supplier.click("form button[type=submit].primary")
    supplier.wait_for_url(re.compile(r".*/factory/[0-9a-f-]+\?notice=saved$"))
    # Not verified yet: submitting is refused with the reason shown.
    supplier.click("form[action$='/submit'] button")
    supplier.wait_for_load_state("networkidle")
    assert supplier.locator(".error").count() >= 1, supplier.content()[-3000:]

    # 2. The admin verifies the company; the factory submits; the admin approves the machine.
    admin = j.page()
    j.sign_in(admin, admin_email)
    admin.goto(f"{server.url}/admin/verification")
    row = admin.locator("section.verification", has_text="Suzhou Works" if locale == "en" else "苏州工厂").first
    assert row.locator("a.licence-link").count() == 1, admin.content()[-4000:]
    row.locator("input[name=reason]").fill("licence checked")
    row.locator("button[value=verified]").click()
    admin.wait_for_load_state("networkidle")
    supplier.goto(factory_url)
    supplier.click("form[action$='/submit'] button")
    supplier.wait_for_load_state("networkidle")
    admin.goto(f"{server.url}/admin/moderation")
    j.shot(admin, "03-admin-moderation")
    admin.locator("table[data-rows=moderation] tr", has_text=title).locator("form[action$='/approve'] button").click()
    admin.wait_for_load_state("networkidle")

    # 3. A buyer searches, posts a request, sees ranked matches and books.
    buyer = j.page()
    j.register(buyer, buyer_email, f"东莞买家 {tag}" if locale == "zh-CN" else f"Dongguan Buyer {tag}", "buyer")
    buyer.goto(f"{server.url}/")
    buyer.select_option("#home-process", "machining.milling.cnc_3axis")  # the home page's quick search
    buyer.click("form.quick-search button[type=submit]")
    buyer.wait_for_selector(f"text={title}")
    j.shot(buyer, "04-search-results")
    buyer.click(f"text={title}")
    buyer.wait_for_selector("table.calendar")
    listing_url = buyer.url
    j.shot(buyer, "05-listing-week-calendar")
    buyer.goto(f"{server.url}/dashboard")
    buyer.click("a[href^='/buyer/']")
    buyer.click("a[href$='/requests/new']")
    today = datetime.now(UTC).astimezone().date()
    buyer.select_option("#f-process_code", "machining.milling.cnc_3axis")
    buyer.select_option("#f-material", "al_6061")
    buyer.fill("#f-hours", "2")
    buyer.fill("#f-earliest", today.isoformat())
    buyer.fill("#f-deadline", (today + timedelta(days=10)).isoformat())
    buyer.fill("#f-budget", "100000")
    buyer.click("form button[type=submit].primary")
    buyer.wait_for_selector("table.explain")
    assert buyer.locator(".result", has_text=title).count() == 1
    j.shot(buyer, "06-matches-with-explanations")
    buyer.locator(".result", has_text=title).locator("form[action^='/book/'] button").click()
    buyer.wait_for_selector("#booking-status")
    assert buyer.locator("#booking-status").get_attribute("data-status") == "held"
    j.shot(buyer, "07-booking-held-invoice")
    buyer.click("form[action$='/pay'] button")
    buyer.wait_for_load_state("networkidle")
    assert buyer.locator("#booking-status").get_attribute("data-status") == "requested"
    booking_url = buyer.url

    # 4. The factory accepts, starts and completes the job.
    supplier.goto(f"{factory_url}/bookings")
    for action in ("accept", "start", "complete"):
        reason = supplier.locator(f"form[action$='/{action}'] input[name=reason]")
        if reason.count():  # completing before the booked start asks why
            reason.first.fill("finished ahead of the slot")
        supplier.locator(f"form[action$='/{action}'] button").first.click()
        supplier.wait_for_load_state("networkidle")
        assert supplier.locator(".error").count() == 0, supplier.content()
    j.shot(supplier, "08-factory-bookings")
    supplier.goto(factory_url)
    assert supplier.locator("#utilisation svg[role=img]").count() >= 1  # the utilisation chart

    # 5. The buyer confirms completion and reviews.
    buyer.goto(booking_url)
    buyer.click("form[action$='/confirm'] button")
    buyer.wait_for_load_state("networkidle")
    assert buyer.locator("#booking-status").get_attribute("data-status") == "settled"
    assert buyer.locator("#booking-status").inner_text() == ("已结算" if locale == "zh-CN" else "settled")
    buyer.select_option("#rating", "5")
    buyer.fill("#comment", "准时，精度高" if locale == "zh-CN" else "on time and precise")
    buyer.click("form[action$='/review'] button")
    buyer.wait_for_load_state("networkidle")
    timeline = [li.get_attribute("data-status") for li in buyer.locator(".timeline li").all()]
    assert timeline == ["held", "requested", "confirmed", "in_progress", "completed", "settled"]
    j.shot(buyer, "09-booking-settled-timeline")
    # The review is public on the listing page.
    buyer.goto(listing_url)
    assert ("准时，精度高" if locale == "zh-CN" else "on time and precise") in buyer.locator(".reviews").inner_text()
    admin.goto(f"{server.url}/admin")
    assert admin.locator("#trial-balanced.notice").count() == 1  # the ledger balances
    # The factory's dashboard now charts its earnings (from the ledger) next to utilisation.
    supplier.goto(factory_url)
    assert supplier.locator("section svg.bar, section svg rect.bar").count() >= 1
    j.shot(supplier, "11-factory-dashboard-charts")
    for p in (supplier, admin, buyer):
        p.context.close()


def test_a_buyer_cannot_open_a_factory_page_in_the_browser(live: tuple[LiveServer, str], artifacts: Path) -> None:
    in_browser(_buyer_denied, live, artifacts)


def _buyer_denied(browser: Any, live: tuple[LiveServer, str], artifacts: Path) -> None:
    server, _ = live
    j = Journey(browser, server.url, "en", artifacts, server.database_url)
    tag = uuid.uuid4().hex[:6]
    factory = j.page()
    j.register(factory, f"f-{tag}@example.com", f"Factory {tag}", "supplier")
    factory.click("a[href^='/factory/']")
    factory_url = factory.url
    buyer = j.page()
    j.register(buyer, f"b-{tag}@example.com", f"Buyer {tag}", "buyer")
    response = buyer.goto(factory_url)
    assert response is not None and response.status == 404
    j.shot(buyer, "10-buyer-denied-factory")
    factory.context.close()
    buyer.context.close()


def test_csrf_is_enforced_for_browser_forms(live: tuple[LiveServer, str]) -> None:
    in_browser(_csrf_enforced, live)


def _csrf_enforced(browser: Any, live: tuple[LiveServer, str]) -> None:
    server, _ = live
    j = Journey(browser, server.url, "en", Path("/tmp"), server.database_url)
    page = j.page()
    page.goto(f"{server.url}/login")
    page.evaluate("document.querySelector(\"form[action='/login'] input[name=csrf_token]\").value = 'forged'")
    page.fill("#email", "nobody@example.com")
    page.fill("#password", PASSWORD)
    with page.expect_response(lambda r: r.url.endswith("/login") and r.request.method == "POST") as info:
        page.click("form[action='/login'] button[type=submit]")
    assert info.value.status == 403
    assert "expired" in page.content()
    page.context.close()


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_pages_are_readable_at_375_pixels(live: tuple[LiveServer, str], artifacts: Path, locale: str) -> None:
    in_browser(_narrow_screen, live, artifacts, locale)


def _narrow_screen(browser: Any, live: tuple[LiveServer, str], artifacts: Path, locale: str) -> None:
    server, _ = live
    context = browser.new_context(
        locale=locale, extra_http_headers={"Accept-Language": locale}, viewport={"width": 375, "height": 800}
    )
    page = context.new_page()
    for path, name in (("/", "home"), ("/search", "search"), ("/login", "login"), ("/register", "register")):
        page.goto(f"{server.url}{path}")
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= 375, (path, overflow)
        # Every input has a label (keyboard and screen-reader users).
        unlabeled = page.evaluate("""[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
            .filter(el => !el.labels || el.labels.length === 0).filter(el => !el.getAttribute('aria-label'))
            .map(el => el.name || el.id)""")
        assert unlabeled == [], (path, unlabeled)
        page.screenshot(path=str(artifacts / f"{locale}-mobile-{name}.png"), full_page=True)
    # Keyboard: the first Tab reaches the skip link.
    page.goto(f"{server.url}/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    context.close()
