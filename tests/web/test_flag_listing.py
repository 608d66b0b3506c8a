"""Reporting a listing from its page: reasons, CSRF, one open report per person, the owner and anonymous
visitors, translated errors, and the API sharing the same rules."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from listings.models import ListingFlag
from tests.factories import (
    PASSWORD,
    admin_headers,
    create_admin,
    create_asset,
    csrf_token,
    login,
    machine_payload,
    publish,
    published_asset,
    signed_up,
    supplier,
)


async def _sign_in(client: AsyncClient, email: str) -> None:
    page = await client.get("/login")
    resp = await client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf_token(page.text)})
    assert resp.status_code == 303, resp.text


@pytest.fixture
async def browser(app: Any) -> AsyncIterator[AsyncClient]:
    """A second browser (its own cookies) next to ``client``."""
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


async def _listing_and_reporter(client: AsyncClient, db: AsyncSession) -> dict[str, Any]:
    admin_user = await create_admin(db)
    await db.commit()
    admin = await login(client, admin_user.email)
    asset, owner_headers, _site = await published_asset(client, db, admin, title="Haas VF-2 milling centre")
    reporter, reporter_headers = await signed_up(client, roles=("buyer",))
    return {
        "admin": admin,
        "admin_email": admin_user.email,
        "asset": asset,
        "owner": owner_headers,
        "reporter": reporter,
        "api": reporter_headers,
    }


async def test_a_signed_in_buyer_reports_a_listing_and_the_admin_sees_it(
    client: AsyncClient, db: AsyncSession, browser: AsyncClient
) -> None:
    m = await _listing_and_reporter(client, db)
    asset_id = m["asset"]["id"]
    await _sign_in(client, m["reporter"]["email"])
    listing = await client.get(f"/listings/{asset_id}")
    assert f'href="/listings/{asset_id}/flag"' in listing.text and "Report this listing" in listing.text

    form = await client.get(f"/listings/{asset_id}/flag")
    assert form.status_code == 200
    for reason in ("Misleading description", "Wrong capacity or price", "Not a real company", "Other"):
        assert reason in form.text
    sent = await client.post(
        f"/listings/{asset_id}/flag",
        data={"csrf_token": csrf_token(form.text), "reason_code": "wrong_capacity_or_price", "reason": "Price is 10x"},
    )
    assert sent.status_code == 303 and sent.headers["location"] == f"/listings/{asset_id}?reported=1"
    thanks = await client.get(sent.headers["location"])
    assert "Thank you, an administrator will review this listing." in thanks.text

    queue = (await client.get("/api/v1/admin/moderation/queue", headers=m["admin"])).json()
    mine = [f for f in queue["open_flags"] if f["asset_id"] == asset_id]
    assert [(f["reason_code"], f["reason"]) for f in mine] == [("wrong_capacity_or_price", "Price is 10x")]
    stored = await db.execute(
        sa.select(col(ListingFlag.reason_code), col(ListingFlag.reason)).where(
            col(ListingFlag.asset_id) == uuid.UUID(asset_id)
        )
    )
    assert stored.all() == [("wrong_capacity_or_price", "Price is 10x")]  # the code in its column, words alone
    await _sign_in(browser, m["admin_email"])
    admin_page = await browser.get("/admin/flags")
    assert admin_page.status_code == 200
    for shown in ("Haas VF-2 milling centre", "Wrong capacity or price", "Price is 10x"):
        assert shown in admin_page.text
    assert "[wrong_capacity_or_price]" not in admin_page.text


async def test_a_second_open_report_by_the_same_person_is_refused_kindly(client: AsyncClient, db: AsyncSession) -> None:
    m = await _listing_and_reporter(client, db)
    asset_id = m["asset"]["id"]
    await _sign_in(client, m["reporter"]["email"])
    token = csrf_token((await client.get(f"/listings/{asset_id}/flag")).text)
    first = await client.post(
        f"/listings/{asset_id}/flag", data={"csrf_token": token, "reason_code": "prohibited_item"}
    )
    assert first.status_code == 303
    again = await client.post(
        f"/listings/{asset_id}/flag", data={"csrf_token": token, "reason_code": "other", "reason": "still bad"}
    )
    assert again.status_code == 409
    assert "You have already reported this listing. An administrator will review it." in again.text
    form = await client.get(f"/listings/{asset_id}/flag")
    assert "data-already-flagged" in form.text and 'name="reason_code"' not in form.text
    # The API applies the same rule through the same service.
    api = await client.post(f"/api/v1/assets/{asset_id}/flags", json={"reason": "again"}, headers=m["api"])
    assert api.status_code == 409 and api.json()["error"] == "already_flagged"
    queue = (await client.get("/api/v1/admin/moderation/queue", headers=m["admin"])).json()
    assert len([f for f in queue["open_flags"] if f["asset_id"] == asset_id]) == 1


async def test_the_owner_sees_no_button_and_cannot_report_its_own_listing(
    client: AsyncClient, db: AsyncSession
) -> None:
    admin = await admin_headers(client, db)
    owner_reg, owner_api, site = await supplier(client, db)
    asset = await create_asset(client, owner_api, machine_payload(site["id"]))
    await publish(client, owner_api, admin, asset["id"])
    await _sign_in(client, owner_reg["email"])
    page = await client.get(f"/listings/{asset['id']}")
    assert page.status_code == 200 and "/flag" not in page.text and "Report this listing" not in page.text
    assert (await client.get(f"/listings/{asset['id']}/flag")).status_code == 404
    token = csrf_token(page.text)
    post = await client.post(f"/listings/{asset['id']}/flag", data={"csrf_token": token, "reason_code": "other"})
    assert post.status_code == 404
    api = await client.post(f"/api/v1/assets/{asset['id']}/flags", json={"reason": "mine"}, headers=owner_api)
    assert api.status_code == 403 and api.json()["error"] == "own_listing"


async def test_anonymous_visitors_are_asked_to_sign_in(client: AsyncClient, db: AsyncSession) -> None:
    m = await _listing_and_reporter(client, db)
    asset_id = m["asset"]["id"]
    page = await client.get(f"/listings/{asset_id}")
    assert "Sign in to report this listing" in page.text and f"/login?next=/listings/{asset_id}/flag" in page.text
    form = await client.get(f"/listings/{asset_id}/flag")
    assert form.status_code == 303 and form.headers["location"].startswith("/login?next=")
    post = await client.post(f"/listings/{asset_id}/flag", data={"reason_code": "other", "reason": "x"})
    assert post.status_code in (303, 403)
    queue = (await client.get("/api/v1/admin/moderation/queue", headers=m["admin"])).json()
    assert [f for f in queue["open_flags"] if f["asset_id"] == asset_id] == []


async def test_a_report_without_the_form_token_is_refused(client: AsyncClient, db: AsyncSession) -> None:
    m = await _listing_and_reporter(client, db)
    asset_id = m["asset"]["id"]
    await _sign_in(client, m["reporter"]["email"])
    for token in (None, "forged"):
        data = {"reason_code": "other", "reason": "x"} | ({"csrf_token": token} if token else {})
        assert (await client.post(f"/listings/{asset_id}/flag", data=data)).status_code == 403
    queue = (await client.get("/api/v1/admin/moderation/queue", headers=m["admin"])).json()
    assert [f for f in queue["open_flags"] if f["asset_id"] == asset_id] == []


@pytest.mark.parametrize(
    ("lang", "choose", "describe"),
    [("en", "Choose a reason.", "Describe what is wrong with this listing."), ("zh-CN", "请选择举报原因", "请说明")],
)
async def test_errors_are_shown_beside_the_fields_in_the_page_language(
    client: AsyncClient, db: AsyncSession, lang: str, choose: str, describe: str
) -> None:
    m = await _listing_and_reporter(client, db)
    asset_id = m["asset"]["id"]
    await _sign_in(client, m["reporter"]["email"])
    client.cookies.set("lang", lang)
    token = csrf_token((await client.get(f"/listings/{asset_id}/flag")).text)
    no_reason = await client.post(f"/listings/{asset_id}/flag", data={"csrf_token": token, "reason": "hm"})
    assert no_reason.status_code == 422
    assert re.search(r'id="f-reason_code-error">[^<]*' + choose, no_reason.text)
    assert 'class="error-summary"' in no_reason.text and "hm</textarea>" in no_reason.text
    other_blank = await client.post(
        f"/listings/{asset_id}/flag", data={"csrf_token": token, "reason_code": "other", "reason": "  "}
    )
    assert other_blank.status_code == 422 and re.search(r'id="f-reason-error">[^<]*' + describe, other_blank.text)
    forged_code = await client.post(
        f"/listings/{asset_id}/flag", data={"csrf_token": token, "reason_code": "made_up", "reason": "x"}
    )
    assert forged_code.status_code == 422 and re.search(r'id="f-reason_code-error">[^<]*' + choose, forged_code.text)
    too_long = await client.post(
        f"/listings/{asset_id}/flag", data={"csrf_token": token, "reason_code": "other", "reason": "x" * 1001}
    )
    assert too_long.status_code == 422 and 'id="f-reason-error"' in too_long.text
    assert "String should" not in too_long.text and "Value error" not in too_long.text
    queue = (await client.get("/api/v1/admin/moderation/queue", headers=m["admin"])).json()
    assert [f for f in queue["open_flags"] if f["asset_id"] == asset_id] == []


async def test_reports_are_rate_limited_per_person(client: AsyncClient, db: AsyncSession, app: Any) -> None:
    admin = await admin_headers(client, db)
    assets = [(await published_asset(client, db, admin))[0] for _ in range(3)]
    await _sign_in(client, (await signed_up(client, roles=("buyer",)))[0]["email"])
    app.state.auth_rate_limiter.limit = 2
    codes = []
    for asset in assets:
        token = csrf_token((await client.get(f"/listings/{asset['id']}/flag")).text)
        data = {"csrf_token": token, "reason_code": "other", "reason": "spam"}
        sent = await client.post(f"/listings/{asset['id']}/flag", data=data)
        codes.append(sent.status_code)
    assert codes == [303, 303, 429]
    assert "Too many reports" in sent.text and sent.headers["retry-after"]


async def test_the_api_accepts_reason_codes_and_words_alone_as_other(client: AsyncClient, db: AsyncSession) -> None:
    m = await _listing_and_reporter(client, db)
    asset_id = m["asset"]["id"]
    bad = await client.post(f"/api/v1/assets/{asset_id}/flags", json={"reason_code": "nope"}, headers=m["api"])
    assert bad.status_code == 422
    words_needed = await client.post(
        f"/api/v1/assets/{asset_id}/flags", json={"reason_code": "other"}, headers=m["api"]
    )
    assert words_needed.status_code == 422
    coded = await client.post(
        f"/api/v1/assets/{asset_id}/flags", json={"reason_code": "not_a_real_company"}, headers=m["api"]
    )
    assert coded.status_code == 201, coded.text
    assert coded.json()["reason_code"] == "not_a_real_company" and coded.json()["reason"] == ""
    _other, other_api = await signed_up(client, roles=("buyer",))
    plain = await client.post(f"/api/v1/assets/{asset_id}/flags", json={"reason": "looks fake"}, headers=other_api)
    assert plain.status_code == 201, plain.text
    assert plain.json()["reason_code"] == "other" and plain.json()["reason"] == "looks fake"
