"""Quality documents on the web (issue #17), through the HTTP client as a browser would post the forms: the
factory's listing form offers them at a price (errors beside the fields), the public listing page shows them,
and the buyer's book form orders them with checkboxes (the price is added to the booking)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.web.invoice_lines import line_texts
from tests.bookings.helpers import ALWAYS_OPEN
from tests.factories import (
    PASSWORD,
    admin_headers,
    create_asset,
    csrf_token,
    machine_payload,
    publish,
    signed_up,
    supplier,
)


async def _sign_in(web: AsyncClient, email: str) -> None:
    page = await web.get("/login")
    resp = await web.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf_token(page.text)})
    assert resp.status_code == 303, resp.text


@pytest.fixture
async def web(app: Any) -> AsyncIterator[AsyncClient]:
    """A browser of its own (cookies) next to the API ``client``."""
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


async def _factory(client: AsyncClient, db: AsyncSession, **offer: int) -> dict[str, Any]:
    reg, headers, site = await supplier(client, db)
    payload = machine_payload(site["id"], title="Mazak QTN 200 lathe", quality_documents=offer)
    asset = await create_asset(client, headers, payload, ALWAYS_OPEN)
    await publish(client, headers, await admin_headers(client, db), asset["id"])
    return {"reg": reg, "headers": headers, "site": site, "asset": asset, "org_id": reg["org"]["id"]}


def _edit_form(f: dict[str, Any], token: str, **prices: str) -> dict[str, Any]:
    return {
        "csrf_token": token,
        "kind": "machine",
        "site_id": f["site"]["id"],
        "title": "Mazak QTN 200 lathe",
        "process_codes": "machining.milling.cnc_5axis",
        "materials": "al_6061",
        "env_x": "800",
        "env_y": "500",
        "env_z": "500",
        "tolerance_mm": "0.01",
        "max_part_mass_kg": "200",
        "hourly_rate": "300",
        "setup_fee": "200",
        "min_booking_minutes": "60",
        "slot_minutes": "30",
        "currency": "CNY",
        **prices,
    }


async def test_the_factory_form_offers_documents_at_a_price_and_shows_errors_beside_them(
    client: AsyncClient, web: AsyncClient, db: AsyncSession
) -> None:
    f = await _factory(client, db, coc=3000)
    await _sign_in(web, f["reg"]["email"])
    url = f"/factory/{f['org_id']}/assets/{f['asset']['id']}/edit"
    page = await web.get(url)
    assert page.status_code == 200
    for kind in ("coc", "fai", "material_cert"):
        assert f'name="qd_{kind}"' in page.text
    assert re.search(r'name="qd_coc"[^>]*value="30(\.00)?"', page.text), "the stored price is shown"

    bad = await web.post(url, data=_edit_form(f, csrf_token(page.text), qd_coc="30", qd_fai="lots"))
    assert bad.status_code == 422
    assert 'id="f-qd_fai-error"' in bad.text
    unchanged = await client.get(f"/api/v1/assets/{f['asset']['id']}", headers=f["headers"])
    assert unchanged.json()["quality_documents"] == {"coc": 3000}

    ok = await web.post(
        url, data=_edit_form(f, csrf_token(page.text), qd_coc="", qd_fai="250", qd_material_cert="80.5")
    )
    assert ok.status_code == 303, ok.text
    saved = await client.get(f"/api/v1/assets/{f['asset']['id']}", headers=f["headers"])
    assert saved.json()["quality_documents"] == {"fai": 25000, "material_cert": 8050}


async def test_the_listing_page_shows_the_offered_documents_in_the_readers_language(
    client: AsyncClient, db: AsyncSession
) -> None:
    f = await _factory(client, db, coc=3000, fai=25000)
    en = await client.get(f"/listings/{f['asset']['id']}", headers={"Accept-Language": "en"})
    assert "Certificate of conformance" in en.text and "First-article inspection report" in en.text
    assert "Material certificate" not in en.text
    zh = await client.get(f"/listings/{f['asset']['id']}", headers={"Accept-Language": "zh-CN"})
    assert "合格证明" in zh.text and "首件检验报告" in zh.text


async def test_the_buyer_orders_documents_with_checkboxes_on_the_book_form(
    client: AsyncClient, web: AsyncClient, db: AsyncSession
) -> None:
    f = await _factory(client, db, coc=3000, material_cert=8000)
    buyer_reg, buyer = await signed_up(client, roles=("buyer",))
    await _sign_in(web, buyer_reg["email"])
    form = await web.get(f"/book/{f['asset']['id']}")
    assert form.status_code == 200
    assert 'value="coc"' in form.text and 'value="material_cert"' in form.text and 'value="fai"' not in form.text

    start = (datetime.now() + timedelta(days=3)).replace(hour=10, minute=0, second=0, microsecond=0)
    data = {
        "csrf_token": csrf_token(form.text),
        "buyer_org_id": buyer_reg["org"]["id"],
        "start": start.strftime("%Y-%m-%dT%H:%M"),
        "hours": "2",
        "quality_documents": ["coc"],
    }
    booked = await web.post(f"/book/{f['asset']['id']}", data=data)
    assert booked.status_code == 303, booked.text
    booking_id = booked.headers["location"].rsplit("/", 1)[-1]
    got = await client.get(f"/api/v1/bookings/{booking_id}", headers=buyer)
    assert got.json()["amount"] == 30000 * 2 + 20000 + 3000
    ordered = await client.get(f"/api/v1/bookings/{booking_id}/quality-documents", headers=buyer)
    assert [d["kind"] for d in ordered.json()["items"]] == ["coc"]

    # A kind the listing does not offer (a forged form) is refused beside the checkboxes.
    later = start + timedelta(days=1)
    forged = await web.post(
        f"/book/{f['asset']['id']}",
        data=data | {"start": later.strftime("%Y-%m-%dT%H:%M"), "quality_documents": ["fai"]},
    )
    assert forged.status_code == 422
    assert 'id="f-quality_documents-error"' in forged.text


def test_an_invoice_line_of_a_quality_document_reads_in_the_readers_language() -> None:
    item = {"kind": "quality_document", "document": "material_cert", "description": "Material certificate"}
    assert line_texts("en")(item) == "Material certificate (EN 10204 3.1)"
    assert line_texts("zh-CN")(item) == "材质证明（EN 10204 3.1）"
    assert line_texts("zh-CN")({"kind": "quality_document", "document": "other"}) == "质量文件"
