"""Every form of the web UI, in a real browser (Debian's Chromium via Playwright), in zh-CN and en: submitted
empty and with invalid input, it shows a message in the page's language beside the wrong field (inside the
field's ``.field`` box, the input pointing to it with aria-describedby), a summary at the top listing every
message, and nothing is saved (checked in the database)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.bookings.live_server import LiveServer, sql
from tests.web.conftest import in_browser, live_server

PASSWORD = "correct-horse-battery"
CJK = re.compile(r"[\u4e00-\u9fff]")
# Raw Pydantic or Python text, or a schema field name, must never reach a person.
RAW = ("String should", "Input should", "Value error", "Field required", "could not convert", "isoformat",
       "region_code", "budget_max", "earliest_start", "refund_amount", "Traceback")  # fmt: skip


def run_sync(coro: Any) -> Any:
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="module")
def live(server_url: str, redis_url: str) -> Iterator[LiveServer]:
    with live_server(server_url, redis_url, prefix="forms") as (server, _url):
        yield server


def count(server: LiveServer, statement: str, **params: Any) -> int:
    return int(run_sync(sql(server.database_url, statement, params))[0][0])


class Forms:
    """One locale's pages: submit a form, then check the messages beside the fields and in the summary."""

    def __init__(self, browser: Any, server: LiveServer, locale: str) -> None:
        self.browser, self.server, self.locale, self.base = browser, server, locale, server.url

    def page(self) -> Any:
        context = self.browser.new_context(
            locale=self.locale,
            timezone_id="Asia/Shanghai",
            extra_http_headers={"Accept-Language": self.locale},
            viewport={"width": 1100, "height": 900},
        )
        return context.new_page()

    def language(self, text: str) -> None:
        """The text is in the page's language and holds no raw Pydantic/Python text or field name."""
        assert text.strip(), "an empty message"
        for raw in RAW:
            assert raw not in text, (raw, text)
        if self.locale == "zh-CN":
            assert CJK.search(text), text
        else:
            assert not CJK.search(text), text

    def submit(self, page: Any, form: str) -> None:
        page.click(f"{form} button[type=submit]")
        page.wait_for_load_state("networkidle")

    def expect(self, page: Any, *ids: str) -> None:
        """A summary at the top, and a message beside each field (by element id): in the same ``.field`` box,
        pointed to by the field's aria-describedby when it is an input."""
        summary = page.locator("[data-error-summary]").first
        assert summary.is_visible(), page.content()[-3000:]
        self.language(summary.inner_text())
        for field_id in ids:
            error = page.locator(f"[id='{field_id}-error']")
            assert error.count() == 1 and error.is_visible(), (field_id, page.content()[-4000:])
            self.language(error.inner_text())
            beside = page.evaluate(
                """(id) => {
                    const error = document.getElementById(id + '-error'), field = document.getElementById(id);
                    const box = error && error.closest('.field');
                    if (!box || !field || !(box === field || box.contains(field))) return false;
                    const described = field.getAttribute('aria-describedby');
                    return !['INPUT', 'SELECT', 'TEXTAREA'].includes(field.tagName)
                        || (described || '').split(' ').includes(id + '-error');
                }""",
                field_id,
            )
            assert beside, f"the message of {field_id} is not beside its field"
            # The summary links to the field.
            assert summary.locator(f"a[href='#{field_id}']").count() == 1, (field_id, summary.inner_html())

    def accepted(self, page: Any, url: str) -> None:
        """The form was accepted: the browser went on to ``url`` (else the page's errors say why not)."""
        wrong = page.evaluate(
            "() => [...document.querySelectorAll('.field-error')].map(e => e.id + ': ' + e.innerText)"
        )
        assert re.search(url, page.url), wrong or page.content()[-3000:]

    def no_field_error(self, page: Any, field_id: str) -> None:
        assert page.locator(f"[id='{field_id}-error']").count() == 0, field_id


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_every_form_shows_its_errors_in_the_page_language(live: LiveServer, locale: str) -> None:
    in_browser(_every_form, live, locale)


