from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from redis.asyncio import Redis

from marketplace.core.ratelimit import RateLimiter
from tests.factories import PASSWORD, login, register, signed_up, unique_email


async def test_register_creates_user_and_owned_org(client: AsyncClient) -> None:
    reg = await register(client, roles=("supplier", "buyer"), country="cn", uscc="91350200776049653A")
    assert reg["user"]["email"] == reg["email"]
    assert reg["org"]["roles"] == ["buyer", "supplier"]
    assert reg["org"]["country"] == "CN"
    assert reg["org"]["verification_status"] == "unverified"
    assert "password" not in str(reg) and "hash" not in str(reg)


async def test_login_refresh_and_me(client: AsyncClient) -> None:
    reg = await register(client)
    resp = await client.post("/api/v1/auth/token", data={"username": reg["email"].upper(), "password": PASSWORD})
    assert resp.status_code == 200
    tokens = resp.json()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] > 0

    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200
    body = me.json()
    assert body["user"]["email"] == reg["email"]
    assert [m["role"] for m in body["memberships"]] == ["owner"]
    assert body["memberships"][0]["org"]["id"] == reg["org"]["id"]

    refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    me2 = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"})
    assert me2.status_code == 200


async def test_refresh_rejects_an_access_token(client: AsyncClient) -> None:
    reg = await register(client)
    tokens = (await client.post("/api/v1/auth/token", data={"username": reg["email"], "password": PASSWORD})).json()
    resp = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["access_token"]})
    assert resp.status_code == 401
    assert resp.json()["error"] == "not_authenticated"


async def test_access_token_cannot_be_a_refresh_token(client: AsyncClient) -> None:
    reg = await register(client)
    tokens = (await client.post("/api/v1/auth/token", data={"username": reg["email"], "password": PASSWORD})).json()
    resp = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['refresh_token']}"})
    assert resp.status_code == 401


async def test_wrong_password_and_unknown_email_look_the_same(client: AsyncClient) -> None:
    reg = await register(client)
    wrong = await client.post("/api/v1/auth/token", data={"username": reg["email"], "password": "nope-nope-nope"})
    unknown = await client.post("/api/v1/auth/token", data={"username": unique_email(), "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"] == unknown.json()["error"] == "invalid_credentials"
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_email_is_unique_regardless_of_case(client: AsyncClient) -> None:
    reg = await register(client)
    resp = await client.post(
        "/api/v1/auth/register",
        json={
            "email": reg["email"].upper(),
            "password": PASSWORD,
            "full_name": "Dup",
            "locale": "en",
            "org": {"name": "Dup", "roles": ["buyer"], "country": "DE"},
        },
    )
    assert resp.status_code == 409
    assert resp.json()["error"] == "email_taken"


async def test_registration_validates_input(client: AsyncClient) -> None:
    base = {
        "email": unique_email(),
        "password": PASSWORD,
        "full_name": "X",
        "locale": "en",
        "org": {"name": "X", "roles": ["buyer"], "country": "DE"},
    }
    cases: list[tuple[dict[str, Any], str]] = [
        ({"password": "short"}, "password"),
        ({"email": "not-an-email"}, "email"),
        ({"locale": "fr"}, "locale"),
        ({"org": {"name": "X", "roles": ["wizard"], "country": "DE"}}, "org.roles"),
        ({"org": {"name": "X", "roles": [], "country": "DE"}}, "org.roles"),
        (
            {"org": {"name": "X", "roles": ["buyer"], "country": "CN", "uscc": "91350200776049653B"}},
            "org.uscc",
        ),
    ]
    for patch, field in cases:
        resp = await client.post("/api/v1/auth/register", json={**base, **patch})
        assert resp.status_code == 422, (patch, resp.text)
        body = resp.json()
        assert body["error"] == "validation_error"
        assert field in body["detail"], body
        assert body["request_id"]


async def test_duplicate_uscc_is_a_conflict(client: AsyncClient) -> None:
    await register(client, country="CN", uscc="91440300708461136T")
    resp = await client.post(
        "/api/v1/auth/register",
        json={
            "email": unique_email(),
            "password": PASSWORD,
            "full_name": "Y",
            "locale": "zh-CN",
            "org": {"name": "Y", "roles": ["buyer"], "country": "CN", "uscc": "91440300708461136T"},
        },
    )
    assert resp.status_code == 409
    assert resp.json()["error"] == "uscc_taken"


@pytest.fixture
def strict_limits(app: FastAPI, redis: Redis) -> None:
    app.state.auth_rate_limiter = RateLimiter(redis, limit=5, window_seconds=60, namespace=f"rl-{uuid.uuid4().hex}")


@pytest.mark.usefixtures("strict_limits")
async def test_login_is_rate_limited_per_email(client: AsyncClient) -> None:
    reg = await register(client)
    statuses = []
    for _ in range(7):  # strict_limits allows 5 attempts per window
        r = await client.post("/api/v1/auth/token", data={"username": reg["email"], "password": "wrong-password"})
        statuses.append(r.status_code)
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429, 429]
    limited = await client.post("/api/v1/auth/token", data={"username": reg["email"], "password": PASSWORD})
    assert limited.status_code == 429
    assert limited.json()["error"] == "rate_limited"
    assert limited.json()["retry_after"] > 0


@pytest.mark.usefixtures("strict_limits")
async def test_registration_is_rate_limited_per_ip(client: AsyncClient) -> None:
    statuses = []
    for i in range(7):
        r = await client.post(
            "/api/v1/auth/register",
            json={"email": unique_email(), "password": PASSWORD, "full_name": f"U{i}", "locale": "en"},
        )
        statuses.append(r.status_code)
    assert statuses.count(201) == 5
    assert statuses[-1] == 429


async def test_passwords_and_tokens_never_reach_the_log(client: AsyncClient, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    reg, headers = await signed_up(client)
    await client.post("/api/v1/auth/token", data={"username": reg["email"], "password": "bad-password-xyz"})
    token = headers["Authorization"].split()[1]
    text = caplog.text
    assert PASSWORD not in text
    assert "bad-password-xyz" not in text
    assert token not in text


async def test_user_can_change_locale(client: AsyncClient) -> None:
    reg = await register(client)
    headers = await login(client, reg["email"])
    resp = await client.patch("/api/v1/me", json={"locale": "zh-CN"}, headers=headers)
    assert resp.status_code == 200
    assert resp.json()["user"]["locale"] == "zh-CN"


async def test_the_web_language_switch_leaves_the_locale_of_the_account(client: AsyncClient) -> None:
    """The header's switch is this browser's choice only (tests/web/test_language_precedence.py); the account's
    language changes on the account page or through ``PATCH /me``."""
    import re

    reg = await register(client)
    headers = await login(client, reg["email"])

    def csrf(html: str) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert found, html[:300]
        return found.group(1)

    token = csrf((await client.get("/login")).text)
    data = {"email": reg["email"], "password": PASSWORD, "csrf_token": token}
    assert (await client.post("/login", data=data)).status_code == 303
    token = csrf((await client.get("/dashboard")).text)
    for locale, kept in (("zh-CN", "en"), ("fr", "en")):
        switched = await client.post("/lang", data={"locale": locale, "next": "/dashboard", "csrf_token": token})
        assert switched.status_code == 303
        assert (await client.get("/api/v1/me", headers=headers)).json()["user"]["locale"] == kept
