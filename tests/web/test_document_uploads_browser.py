"""The two uploads in a real browser (Debian's Chromium via Playwright), in both languages: the owner sends the
business licence from the dashboard (a drawing is refused beside the field first), the admin sees it on the
verification page and verifies; then the owner adds a certificate with its scan in the listing wizard."""

from __future__ import annotations

import random
import re
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from marketplace.demo.builder import generate_uscc
from tests.bookings.live_server import LiveServer, live_settings
from tests.documents.samples import PDF, PNG, STEP
from tests.factories import SUZHOU, machine_payload
from tests.web.conftest import in_browser, live_server
from tests.web.test_browser_journey import PASSWORD, Journey, _admin_account

WRONG_TYPE = {"zh-CN": "请上传 PDF、JPEG 或 PNG 文件。", "en": "Upload a PDF, JPEG or PNG file."}


@pytest.fixture(scope="module")
def live(server_url: str, redis_url: str) -> Iterator[tuple[LiveServer, str]]:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = live_settings(data_dir=Path(data_dir))
        with live_server(server_url, redis_url, prefix="docs", settings=settings) as (server, url):
            yield server, url


def file(name: str, data: bytes, mime: str) -> dict[str, Any]:
    return {"name": name, "mimeType": mime, "buffer": data}


def draft_listing(base: str, email: str) -> str:
    """A site and a draft machine of the owner's organisation, made through the API; returns the asset's id."""
    with httpx.Client(base_url=base) as api:
        token = api.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        site = api.post("/api/v1/sites", json=SUZHOU, headers=headers)
        assert site.status_code == 201, site.text
        asset = api.post("/api/v1/assets", json=machine_payload(site.json()["id"], title="DMU 50"), headers=headers)
        assert asset.status_code == 201, asset.text
        return str(asset.json()["id"])


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_licence_and_certificate_scan_uploads_in_a_real_browser(
    live: tuple[LiveServer, str], artifacts: Path, locale: str
) -> None:
    in_browser(_uploads, live, artifacts, locale)


def _uploads(browser: Any, live: tuple[LiveServer, str], artifacts: Path, locale: str) -> None:
    server, db_url = live
    j = Journey(browser, server.url, locale, artifacts, server.database_url)
    tag = uuid.uuid4().hex[:6]
    company = f"苏州精工 {tag}" if locale == "zh-CN" else f"Suzhou Precision {tag}"
    owner_email = f"owner-{tag}@example.com"
    owner = j.page()
    j.register(owner, owner_email, company, "supplier")

    # The licence: a drawing is refused beside the field, in the page's language; a PNG is sent.
    owner.fill("input[name=uscc]", generate_uscc(random.Random(), "320500"))
    owner.set_input_files("input[name=licence]", files=[file("licence.step", STEP, "application/octet-stream")])
    owner.click("form.verify-form button")
    owner.wait_for_load_state("networkidle")
    assert owner.locator("p.field-error[id^=licence-]").inner_text() == WRONG_TYPE[locale]
    assert owner.locator("[role=alert]").count() >= 1
    owner.set_input_files("input[name=licence]", files=[file("营业执照.png", PNG, "image/png")])
    owner.click("form.verify-form button")
    owner.wait_for_url(re.compile(r".*/dashboard\?notice=submitted$"))
    j.shot(owner, "uploads-01-licence-sent")

    # The admin sees the licence beside the USCC and verifies.
    admin = j.page()
    j.sign_in(admin, _admin_account(db_url))
    admin.goto(f"{server.url}/admin/verification")
    section = admin.locator("section.verification", has_text=company)
    assert section.locator("a.licence-link").inner_text() == "营业执照.png"
    assert section.locator(".licence-preview img").count() == 1
    j.shot(admin, "uploads-02-admin-verification")
    section.locator("button[value=verified]").click()
    admin.wait_for_url(re.compile(r".*/admin/verification\?notice=verified$"))
    assert admin.locator("section.verification", has_text=company).count() == 0

    # The listing wizard's certificate step: a wrong scan is refused, a PDF is kept.
    asset_id = draft_listing(server.url, owner_email)
    org_id = str(owner.locator("a[href^='/factory/']").first.get_attribute("href")).removeprefix("/factory/")
    owner.goto(f"{server.url}/factory/{org_id}/assets/{asset_id}/certificates")
    owner.select_option("#f-standard", "ISO 9001")
    owner.fill("#f-number", "CQC-2026-001")
    owner.fill("#f-issuer", "CQC")
    owner.fill("#f-scope", "CNC machining of aluminium parts")
    owner.fill("#f-valid_from", "2025-01-01")
    owner.fill("#f-valid_until", "2028-01-01")
    owner.set_input_files("#f-scan", files=[file("cert.step", STEP, "application/octet-stream")])
    owner.click("form[enctype] button[type=submit]")
    owner.wait_for_load_state("networkidle")
    assert owner.locator("#f-scan-error").inner_text() == WRONG_TYPE[locale]
    assert owner.locator("#f-number").input_value() == "CQC-2026-001"
    owner.set_input_files("#f-scan", files=[file("iso9001.pdf", PDF, "application/pdf")])
    owner.click("form[enctype] button[type=submit]")
    owner.wait_for_url(re.compile(r".*/certificates\?notice=added$"))
    row = owner.locator("#certificates tbody tr", has_text="CQC-2026-001")
    assert row.locator("a[href$='/scan']").inner_text() == "iso9001.pdf"
    j.shot(owner, "uploads-03-certificate-step")
