"""After signing in, the web app only ever redirects to a path on this site (no open redirect)."""

from __future__ import annotations

import re

import pytest
from httpx import AsyncClient

from marketplace.web.core import safe_next
from tests.factories import PASSWORD, register


@pytest.mark.parametrize(
    "target", ["//evil.example", "/\\evil.example", "https://evil.example", "evil.example", "/\t/evil.example", ""]
)
def test_a_target_that_leaves_the_site_goes_home(target: str) -> None:
    assert safe_next(target) == "/"


@pytest.mark.parametrize("target", ["/", "/dashboard", "/factory/abc/bookings?tab=open"])
def test_a_path_on_this_site_is_kept(target: str) -> None:
    assert safe_next(target) == target


async def test_signing_in_with_a_backslash_next_stays_on_the_site(client: AsyncClient) -> None:
    reg = await register(client)
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    resp = await client.post(
        "/login",
        params={"next": "/\\evil.example"},
        data={"email": reg["email"], "password": PASSWORD, "csrf_token": token.group(1), "next": "/\\evil.example"},
    )
    assert resp.status_code == 303
    assert resp.headers["location"] == "/"
