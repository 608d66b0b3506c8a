"""The admin's certificate queue: what a factory adds in the listing wizard waits here (organisation, site or
whole company, standard, number, issuer, validity with expired ones flagged, the scan); verifying puts it on
the public listing page, rejecting needs a reason (a translated message beside the field, nothing changed
without one); the queue pages without repeats; nobody but a platform admin gets any of it."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.settings import Settings
from marketplace.web import i18n
from tests.documents.samples import JPEG, PDF
from tests.factories import admin_headers, create_admin, publish, signed_up
from tests.web.test_certificates_step import certificate_form, certificates, factory_listing
from tests.web.test_negotiation_pages import Browser


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    settings.data_dir = tmp_path
    return settings


async def _admin(app: Any, db: AsyncSession, locale: str = "en") -> Browser:
    admin = await create_admin(db)
    await db.commit()
    browser = await Browser(app, locale).sign_in(admin.email)
    browser.http.cookies.set("lang", locale)
    return browser


async def _add(m: dict[str, Any], name: str = "iso9001.pdf", content: bytes = PDF, **form: str) -> None:
    added = await m["page"].post(m["url"], data=certificate_form(**form), files={"scan": (name, content, "")})
    assert added.status_code == 303, added.text


def _row(html: str, cert_id: str) -> str:
    return html.split(f'data-row="{cert_id}"', 1)[1].split("</tr>", 1)[0]


async def _status(db: AsyncSession, cert_id: str) -> str:
    found = await db.execute(sa.text("SELECT status FROM certificates WHERE id = :id"), {"id": cert_id})
    return str(found.scalar_one())


async def test_a_new_certificate_waits_in_the_queue_with_its_details_and_scan(
    client: AsyncClient, app: Any, db: AsyncSession
) -> None:
    m = await factory_listing(client, db, app)
    await _add(m)
    await _add(
        m,
        "old.jpg",
        JPEG,
        standard="ISO 14001",
        number="EMS-old",
        valid_from="2020-01-01",
        valid_until="2023-01-01",
        applies_to="org",
    )
    by_number = {c["number"]: c["id"] for c in await certificates(client, m)}
    admin = await _admin(app, db)
    page = await admin.get("/admin/certificates")
    assert page.status_code == 200

    current = _row(page.text, by_number["CN-QMS-2026-0815"])
    for shown in ("ISO 9001", "China Quality Certification Centre", "CNAS", "Machining of aluminium and steel parts"):
        assert shown in current
    assert "Plant 1" in current and "whole company" not in current
    assert f'href="/certificates/{by_number["CN-QMS-2026-0815"]}/scan" target="_blank"' in current
    assert "<img" not in current and "data-expired" not in current  # a PDF: a link, no inline preview

    old = _row(page.text, by_number["EMS-old"])
    assert "whole company" in old and "data-expired" in old and "2023-01-01" in old
    assert f'<img src="/certificates/{by_number["EMS-old"]}/scan"' in old
    scan = await admin.get(f"/certificates/{by_number['EMS-old']}/scan")
    assert scan.status_code == 200 and scan.content == JPEG

    overview = await admin.get("/admin")
    assert 'data-count="certificates">2<' in overview.text and 'href="/admin/certificates"' in overview.text


async def test_a_verified_certificate_leaves_the_queue_and_shows_on_the_listing_page(
    client: AsyncClient, app: Any, db: AsyncSession
) -> None:
    m = await factory_listing(client, db, app)
    await _add(m)
    (cert,) = await certificates(client, m)
    admin = await _admin(app, db)
    done = await admin.post(f"/admin/certificates/{cert['id']}/verify")
    assert done.status_code == 303 and "notice=verified" in done.headers["location"]
    after = await admin.get(done.headers["location"])
    assert "The certificate is verified" in after.text and f'data-row="{cert["id"]}"' not in after.text
    assert await _status(db, cert["id"]) == "verified"

    await publish(client, m["headers"], await admin_headers(client, db), m["asset"]["id"])
    public = (await client.get(f"/listings/{m['asset']['id']}")).text
    assert "CN-QMS-2026-0815" in public.split('<ul class="certificates">')[1].split("</ul>")[0]

    again = await admin.post(f"/admin/certificates/{cert['id']}/reject", data={"reason": "too late"})
    assert "error=changed" in again.headers["location"]
    assert await _status(db, cert["id"]) == "verified"


async def test_a_rejection_goes_back_to_the_factory_with_the_reason(
    client: AsyncClient, app: Any, db: AsyncSession
) -> None:
    m = await factory_listing(client, db, app)
    await _add(m)
    (cert,) = await certificates(client, m)
    admin = await _admin(app, db)
    done = await admin.post(f"/admin/certificates/{cert['id']}/reject", data={"reason": "The scan is unreadable"})
    assert "notice=rejected" in done.headers["location"]
    assert await _status(db, cert["id"]) == "rejected"
    wizard = (await m["page"].get(m["url"])).text
    assert "The scan is unreadable" in wizard


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
async def test_rejecting_without_a_reason_is_a_translated_error_beside_the_field_and_changes_nothing(
    client: AsyncClient, app: Any, db: AsyncSession, locale: str
) -> None:
    m = await factory_listing(client, db, app)
    await _add(m)
    (cert,) = await certificates(client, m)
    admin = await _admin(app, db, locale)
    refused = await admin.post(f"/admin/certificates/{cert['id']}/reject", data={"reason": "  "})
    assert refused.status_code == 303 and "error=reason_required" in refused.headers["location"]
    page = await admin.get(refused.headers["location"])
    english = "Give a reason so the factory knows what to correct."
    message = i18n.translations(locale).gettext(english)
    assert (message != english) == (locale == "zh-CN")
    assert f'id="reject-{cert["id"]}-error">{message}<' in page.text
    assert 'aria-invalid="true"' in _row(page.text, cert["id"])
    assert await _status(db, cert["id"]) == "pending"


async def test_paging_walks_every_waiting_certificate_once(client: AsyncClient, app: Any, db: AsyncSession) -> None:
    m = await factory_listing(client, db, app)
    for n in range(5):
        await _add(m, number=f"QMS-{n}")
    ids = [c["id"] for c in await certificates(client, m)]
    admin = await _admin(app, db)
    seen: list[str] = []
    url = "/admin/certificates?limit=2"
    for _ in range(10):
        page = await admin.get(url)
        assert page.status_code == 200
        seen += re.findall(r'data-row="([^"]+)"', page.text)
        link = re.search(r'href="([^"]+)" rel="next"', page.text)
        if link is None:
            break
        url = unescape(link.group(1))
    assert len(seen) == len(set(seen)) == 5 and sorted(seen) == sorted(ids)
    assert (await admin.get("/admin/certificates?cursor=garbage")).status_code == 422


async def test_no_one_but_a_platform_admin_gets_any_route(client: AsyncClient, app: Any, db: AsyncSession) -> None:
    m = await factory_listing(client, db, app)
    await _add(m)
    (cert,) = await certificates(client, m)
    buyer_reg, _ = await signed_up(client, roles=("buyer",), country="CN")
    buyer = await Browser(app).sign_in(buyer_reg["email"])
    for person in (m["page"], buyer):  # the certificate's own factory is no admin either
        assert (await person.get("/admin/certificates")).status_code == 403
        assert (await person.post(f"/admin/certificates/{cert['id']}/verify")).status_code == 403
        rejected = await person.post(f"/admin/certificates/{cert['id']}/reject", data={"reason": "no"})
        assert rejected.status_code == 403
    anonymous = await client.get("/admin/certificates")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    assert await _status(db, cert["id"]) == "pending"


async def test_the_queue_speaks_chinese_and_english_without_codes(
    client: AsyncClient, app: Any, db: AsyncSession
) -> None:
    m = await factory_listing(client, db, app)
    await _add(m, valid_from="2020-01-01", valid_until="2023-01-01", applies_to="org")
    for locale, words in (
        ("en", ("Certificates to verify", "whole company", "expired", "Open the scan", "Verify", "Reject")),
        ("zh-CN", ("待核验证书", "全公司", "已过期", "打开扫描件", "通过认证", "驳回")),
    ):
        admin = await _admin(app, db, locale)
        html = (await admin.get("/admin/certificates")).text
        text = unescape(re.sub(r"<[^>]+>", " ", html.split("<main", 1)[-1]))
        assert all(w in text for w in words), (locale, text)
        assert not re.search(r"\b(pending|reason_required|None|ISO_9001)\b", text)
        assert 'href="/admin/certificates" aria-current="page"' in html
