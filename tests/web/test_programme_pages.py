"""The programme operator's pages (issue #18) through the HTTP client: registering a programme organisation (alone),
creating a programme with the form (money in major units, refusals beside their fields in the page's language,
nothing saved), granting and deciding vouchers, building a month's claim, deciding its lines, recording the
payment and downloading the CSV; strangers get 404."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from listings.taxonomy import get_taxonomy
from tests.factories import PASSWORD, csrf_token, signed_up, unique_email, web_sign_in
from tests.vouchers.conftest import CHINA, SUZHOU_REGION, buyer_in, programme, programme_org, uscc_for
from tests.vouchers.test_claims import claim_market, redeem

pytestmark = pytest.mark.asyncio
TESTING_ZH = get_taxonomy().name("testing", "zh-CN")


def _programme_form(token: str, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "csrf_token": token,
        "name": "苏州创新券",
        "region_prefix": "3205",
        "eligible_kinds": ["machine", "lab_service"],
        "eligible_families": ["testing"],
        "rate": "50",
        "currency": "CNY",
        "cap_per_booking": "1000",
        "cap_per_buyer_year": "3000.50",
        "budget": "100000",
        "valid_from": str(datetime.now(CHINA).date() - timedelta(days=1)),
        "valid_until": str(datetime.now(CHINA).date() + timedelta(days=365)),
        "payment_mode": "advance",
    }
    data.update(fields)
    return data


async def test_a_programme_organisation_registers_alone_and_the_mix_is_refused_in_words(client: AsyncClient) -> None:
    client.headers["Accept-Language"] = "en"
    token = csrf_token((await client.get("/register")).text)
    form = {
        "csrf_token": token,
        "full_name": "Bureau",
        "email": unique_email("bureau"),
        "password": PASSWORD,
        "org_name": "Suzhou S&T Bureau",
        "country": "CN",
        "uscc": uscc_for(SUZHOU_REGION),
        "role_programme": "1",
        "role_buyer": "1",
        "locale": "en",
    }
    refused = await client.post("/register", data=form)
    assert refused.status_code == 422
    assert "has no other role" in refused.text and 'id="roles-error"' in refused.text
    assert 'name="role_programme" value="1" id="role_programme" checked' in refused.text
    del form["role_buyer"]
    done = await client.post("/register", data=form)
    assert done.status_code == 303
    dashboard = (await client.get("/dashboard")).text
    org_id = re.search(r'href="/programme/([0-9a-f-]{36})"', dashboard)
    assert org_id, "the dashboard links the programme organisation's pages"
    home = await client.get(f"/programme/{org_id.group(1)}")
    assert home.status_code == 200 and "verifies your organisation" in home.text


async def test_the_operator_creates_a_programme_with_the_form_and_mistakes_come_back_in_chinese(
    client: AsyncClient, db: AsyncSession
) -> None:
    reg, _headers = await programme_org(client, db)
    org = reg["org"]["id"]
    token = await web_sign_in(client, reg["email"], locale="zh-CN")
    page = await client.get(f"/programme/{org}")
    assert page.status_code == 200 and TESTING_ZH in page.text  # the families are named in Chinese
    wrong = await client.post(
        f"/programme/{org}/programmes",
        data=_programme_form(token, rate="abc", budget="1.234", eligible_kinds=[], region_prefix="x"),
    )
    assert wrong.status_code == 422
    for field in ("rate", "budget", "region_prefix", "eligible_kinds"):
        assert f'id="f-{field}-error"' in wrong.text, field
    assert "请至少选择一项" in wrong.text  # "choose at least one" in the page's language
    before = int(
        (
            await db.execute(sa.text("SELECT count(*) FROM voucher_programmes WHERE org_id = :o"), {"o": org})
        ).scalar_one()
    )
    assert before == 0
    made = await client.post(f"/programme/{org}/programmes", data=_programme_form(token))
    assert made.status_code == 303, made.text
    row = (
        await db.execute(
            sa.text(
                "SELECT budget, cap_per_buyer_year, rate_bp, eligible_families FROM voucher_programmes "
                "WHERE org_id = :o"
            ),
            {"o": org},
        )
    ).one()
    assert (row.budget, row.cap_per_buyer_year, row.rate_bp, row.eligible_families) == (
        10_000_000,
        300_050,
        5000,
        ["testing"],
    )
    shown = await client.get(made.headers["location"])
    assert shown.status_code == 200
    assert "¥100,000.00" in shown.text  # amounts in major units with the currency


async def test_the_operator_grants_by_uscc_and_decides_an_application_and_strangers_get_404(
    client: AsyncClient, db: AsyncSession
) -> None:
    reg, headers = await programme_org(client, db)
    org = reg["org"]["id"]
    prog = await programme(client, headers, org)
    page = f"/programme/{org}/programmes/{prog['id']}"
    holder_reg, _ = await buyer_in(client)
    applicant_reg, applicant = await buyer_in(client)
    applied = await client.post(
        f"/api/v1/programmes/{prog['id']}/vouchers",
        json={"buyer_org_id": applicant_reg["org"]["id"], "note": "CNC prototypes"},
        headers=applicant,
    )
    assert applied.status_code == 201, applied.text
    outsider_reg, _ = await buyer_in(client, "440300")
    token = await web_sign_in(client, reg["email"])
    outside = await client.post(f"{page}/vouchers", data={"csrf_token": token, "buyer": outsider_reg["org"]["uscc"]})
    assert outside.status_code == 422 and 'id="f-buyer-error"' in outside.text and "440300" in outside.text
    unknown = await client.post(f"{page}/vouchers", data={"csrf_token": token, "buyer": uscc_for("320500")})
    assert unknown.status_code == 422 and "No organisation on the platform" in unknown.text
    granted = await client.post(f"{page}/vouchers", data={"csrf_token": token, "buyer": holder_reg["org"]["uscc"]})
    assert granted.status_code == 303, granted.text
    shown = (await client.get(page)).text
    assert "CNC prototypes" in shown and holder_reg["org"]["name"] in shown
    voucher_id = applied.json()["id"]
    approve = await client.post(
        f"{page}/vouchers/{voucher_id}/decision", data={"csrf_token": token, "decision": "approve"}
    )
    assert approve.status_code == 303
    status = (await db.execute(sa.text("SELECT status FROM vouchers WHERE id = :v"), {"v": voucher_id})).scalar_one()
    assert status == "granted"
    # A stranger (another programme's operator) sees neither the organisation nor its programme.
    other, _ = await programme_org(client, db)
    await web_sign_in(client, other["email"])
    assert (await client.get(f"/programme/{org}")).status_code == 404
    assert (await client.get(page)).status_code == 404
    assert (await client.get(f"/programme/{other['org']['id']}/programmes/{prog['id']}")).status_code == 404


async def test_a_claim_is_built_decided_and_paid_on_the_web_with_its_csv(client: AsyncClient, db: AsyncSession) -> None:
    m = await claim_market(client, db, bookings=2)
    last_month = (datetime.now(UTC).astimezone(CHINA).replace(day=1) - timedelta(days=2)).replace(hour=12)
    for booking in m["bookings"]:
        await redeem(db, m, booking, amount=12_345, settled_at=last_month)
    org, prog = m["programme_reg"]["org"]["id"], m["programme"].id
    page = f"/programme/{org}/programmes/{prog}"
    token = await web_sign_in(client, m["programme_reg"]["email"])
    future = await client.post(
        f"{page}/claims", data={"csrf_token": token, "month": datetime.now(CHINA).strftime("%Y-%m")}
    )
    assert future.status_code == 422 and 'id="f-month-error"' in future.text and "once it is over" in future.text
    built = await client.post(f"{page}/claims", data={"csrf_token": token, "month": last_month.strftime("%Y-%m")})
    assert built.status_code == 303, built.text
    claim_url = built.headers["location"]
    claim_page = (await client.get(claim_url)).text
    assert "¥246.90" in claim_page and "awaiting decisions" in claim_page
    line_ids = re.findall(r'id="line-([0-9a-f-]{36})"', claim_page)
    assert len(line_ids) == 2
    early = await client.post(f"{claim_url}/payment", data={"csrf_token": token, "amount": "123.45", "reference": "X"})
    assert early.status_code == 422 and "Decide every line" in early.text
    no_reason = await client.post(
        f"{claim_url}/lines/{line_ids[0]}/decision", data={"csrf_token": token, "decision": "reject"}
    )
    assert no_reason.status_code == 422 and f'id="f-reason-{line_ids[0]}-error"' in no_reason.text
    for line in line_ids:
        ok = await client.post(f"{claim_url}/lines/{line}/decision", data={"csrf_token": token, "decision": "approve"})
        assert ok.status_code == 303
    wrong = await client.post(f"{claim_url}/payment", data={"csrf_token": token, "amount": "100", "reference": "HX-1"})
    assert wrong.status_code == 422 and 'id="f-amount-error"' in wrong.text and "approved total" in wrong.text
    paid = await client.post(
        f"{claim_url}/payment", data={"csrf_token": token, "amount": "246.90", "reference": "HX-1"}
    )
    assert paid.status_code == 303
    shown = (await client.get(claim_url)).text
    assert "claim paid" in shown and "HX-1" in shown
    csv = await client.get(f"{claim_url}.csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    stats = (await client.get(page)).text
    assert re.search(r'id="stat-paid">[^<]*246\.90<', stats)
    stranger, _ = await signed_up(client, roles=("buyer",))
    await web_sign_in(client, stranger["email"])
    assert (await client.get(claim_url)).status_code == 404
    assert (await client.get(f"{claim_url}.csv")).status_code == 404
