"""The listing wizard's certificate step: add a certificate with its scan, see it on the listing page (standard,
scope, expiry, an "expired" badge) once a platform admin verified it, remove it; a wrong file, a missing file
or dates out of order are translated field errors and save nothing; the scan is for the owner, the admins and
buyers who booked with the owner only. The API takes the scan as ``document_id``."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.settings import Settings
from tests.documents.helpers import uploaded
from tests.documents.samples import JPEG, PDF, STEP
from tests.factories import admin_headers, create_asset, machine_payload, publish, signed_up, supplier
from tests.web.test_negotiation_pages import Browser


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    settings.data_dir = tmp_path
    return settings


async def factory_listing(client: AsyncClient, db: AsyncSession, app: Any, *, locale: str = "en") -> dict[str, Any]:
    reg, headers, site = await supplier(client, db)
    asset = await create_asset(client, headers, machine_payload(site["id"], title="5-axis mill DMU 50"))
    page = await Browser(app, locale).sign_in(reg["email"])
    page.http.cookies.set("lang", locale)  # the language switch: this browser's choice over the account's
    org_id = reg["org"]["id"]
    return {
        "org_id": org_id,
        "headers": headers,
        "asset": asset,
        "page": page,
        "url": f"/factory/{org_id}/assets/{asset['id']}/certificates",
    }


def certificate_form(**overrides: str) -> dict[str, str]:
    today = date.today()
    return {
        "standard": "ISO 9001",
        "number": "CN-QMS-2026-0815",
        "issuer": "China Quality Certification Centre",
        "accreditation_body": "CNAS",
        "scope": "Machining of aluminium and steel parts",
        "valid_from": (today - timedelta(days=300)).isoformat(),
        "valid_until": (today + timedelta(days=700)).isoformat(),
        "applies_to": "site",
        **overrides,
    }


async def certificates(client: AsyncClient, m: dict[str, Any]) -> list[dict[str, Any]]:
    resp = await client.get(f"/api/v1/orgs/{m['org_id']}/certificates", headers=m["headers"])
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def test_a_certificate_with_its_scan_shows_on_the_listing_page_with_scope_and_expiry(
    client: AsyncClient, app: Any, db: AsyncSession
) -> None:
    m = await factory_listing(client, db, app)
    step = await m["page"].get(m["url"])
    assert step.status_code == 200 and "5-axis mill DMU 50" in step.text
    added = await m["page"].post(m["url"], data=certificate_form(), files={"scan": ("iso9001.pdf", PDF, "")})
    assert added.status_code == 303, added.text
    expired = certificate_form(
        standard="ISO 14001",
        number="EMS-old",
        scope="Environmental management of machining",
        valid_from="2020-01-01",
        valid_until="2023-01-01",
        applies_to="org",
    )
    assert (await m["page"].post(m["url"], data=expired, files={"scan": ("old.jpg", JPEG, "")})).status_code == 303
    listed = await certificates(client, m)
    assert {c["standard"] for c in listed} == {"ISO 9001", "ISO 14001"}
    assert all(c["document_id"] for c in listed)
    assert {c["site_id"] is None for c in listed} == {True, False}
    shown = (await m["page"].get(m["url"])).text
    assert "CN-QMS-2026-0815" in shown and "iso9001.pdf" in shown and "awaiting check" in shown

    admin = await admin_headers(client, db)
    for cert in listed:
        ok = await client.post(
            f"/api/v1/admin/certificates/{cert['id']}/verify", json={"decision": "verified"}, headers=admin
        )
        assert ok.status_code == 200, ok.text
    await publish(client, m["headers"], admin, m["asset"]["id"])
    public = (await client.get(f"/listings/{m['asset']['id']}")).text
    certs_part = public.split('<ul class="certificates">')[1].split("</ul>")[0]
    assert "ISO 9001" in certs_part and "Machining of aluminium and steel parts" in certs_part
    assert certificate_form()["valid_until"] in certs_part
    iso14001 = certs_part.split("ISO 14001")[1]
    assert "2023-01-01" in iso14001 and 'class="badge expired"' in iso14001
    assert 'class="badge expired"' not in certs_part.split("ISO 14001")[0]
    assert "View scan" not in certs_part  # an anonymous visitor never gets the scans


async def test_the_scan_is_for_the_owner_and_the_admins_not_for_other_companies(
    client: AsyncClient, app: Any, db: AsyncSession
) -> None:
    m = await factory_listing(client, db, app)
    await m["page"].post(m["url"], data=certificate_form(), files={"scan": ("iso9001.pdf", PDF, "")})
    (cert,) = await certificates(client, m)
    scan_url = f"/certificates/{cert['id']}/scan"
    own = await m["page"].get(scan_url)
    assert own.status_code == 200 and own.content == PDF
    assert own.headers["content-disposition"].startswith("inline")
    stranger_reg, stranger = await signed_up(client, roles=("buyer",), country="CN")
    stranger_page = await Browser(app).sign_in(stranger_reg["email"])
    assert (await stranger_page.get(scan_url)).status_code == 404
    assert (await client.get(f"/api/v1/documents/{cert['document_id']}", headers=stranger)).status_code == 404
    assert (await stranger_page.get(m["url"])).status_code == 404
    removed = await stranger_page.post(f"{m['url']}/{cert['id']}/remove")
    assert removed.status_code == 404
    admin = await admin_headers(client, db)
    assert (await client.get(f"/api/v1/documents/{cert['document_id']}", headers=admin)).status_code == 200


@pytest.mark.parametrize(
    ("locale", "message"), [("en", "Upload a PDF, JPEG or PNG file."), ("zh-CN", "请上传 PDF、JPEG 或 PNG 文件。")]
)
async def test_a_wrong_file_type_is_a_translated_field_error_and_saves_nothing(
    client: AsyncClient, app: Any, db: AsyncSession, locale: str, message: str
) -> None:
    m = await factory_listing(client, db, app, locale=locale)
    resp = await m["page"].post(m["url"], data=certificate_form(), files={"scan": ("cert.step", STEP, "image/png")})
    assert resp.status_code == 422
    assert f'<p class="field-error" id="f-scan-error">{message}</p>' in resp.text
    assert 'id="error-summary"' in resp.text and 'value="CN-QMS-2026-0815"' in resp.text
    assert await certificates(client, m) == []


async def test_an_expiry_before_the_valid_from_date_and_a_missing_scan_are_field_errors(
    client: AsyncClient, app: Any, db: AsyncSession
) -> None:
    m = await factory_listing(client, db, app, locale="zh-CN")
    resp = await m["page"].post(m["url"], data=certificate_form(valid_from="2026-06-01", valid_until="2026-01-01"))
    assert resp.status_code == 422
    assert "到期日期不能早于生效日期。" in resp.text and "请选择要上传的文件。" in resp.text
    assert await certificates(client, m) == []


async def test_the_owner_removes_a_certificate(client: AsyncClient, app: Any, db: AsyncSession) -> None:
    m = await factory_listing(client, db, app)
    await m["page"].post(m["url"], data=certificate_form(), files={"scan": ("iso9001.pdf", PDF, "")})
    (cert,) = await certificates(client, m)
    resp = await m["page"].post(f"{m['url']}/{cert['id']}/remove")
    assert resp.status_code == 303
    assert await certificates(client, m) == []
    assert "Certificate removed." in (await m["page"].get(resp.headers["location"])).text


async def test_the_api_adds_a_certificate_with_its_scan_as_document_id(client: AsyncClient, db: AsyncSession) -> None:
    reg, headers, _site = await supplier(client, db)
    org_id = reg["org"]["id"]
    body = {
        "standard": "ISO/IEC 17025",
        "number": "CNAS L1234",
        "issuer": "CNAS",
        "scope": "Tensile testing of metals",
        "valid_from": "2025-01-01",
        "valid_until": "2029-01-01",
    }
    scan = await uploaded(client, headers, PDF, "17025.pdf")
    resp = await client.post(
        f"/api/v1/orgs/{org_id}/certificates", json={**body, "document_id": scan["id"]}, headers=headers
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["document_id"] == scan["id"]
    listed = (await client.get(f"/api/v1/orgs/{org_id}/certificates", headers=headers)).json()["items"]
    assert [c["document_id"] for c in listed] == [scan["id"]]

    drawing = await uploaded(client, headers, STEP, "part.step")
    resp = await client.post(
        f"/api/v1/orgs/{org_id}/certificates", json={**body, "document_id": drawing["id"]}, headers=headers
    )
    assert resp.status_code == 415, resp.text
    _other_reg, other = await signed_up(client)
    theirs = await uploaded(client, other, PDF, "theirs.pdf")
    resp = await client.post(
        f"/api/v1/orgs/{org_id}/certificates", json={**body, "document_id": theirs["id"]}, headers=headers
    )
    assert resp.status_code == 422, resp.text
    assert len((await client.get(f"/api/v1/orgs/{org_id}/certificates", headers=headers)).json()["items"]) == 1

    gone = await client.delete(f"/api/v1/orgs/{org_id}/certificates/{listed[0]['id']}", headers=other)
    assert gone.status_code == 404
    gone = await client.delete(f"/api/v1/orgs/{org_id}/certificates/{listed[0]['id']}", headers=headers)
    assert gone.status_code == 204
