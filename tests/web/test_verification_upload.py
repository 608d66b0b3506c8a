"""The owner sends the business licence as a file (web form and API); the admin's verification page shows it
beside the USCC and its check result, previews it, and verifies or rejects (a reason is required to reject);
nobody outside the organisation reads the licence."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.settings import Settings
from marketplace.demo.builder import generate_uscc
from tests.documents.helpers import uploaded
from tests.documents.samples import PDF, PNG, STEP
from tests.factories import admin_headers, create_admin, signed_up
from tests.web.test_negotiation_pages import Browser


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    settings.data_dir = tmp_path
    return settings


def new_uscc() -> str:
    return generate_uscc(random.Random(), "320500")


async def owner(client: AsyncClient, app: Any, *, locale: str = "en") -> tuple[dict[str, Any], dict[str, str], Browser]:
    reg, headers = await signed_up(client, roles=("supplier",), country="CN", locale=locale)
    page = await Browser(app, locale).sign_in(reg["email"])
    return reg, headers, page


async def admin_browser(app: Any, db: AsyncSession) -> Browser:
    admin = await create_admin(db)
    await db.commit()
    return await Browser(app).sign_in(admin.email)


def licence_form(uscc: str, name: str = "Suzhou Precision Parts Co., Ltd.") -> dict[str, str]:
    return {"legal_name": name, "uscc": uscc}


async def org_status(client: AsyncClient, headers: dict[str, str], org_id: str) -> str:
    resp = await client.get(f"/api/v1/orgs/{org_id}", headers=headers)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["verification_status"])


async def test_licence_uploaded_on_the_dashboard_shows_beside_the_uscc_and_the_admin_verifies(
    client: AsyncClient, app: Any, db: AsyncSession
) -> None:
    reg, headers, page = await owner(client, app)
    org_id, uscc = reg["org"]["id"], new_uscc()
    resp = await page.post(
        f"/orgs/{org_id}/verification",
        data=licence_form(uscc),
        files={"licence": ("营业执照.png", PNG, "image/png")},
    )
    assert resp.status_code == 303, resp.text
    assert await org_status(client, headers, org_id) == "pending"

    admin = await admin_browser(app, db)
    queue = await admin.get("/admin/verification")
    assert queue.status_code == 200
    section = queue.text.split(f'id="org-{org_id}"')[1].split("</section>")[0]
    assert uscc in section and "check characters valid" in section
    assert "营业执照.png" in section and f'<img src="/admin/verification/{org_id}/licence"' in section
    licence = await admin.get(f"/admin/verification/{org_id}/licence")
    assert licence.status_code == 200 and licence.content == PNG
    assert licence.headers["content-type"] == "image/png"
    assert licence.headers["content-disposition"].startswith("inline")

    done = await admin.post(f"/admin/orgs/{org_id}/verify", data={"decision": "verified", "reason": ""})
    assert done.status_code == 303 and done.headers["location"] == "/admin/verification?notice=verified"
    assert await org_status(client, headers, org_id) == "verified"
    assert f'id="org-{org_id}"' not in (await admin.get("/admin/verification")).text


async def test_a_rejection_needs_a_reason_shown_beside_the_field(
    client: AsyncClient, app: Any, db: AsyncSession
) -> None:
    reg, headers, page = await owner(client, app)
    org_id = reg["org"]["id"]
    sent = await page.post(
        f"/orgs/{org_id}/verification", data=licence_form(new_uscc()), files={"licence": ("l.pdf", PDF, "")}
    )
    assert sent.status_code == 303, sent.text
    admin = await admin_browser(app, db)
    refused = await admin.post(f"/admin/orgs/{org_id}/verify", data={"decision": "rejected", "reason": " "})
    assert refused.status_code == 303
    shown = await admin.get(refused.headers["location"])
    assert 'class="field-error" id="reason-' in shown.text and "Give the reason for rejecting." in shown.text
    assert await org_status(client, headers, org_id) == "pending"
    rejected = await admin.post(f"/admin/orgs/{org_id}/verify", data={"decision": "rejected", "reason": "Blurred"})
    assert rejected.status_code == 303
    assert await org_status(client, headers, org_id) == "rejected"


@pytest.mark.parametrize(
    ("locale", "message"), [("en", "Upload a PDF, JPEG or PNG file."), ("zh-CN", "请上传 PDF、JPEG 或 PNG 文件。")]
)
async def test_a_wrong_file_type_is_a_translated_field_error_and_nothing_is_saved(
    client: AsyncClient, app: Any, locale: str, message: str
) -> None:
    reg, headers, page = await owner(client, app, locale=locale)
    org_id = reg["org"]["id"]
    resp = await page.post(
        f"/orgs/{org_id}/verification",
        data=licence_form(new_uscc(), name="Keep this name"),
        files={"licence": ("licence.step", STEP, "application/pdf")},
    )
    assert resp.status_code == 422
    assert f'<p class="field-error" id="licence-{org_id}-error">{message}</p>' in resp.text
    assert 'role="alert"' in resp.text and 'value="Keep this name"' in resp.text
    assert "unsupported_media_type" not in resp.text
    assert await org_status(client, headers, org_id) == "unverified"
    docs = await client.get(f"/api/v1/orgs/{org_id}", headers=headers)
    assert docs.json()["legal_name"] != "Keep this name"


async def test_a_missing_file_is_a_field_error(client: AsyncClient, app: Any) -> None:
    reg, headers, page = await owner(client, app)
    org_id = reg["org"]["id"]
    resp = await page.post(f"/orgs/{org_id}/verification", data=licence_form(new_uscc()))
    assert resp.status_code == 422
    assert "Choose a file to upload." in resp.text
    assert await org_status(client, headers, org_id) == "unverified"


async def test_an_outsider_cannot_read_the_licence_nor_send_one(
    client: AsyncClient, app: Any, db: AsyncSession
) -> None:
    reg, headers, _page = await owner(client, app)
    org_id = reg["org"]["id"]
    doc = await uploaded(client, headers, PDF, "licence.pdf")
    resp = await client.post(
        f"/api/v1/orgs/{org_id}/verification",
        json={"legal_name": "Suzhou Parts", "uscc": new_uscc(), "licence_document_id": doc["id"]},
        headers=headers,
    )
    assert resp.status_code == 200, resp.text

    _outsider_reg, outsider_headers, outsider = await owner(client, app)
    assert (await client.get(f"/api/v1/documents/{doc['id']}", headers=outsider_headers)).status_code == 404
    assert (await outsider.get(f"/admin/verification/{org_id}/licence")).status_code == 403
    foreign = await outsider.post(
        f"/orgs/{org_id}/verification", data=licence_form(new_uscc()), files={"licence": ("l.pdf", PDF, "")}
    )
    assert foreign.status_code == 404
    # Its own members and the admins read it.
    assert (await client.get(f"/api/v1/documents/{doc['id']}", headers=headers)).content == PDF
    admin = await admin_headers(client, db)
    assert (await client.get(f"/api/v1/documents/{doc['id']}", headers=admin)).status_code == 200


async def test_the_api_refuses_another_organisations_document_and_a_drawing_as_licence(client: AsyncClient) -> None:
    reg, headers = await signed_up(client, roles=("supplier",), country="CN")
    _other_reg, other = await signed_up(client)
    foreign = await uploaded(client, other, PDF, "theirs.pdf")
    drawing = await uploaded(client, headers, STEP, "part.step")
    url = f"/api/v1/orgs/{reg['org']['id']}/verification"
    body = {"legal_name": "Suzhou Parts", "uscc": new_uscc()}
    resp = await client.post(url, json={**body, "licence_document_id": foreign["id"]}, headers=headers)
    assert resp.status_code == 422, resp.text
    resp = await client.post(url, json={**body, "licence_document_id": drawing["id"]}, headers=headers)
    assert resp.status_code == 415, resp.text
    resp = await client.post(url, json=body, headers=headers)
    assert resp.status_code == 422 and "licence_document_id" in resp.text
