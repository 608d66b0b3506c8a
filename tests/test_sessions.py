"""Sign-in sessions: stored refresh tokens that rotate, reuse detection, logout, logout everywhere, the
sessions list, a refresh race, web sessions that signing out ends, and one signing key per purpose."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import itsdangerous
import jwt
import pytest
import sqlalchemy as sa
from httpx import ASGITransport, AsyncClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from marketplace.auth import sessions
from marketplace.auth.models import User
from marketplace.core.security import hash_refresh_token, hkdf_sha256, purpose_key
from marketplace.core.settings import Settings
from tests.conftest import build_app
from tests.factories import PASSWORD, csrf_token, unique_email

# -- helpers -------------------------------------------------------------------------------------------


async def _user(client: AsyncClient) -> str:
    """Register a user (no organisation) through the API; returns the e-mail."""
    email = unique_email("sess")
    resp = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "full_name": "Session User"}
    )
    assert resp.status_code == 201, resp.text
    return email


async def _login(client: AsyncClient, email: str, agent: str = "pytest") -> dict[str, Any]:
    resp = await client.post(
        "/api/v1/auth/token", data={"username": email, "password": PASSWORD}, headers={"User-Agent": agent}
    )
    assert resp.status_code == 200, resp.text
    tokens: dict[str, Any] = resp.json()
    return tokens


async def _refresh(client: AsyncClient, token: str) -> Any:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


def _bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def _web_login(client: AsyncClient, email: str) -> None:
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    resp = await client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 303, resp.text
    assert (await client.get("/dashboard")).status_code == 200


async def _web_signed_in(client: AsyncClient) -> bool:
    resp = await client.get("/dashboard")
    return resp.status_code == 200


# -- rotation, reuse, logout ---------------------------------------------------------------------------


async def test_refresh_rotates_the_token_within_its_family(client: AsyncClient, db: Any) -> None:
    tokens = await _login(client, await _user(client))
    first = await _refresh(client, tokens["refresh_token"])
    assert first.status_code == 200, first.text
    rotated = first.json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    rows = {
        row.token_hash: row
        for row in (
            await db.execute(sa.text("SELECT id, family_id, token_hash, replaced_by FROM refresh_tokens"))
        ).all()
    }
    old, new = rows[hash_refresh_token(tokens["refresh_token"])], rows[hash_refresh_token(rotated["refresh_token"])]
    assert old.replaced_by == new.id and old.family_id == new.family_id and new.replaced_by is None
    assert (await client.get("/api/v1/me", headers=_bearer(rotated))).status_code == 200
    second = await _refresh(client, rotated["refresh_token"])
    assert second.status_code == 200, second.text
    assert second.json()["refresh_token"] not in (tokens["refresh_token"], rotated["refresh_token"])


async def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(client: AsyncClient) -> None:
    email = await _user(client)
    stolen = await _login(client, email)
    other_session = await _login(client, email)  # a second sign-in of the same person: a separate family
    legit = (await _refresh(client, stolen["refresh_token"])).json()  # the owner rotates first

    replay = await _refresh(client, stolen["refresh_token"])  # the thief replays the old token
    assert replay.status_code == 401
    assert replay.json()["error"] == "not_authenticated"
    # The family is revoked: the token the legitimate client got by rotating no longer works either.
    assert (await _refresh(client, legit["refresh_token"])).status_code == 401
    # Only that family: the person's other session lives on.
    assert (await _refresh(client, other_session["refresh_token"])).status_code == 200


async def test_a_refresh_token_is_stored_only_as_a_hash(client: AsyncClient, db: Any) -> None:
    tokens = await _login(client, await _user(client))
    stored = (await db.execute(sa.text("SELECT token_hash FROM refresh_tokens"))).scalars().all()
    assert stored and tokens["refresh_token"] not in stored
    assert all(tokens["refresh_token"] not in str(value) for value in stored)


async def test_logout_ends_this_session_only(client: AsyncClient) -> None:
    email = await _user(client)
    here, elsewhere = await _login(client, email), await _login(client, email)
    resp = await client.post("/api/v1/auth/logout", json={"refresh_token": here["refresh_token"]})
    assert resp.status_code == 204
    assert (await _refresh(client, here["refresh_token"])).status_code == 401
    assert (await _refresh(client, elsewhere["refresh_token"])).status_code == 200
    # An unknown token gets the same answer (nothing to learn from it).
    unknown = await client.post("/api/v1/auth/logout", json={"refresh_token": "mkr_" + "x" * 43})
    assert unknown.status_code == 204


async def test_logout_all_ends_every_api_and_web_session(client: AsyncClient, app: Any) -> None:
    email = await _user(client)
    one, two = await _login(client, email), await _login(client, email)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as browser:
        await _web_login(browser, email)
        resp = await client.post("/api/v1/auth/logout-all", headers=_bearer(one))
        assert resp.status_code == 204
        assert (await _refresh(client, one["refresh_token"])).status_code == 401
        assert (await _refresh(client, two["refresh_token"])).status_code == 401
        assert not await _web_signed_in(browser)
    # Signing in again works.
    assert (await _refresh(client, (await _login(client, email))["refresh_token"])).status_code == 200


async def test_logout_all_needs_a_signed_in_user(client: AsyncClient) -> None:
    assert (await client.post("/api/v1/auth/logout-all")).status_code == 401


async def test_sessions_are_listed_without_secrets_and_can_be_ended_one_by_one(client: AsyncClient) -> None:
    email = await _user(client)
    phone, laptop = await _login(client, email, "Phone/1.0"), await _login(client, email, "Laptop/2.0")
    listed = await client.get("/api/v1/auth/sessions", headers=_bearer(laptop))
    assert listed.status_code == 200
    sessions = listed.json()
    assert sorted(s["user_agent"] for s in sessions) == ["Laptop/2.0", "Phone/1.0"]
    assert all(s["kind"] == "api" and s["ip"] for s in sessions)
    text = listed.text
    assert phone["refresh_token"] not in text and laptop["refresh_token"] not in text and "hash" not in text

    phone_id = next(s["id"] for s in sessions if s["user_agent"] == "Phone/1.0")
    # Another person cannot end it (and learns nothing: 404).
    intruder = await _login(client, await _user(client))
    assert (await client.delete(f"/api/v1/auth/sessions/{phone_id}", headers=_bearer(intruder))).status_code == 404
    assert len((await client.get("/api/v1/auth/sessions", headers=_bearer(laptop))).json()) == 2

    assert (await client.delete(f"/api/v1/auth/sessions/{phone_id}", headers=_bearer(laptop))).status_code == 204
    assert (await _refresh(client, phone["refresh_token"])).status_code == 401
    assert (await client.delete(f"/api/v1/auth/sessions/{phone_id}", headers=_bearer(laptop))).status_code == 404
    remaining = (await client.get("/api/v1/auth/sessions", headers=_bearer(laptop))).json()
    assert [s["user_agent"] for s in remaining] == ["Laptop/2.0"]


async def test_refresh_is_rate_limited_per_client_ip(
    settings: Settings, sessionmaker: Any, engine: AsyncEngine, redis: Redis, redis_url: str
) -> None:
    tight = settings.model_copy(update={"refresh_rate_limit": 2})
    app = build_app(tight, sessionmaker, engine, redis, redis_url)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as client:
        tokens = await _login(client, await _user(client))
        token = tokens["refresh_token"]
        for _ in range(2):
            resp = await _refresh(client, token)
            assert resp.status_code == 200
            token = resp.json()["refresh_token"]
        refused = await _refresh(client, token)
        assert refused.status_code == 429
        assert refused.json()["error"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 1


# -- a refresh race ------------------------------------------------------------------------------------


async def _refresh_race(
    committed_engine: AsyncEngine, redis: Redis, redis_url: str, settings: Settings, n: int = 8
) -> Counter[int]:
    maker = async_sessionmaker(committed_engine, expire_on_commit=False, autoflush=False)
    app = build_app(settings, maker, committed_engine, redis, redis_url)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as client:
        tokens = await _login(client, await _user(client))
        responses = await asyncio.gather(*(_refresh(client, tokens["refresh_token"]) for _ in range(n)))
    return Counter(r.status_code for r in responses)


async def test_a_refresh_race_with_one_token_has_exactly_one_winner(
    committed_engine: AsyncEngine, redis: Redis, redis_url: str, settings: Settings
) -> None:
    outcome = await _refresh_race(committed_engine, redis, redis_url, settings)
    assert outcome == Counter({200: 1, 401: 7})


async def _interleaved_refreshes(committed_engine: AsyncEngine, *, lock: bool) -> list[str]:
    """Two refreshes with one token, interleaved deterministically: A rotates (not yet committed), B starts
    while A's transaction is open, then A commits. Returns each one's outcome ("ok" or the error class)."""
    maker = async_sessionmaker(committed_engine, expire_on_commit=False, autoflush=False)
    async with maker() as setup:
        user = User(email=unique_email("race"), password_hash="-", full_name="Race")
        setup.add(user)
        await setup.flush()
        issued = await sessions.start(
            setup, user_id=user.id, kind="api", lifetime=timedelta(days=1), user_agent=None, ip=None
        )
        await setup.commit()

    async def rotate(db: Any) -> str:
        try:
            await sessions.rotate(
                db, token=issued.refresh_token, lifetime=timedelta(days=1), user_agent=None, ip=None, lock=lock
            )
        except sessions.RefreshTokenReused as exc:
            await db.commit()
            return type(exc).__name__
        await db.commit()
        return "ok"

    async with maker() as a, maker() as b:
        await sessions.rotate(
            a, token=issued.refresh_token, lifetime=timedelta(days=1), user_agent=None, ip=None, lock=lock
        )
        second = asyncio.create_task(rotate(b))
        await asyncio.sleep(0.5)  # B has read the row (no lock) or waits for A's row lock (lock)
        assert not second.done()  # either way B waits for A: it updates, or locks, the same row
        await a.commit()
        return ["ok", await asyncio.wait_for(second, 10)]


async def test_a_refresh_that_waits_for_a_concurrent_rotation_is_detected_as_reuse(
    committed_engine: AsyncEngine,
) -> None:
    assert await _interleaved_refreshes(committed_engine, lock=True) == ["ok", "RefreshTokenReused"]


async def test_without_the_row_lock_the_interleaved_refreshes_both_succeed(committed_engine: AsyncEngine) -> None:
    """Control: with ``lock=False`` (the ``refresh_token_lock`` setting off) B read the token before A's
    rotation committed, so one refresh token is exchanged twice: the tests above can fail."""
    assert await _interleaved_refreshes(committed_engine, lock=False) == ["ok", "ok"]


# -- the web session -----------------------------------------------------------------------------------


async def test_signing_out_of_the_web_ends_the_session_for_a_copied_cookie_too(client: AsyncClient, app: Any) -> None:
    email = await _user(client)
    await _web_login(client, email)
    copied = client.cookies.get("mk_session")
    assert copied
    page = await client.get("/dashboard")
    resp = await client.post("/logout", data={"csrf_token": csrf_token(page.text)})
    assert resp.status_code == 303
    async with AsyncClient(
        transport=ASGITransport(app=app), base_url="http://testserver", cookies={"mk_session": copied}
    ) as thief:
        assert not await _web_signed_in(thief)


async def test_the_sessions_page_lists_this_browser_and_signs_out_everywhere(client: AsyncClient) -> None:
    email = await _user(client)
    api = await _login(client, email, "Integration/3.1")
    await _web_login(client, email)
    page = await client.get("/account/sessions")
    assert page.status_code == 200
    assert "Integration/3.1" in page.text and api["refresh_token"] not in page.text
    resp = await client.post("/account/sessions/logout-all", data={"csrf_token": csrf_token(page.text)})
    assert resp.status_code == 303 and resp.headers["location"] == "/login"
    assert not await _web_signed_in(client)
    assert (await _refresh(client, api["refresh_token"])).status_code == 401


async def test_the_sessions_page_is_translated(client: AsyncClient) -> None:
    email = await _user(client)
    await _web_login(client, email)
    page = await client.get("/account/sessions")
    await client.post(
        "/lang", data={"locale": "zh-CN", "next": "/account/sessions", "csrf_token": csrf_token(page.text)}
    )
    zh = await client.get("/account/sessions")
    assert zh.status_code == 200
    assert "活跃会话" in zh.text and "全部退出登录" in zh.text
    assert "Active sessions" not in zh.text and "Sign out everywhere" not in zh.text


# -- one key per purpose -------------------------------------------------------------------------------


def _session_payload(cookie: str) -> dict[str, Any]:
    data = cookie.split(".")[0]
    payload: dict[str, Any] = json.loads(base64.b64decode(data + "=" * (-len(data) % 4)))
    return payload


def _sign_session(payload: dict[str, Any], key: str) -> str:
    data = base64.b64encode(json.dumps(payload).encode())
    return itsdangerous.TimestampSigner(key).sign(data).decode()


async def test_a_session_cookie_signed_with_another_purpose_key_is_refused(
    client: AsyncClient, app: Any, settings: Settings
) -> None:
    await _web_login(client, await _user(client))
    payload = _session_payload(client.cookies["mk_session"])
    assert payload.get("sid")

    async def accepted(key: str) -> bool:
        async with AsyncClient(
            transport=ASGITransport(app=app),
            base_url="http://testserver",
            cookies={"mk_session": _sign_session(payload, key)},
        ) as forged:
            return await _web_signed_in(forged)

    assert await accepted(purpose_key(settings, "web-session").hex())  # control: the forging itself works
    assert not await accepted(purpose_key(settings, "access-tokens").hex())
    assert not await accepted(settings.jwt_secret)  # the server secret itself signs nothing


async def test_an_access_token_signed_with_another_purpose_key_is_refused(
    client: AsyncClient, settings: Settings
) -> None:
    tokens = await _login(client, await _user(client))
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    now = datetime.now(UTC)
    forged_claims = {"sub": claims["sub"], "typ": "access", "iat": now, "exp": now + timedelta(minutes=5)}

    async def accepted(key: bytes | str) -> bool:
        token = jwt.encode(forged_claims, key, algorithm=settings.jwt_algorithm)
        return (await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})).status_code == 200

    assert await accepted(purpose_key(settings, "access-tokens"))  # control
    assert not await accepted(purpose_key(settings, "web-session"))
    assert not await accepted(purpose_key(settings, "ical"))
    assert not await accepted(settings.jwt_secret)


def test_hkdf_matches_rfc_5869_test_case_1() -> None:
    okm = hkdf_sha256(bytes([0x0B] * 22), salt=bytes(range(0x0D)), info=bytes(range(0xF0, 0xFA)), length=42)
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")


def test_each_purpose_has_its_own_key_and_an_override_rotates_only_that_one() -> None:
    base = Settings(environment="test", jwt_secret="s" * 40)
    keys = {p: purpose_key(base, p) for p in ("access-tokens", "web-session", "ical", "email-links")}
    assert len(set(keys.values())) == 4 and all(len(k) == 32 for k in keys.values())
    rotated = Settings(environment="test", jwt_secret="s" * 40, ical_secret="i" * 40)
    assert purpose_key(rotated, "ical") != keys["ical"]
    assert {p: purpose_key(rotated, p) for p in keys if p != "ical"} == {p: k for p, k in keys.items() if p != "ical"}
    with pytest.raises(ValueError):
        purpose_key(base, "anything-else")


async def test_the_ical_link_is_keyed_by_the_ical_purpose(settings: Settings) -> None:
    from marketplace.bookings.endpoints import calendar_token

    asset = uuid.uuid4()
    rotated = settings.model_copy(update={"ical_secret": "r" * 40})
    assert calendar_token(settings, asset) != calendar_token(rotated, asset)
    # The iCal token is not the access-token key's HMAC (a leaked feed URL says nothing about other keys).
    other = settings.model_copy(update={"access_token_secret": "a" * 40})
    assert calendar_token(settings, asset) == calendar_token(other, asset)


async def test_signing_in_again_in_the_same_browser_ends_its_previous_session(client: AsyncClient, app: Any) -> None:
    email = await _user(client)
    await _web_login(client, email)
    first = client.cookies["mk_session"]
    await _web_login(client, email)
    tokens = await _login(client, email)
    listed = (await client.get("/api/v1/auth/sessions", headers=_bearer(tokens))).json()
    assert sorted(s["kind"] for s in listed) == ["api", "web"]
    assert await _web_signed_in(client)
    async with AsyncClient(
        transport=ASGITransport(app=app), base_url="http://testserver", cookies={"mk_session": first}
    ) as old_cookie:
        assert not await _web_signed_in(old_cookie)