def _every_form(browser: Any, server: LiveServer, locale: str) -> None:
    f = Forms(browser, server, locale)
    tag = uuid.uuid4().hex[:6]
    factory_email, buyer_email = f"factory-{tag}@example.com", f"buyer-{tag}@example.com"

    # Registration: empty, then an over-long company name, a bad country and e-mail; nothing saved.
    page = f.page()
    page.goto(f"{f.base}/register")
    page.select_option("#locale", locale)
    f.submit(page, "form[action='/register']")
    f.expect(page, "full_name", "email", "password", "org_name", "country", "roles")
    page.fill("#full_name", "Test Person")
    page.fill("#email", "not-an-address")
    page.fill("#password", "short")
    page.fill("#org_name", "X" * 201)
    page.fill("#country", "12")
    page.check("input[name=role_supplier]")
    f.submit(page, "form[action='/register']")
    f.expect(page, "email", "password")
    assert count(server, "SELECT count(*) FROM organisations WHERE name = :n", n="X" * 201) == 0
    page.fill("#email", factory_email)
    page.fill("#password", PASSWORD)
    f.submit(page, "form[action='/register']")
    f.expect(page, "org_name", "country")
    assert count(server, "SELECT count(*) FROM users WHERE email = :e", e=factory_email) == 0
    page.fill("#org_name", f"Works {tag}")
    page.fill("#country", "CN")
    page.fill("#password", PASSWORD)
    f.submit(page, "form[action='/register']")
    page.wait_for_url(re.compile(r".*/dashboard$"))
    run_sync(
        sql(server.database_url, "UPDATE users SET email_verified_at = now() WHERE email = :e", {"e": factory_email})
    )
    org = str(
        run_sync(sql(server.database_url, "SELECT id FROM organisations WHERE name = :n", {"n": f"Works {tag}"}))[0][0]
    )
    run_sync(
        sql(server.database_url, "UPDATE organisations SET verification_status = 'verified' WHERE id = :o", {"o": org})
    )

    # Sign-in: empty, then a wrong password (the summary says so, in the page's language).
    visitor = f.page()
    visitor.goto(f"{f.base}/login")
    f.submit(visitor, "form[action='/login']")
    f.expect(visitor, "email", "password")
    visitor.fill("#email", factory_email)
    visitor.fill("#password", "wrong-password-123")
    f.submit(visitor, "form[action='/login']")
    f.language(visitor.locator("[data-error-summary]").inner_text())
    # Forgotten password: empty and malformed address.
    visitor.goto(f"{f.base}/forgot-password")
    f.submit(visitor, "form[action='/forgot-password']")
    f.expect(visitor, "email")
    visitor.fill("#email", "nobody@")
    f.submit(visitor, "form[action='/forgot-password']")
    f.expect(visitor, "email")

    # Change of password: empty (the new one is too short), then a wrong current one.
    page.goto(f"{f.base}/account/password")
    f.submit(page, "form[action='/account/password']")
    f.expect(page, "new_password")
    page.fill("#current_password", "not-my-password")
    page.fill("#new_password", "a-long-enough-new-password")
    f.submit(page, "form[action='/account/password']")
    f.expect(page, "current_password")

    # Team invitation: empty, then malformed; no invitation stored.
    page.goto(f"{f.base}/orgs/{org}/team")
    f.submit(page, "#invite-form")
    f.expect(page, "invite-email")
    page.fill("#invite-email", "someone@")
    f.submit(page, "#invite-form")
    f.expect(page, "invite-email")
    assert count(server, "SELECT count(*) FROM org_invitations WHERE org_id = :o", o=org) == 0

    # Site: empty, then region "abc" and a latitude that is not a number; nothing saved.
    site_form = f"form[action='/factory/{org}/sites/new']"
    page.goto(f"{f.base}/factory/{org}/sites/new")
    f.submit(page, site_form)
    f.expect(page, "f-name", "f-address", "f-region_code", "f-latitude", "f-longitude")
    for field, value in {"name": "Plant", "address": "1 Road", "region_code": "abc", "latitude": "north",
                         "longitude": "120.6"}.items():  # fmt: skip
        page.fill(f"#f-{field}", value)
    f.submit(page, site_form)
    f.expect(page, "f-latitude")
    page.fill("#f-latitude", "31.3")
    f.submit(page, site_form)
    f.expect(page, "f-region_code")
    assert count(server, "SELECT count(*) FROM sites WHERE org_id = :o", o=org) == 0
    page.fill("#f-region_code", "320500")
    f.submit(page, site_form)
    page.wait_for_url(re.compile(r".*/assets/new$"))

    # Listing: empty, then a negative rate and an envelope that is not a number; nothing saved.
    asset_form = f"form[action='/factory/{org}/assets/new']"
    f.submit(page, asset_form)
    f.expect(page, "f-title", "f-process_codes")
    page.fill("#f-title", f"Mill {tag}")
    page.select_option("#f-process_codes", ["machining.milling.cnc_3axis"])
    page.fill("#f-hourly_rate", "-1")
    page.fill("#f-env_x", "0")
    f.submit(page, asset_form)
    f.expect(page, "f-hourly_rate", "f-env_x")
    assert count(server, "SELECT count(*) FROM assets WHERE org_id = :o", o=org) == 0
    page.select_option("#f-process_codes", ["machining.milling.cnc_3axis"])
    page.fill("#f-hourly_rate", "300")
    page.fill("#f-env_x", "800")
    page.fill("#f-env_y", "500")
    page.fill("#f-env_z", "500")
    page.fill("#f-tolerance_mm", "0.01")
    f.submit(page, asset_form)
    f.accepted(page, r"/availability\?created=1$")
    asset = re.search(r"/assets/([0-9a-f-]{36})/", page.url)
    assert asset
    asset_id = asset.group(1)

    # Availability: an exception that ends before it starts stays on its row with a message; nothing saved.
    avail_form = f"form[action='/factory/{org}/assets/{asset_id}/availability']"
    page.fill("#d0s1a", "08:00")
    page.locator("input[name=exc_start]").last.fill("2030-05-10")
    page.locator("input[name=exc_end]").last.fill("2030-05-03")
    page.fill("#d1s1a", "08:00")  # a shift with no end
    f.submit(page, avail_form)
    f.expect(page, "f-exc_0", "f-d0_s1", "f-d1_s1")
    assert page.locator("#f-exc_0 input[name=exc_start]").input_value() == "2030-05-10"
    assert count(server, "SELECT count(*) FROM availability_exceptions WHERE asset_id = :a", a=asset_id) == 0

    # API key and webhook: no name, a URL that is not one.
    page.goto(f"{f.base}/factory/{org}/integrations")
    page.fill("#key-name", "")
    f.submit(page, "form[action$='/integrations/api-keys']")
    f.expect(page, "key-name")
    assert count(server, "SELECT count(*) FROM api_keys WHERE org_id = :o", o=org) == 0
    page.fill("#hook-url", "not a url")
    f.submit(page, "form[action$='/integrations/webhooks']")
    f.expect(page, "hook-url")

    # The buyer side: a request with no process or dates, then a deadline before the earliest start and a
    # negative budget; an empty optional latitude is "not given" (no message on it).
    run_sync(sql(server.database_url, "UPDATE assets SET status = 'published' WHERE id = :a", {"a": asset_id}))
    buyer = f.page()
    buyer.goto(f"{f.base}/register")
    for field, value in {"full_name": "Buyer", "email": buyer_email, "password": PASSWORD,
                         "org_name": f"Buyer {tag}", "country": "CN"}.items():  # fmt: skip
        buyer.fill(f"#{field}", value)
    buyer.check("input[name=role_buyer]")
    buyer.select_option("#locale", locale)
    f.submit(buyer, "form[action='/register']")
    buyer.wait_for_url(re.compile(r".*/dashboard$"))
    run_sync(
        sql(server.database_url, "UPDATE users SET email_verified_at = now() WHERE email = :e", {"e": buyer_email})
    )
    buyer_org = str(
        run_sync(sql(server.database_url, "SELECT id FROM organisations WHERE name = :n", {"n": f"Buyer {tag}"}))[0][0]
    )
    request_form = f"form[action='/buyer/{buyer_org}/requests/new']"
    buyer.goto(f"{f.base}/buyer/{buyer_org}/requests/new")
    buyer.fill("#f-quantity", "")
    f.submit(buyer, request_form)
    f.expect(buyer, "f-process_code", "f-earliest", "f-deadline")
    buyer.select_option("#f-process_code", "machining.milling.cnc_3axis")
    buyer.fill("#f-hours", "4")
    buyer.fill("#f-earliest", "2030-06-10")
    buyer.fill("#f-deadline", "2030-06-01")
    buyer.fill("#f-budget", "-5")
    buyer.fill("#f-latitude", "")
    f.submit(buyer, request_form)
    f.expect(buyer, "f-deadline", "f-budget")
    f.no_field_error(buyer, "f-latitude")
    assert count(server, "SELECT count(*) FROM requests WHERE buyer_org_id = :o", o=buyer_org) == 0

    # Booking: no start time, then a start that is not a time and no hours.
    book_form = f"form[action='/book/{asset_id}']"
    buyer.goto(f"{f.base}/book/{asset_id}")
    buyer.fill("#f-start", "")
    f.submit(buyer, book_form)
    f.expect(buyer, "f-start")
    buyer.fill("#f-hours", "-2")
    f.submit(buyer, book_form)
    f.expect(buyer, "f-hours")
    assert count(server, "SELECT count(*) FROM bookings WHERE asset_id = :a", a=asset_id) == 0
