"""No internal code reaches a person: the pages about a settled booking (the buyer's booking page, the
factory's bookings and earnings, the admin overview) show words, never ``snake_case`` codes or basis points,
in either language."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests import parity_support as ps
from tests.bookings.helpers import slot

CODE = re.compile(r"\b[a-z]+_[a-z_]+\b")
BASIS_POINTS = re.compile(r"\bbp\b")


def visible_text(page: str) -> str:
    """What a reader sees: the page without scripts, styles, tags and attributes, entities decoded."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    body = re.sub(r"<!--.*?-->", " ", body, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def assert_no_codes(page: str, where: str) -> None:
    text = visible_text(page)
    assert not CODE.findall(text), f"{where}: codes shown {sorted(set(CODE.findall(text)))}"
    assert not BASIS_POINTS.search(text), f"{where}: basis points shown"


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
async def test_the_pages_of_a_settled_booking_show_words_not_codes(
    app: Any, client: AsyncClient, db: AsyncSession, locale: str
) -> None:
    s = await ps.booking_in(client, db, "settled", slot(3))
    # Each person reads the site in the test's language (their account's setting).
    await db.execute(
        sa.text("UPDATE users SET locale = :l WHERE email = ANY(:e)"), {"l": locale, "e": list(s.emails.values())}
    )
    await db.commit()
    lang = {"Accept-Language": locale}
    pages: dict[str, tuple[str, str]] = {
        "buyer booking": ("buyer", f"/buyer/{s.ids['buyer_org']}/bookings/{s.ids['booking']}"),
        "factory bookings": ("supplier", f"/factory/{s.ids['supplier_org']}/bookings"),
        "earnings": ("supplier", f"/factory/{s.ids['supplier_org']}/earnings"),
        "admin overview": ("admin", "/admin"),
    }
    seen: dict[str, str] = {}
    for where, (who, path) in pages.items():
        browser, _ = await ps.web_sign_in(app, s.emails[who])
        try:
            resp = await browser.get(path, headers=lang)
        finally:
            await browser.aclose()
        assert resp.status_code == 200, (where, resp.status_code)
        assert_no_codes(resp.text, where)
        seen[where] = visible_text(resp.text)
    # The pages do show the booking: its status in words, and the settlement with its commission in percent.
    settled = "已结算" if locale == "zh-CN" else "settled"
    assert settled in seen["buyer booking"] and settled in seen["factory bookings"]
    assert "8%" in seen["earnings"]


def test_the_code_detector_catches_codes_and_basis_points() -> None:
    with pytest.raises(AssertionError):
        assert_no_codes("<p>Status: awaiting_payment</p>", "sample")
    with pytest.raises(AssertionError):
        assert_no_codes("<td>Settlement, commission 800 bp</td>", "sample")
    assert_no_codes(
        '<p data-status="in_progress" class="status-in_progress">in progress</p><script>a_b()</script>', "ok"
    )
