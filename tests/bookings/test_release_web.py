"""The factory's incoming-bookings page: completing before the start asks for a reason, and the remaining
time is released only through an explicit, confirmed action; on a Chinese page, in Chinese."""

from __future__ import annotations

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.bookings.helpers import book, market, slot
from tests.factories import PASSWORD, csrf_token


async def _sign_in(client: AsyncClient, headers: dict[str, str], locale: str) -> str:
    me = await client.patch("/api/v1/me", headers=headers, json={"locale": locale})
    assert me.status_code == 200, me.text
    client.cookies.clear()
    token = csrf_token((await client.get("/login")).text)
    resp = await client.post(
        "/login", data={"email": me.json()["user"]["email"], "password": PASSWORD, "csrf_token": token}
    )
    assert resp.status_code == 303, resp.text
    return csrf_token((await client.get("/dashboard")).text)


async def test_factory_page_asks_a_reason_for_early_completion_and_releases_only_on_confirmation(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await market(client, db)
    start, end = slot(3)
    b = (await book(client, m["buyer"], m["asset"]["id"], start, end)).json()
    api = f"/api/v1/bookings/{b['id']}"
    for action, who in (("payment/accept-terms", "buyer"), ("accept", "supplier"), ("start", "supplier")):
        assert (await client.post(f"{api}/{action}", headers=m[who])).status_code == 200, action
    org = m["asset"]["org_id"]
    page_url = f"/factory/{org}/bookings"
    base = f"{page_url}/{b['id']}"

    csrf = await _sign_in(client, m["supplier"], "zh-CN")
    page = (await client.get(page_url)).text
    assert "提前于预订开始时间完工的原因" in page and 'name="reason" required' in page
    assert 'data-action="release"' not in page  # nothing to release before completion

    refused = await client.post(f"{base}/complete", data={"csrf_token": csrf, "result_reference": "R-7"})
    assert refused.status_code == 303
    assert refused.headers["location"].endswith("?error=early_reason_required")  # a code, never free text
    assert "请说明为何在预订开始时间之前完工。" in (await client.get(refused.headers["location"])).text
    assert (await client.get(api, headers=m["supplier"])).json()["status"] == "in_progress"

    done = await client.post(f"{base}/complete", data={"csrf_token": csrf, "reason": "夜班提前完成"})
    assert done.status_code == 303 and "error" not in done.headers["location"]
    page = (await client.get(page_url)).text
    assert 'data-action="release"' in page and "释放剩余时段" in page and "此操作无法撤销" in page

    released = await client.post(f"{base}/release", data={"csrf_token": csrf, "reason": "设备空闲"})
    assert released.status_code == 303 and "error" not in released.headers["location"]
    after = (await client.get(api, headers=m["supplier"])).json()
    assert after["blocked_from"] is None and after["timeline"][-1]["action"] == "release"
    assert after["timeline"][-1]["reason"] == "设备空闲"
    page = (await client.get(page_url)).text
    assert 'data-action="release"' not in page  # released once; nothing left

    again = await client.post(f"{base}/release", data={"csrf_token": csrf})
    assert again.headers["location"].endswith("?error=nothing_to_release")
    assert "没有可释放的剩余预订时段。" in (await client.get(again.headers["location"])).text

    # The buyer's booking page shows the release on the timeline.
    await _sign_in(client, m["buyer"], "en")
    buyer_page = (await client.get(f"/buyer/{m['buyer_org']}/bookings/{b['id']}")).text
    assert 'data-action="release"' in buyer_page and "Remaining time released" in buyer_page
