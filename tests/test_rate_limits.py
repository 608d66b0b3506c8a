"""Sign-in and registration limits that fit offices (issue #13 item 7): failures only, back-off per account,
a NAT-sized per-IP limit, and a Retry-After that a client can actually wait out."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from redis.asyncio import Redis

from marketplace.core.ratelimit import LoginLimiter, RateLimiter
from tests.factories import PASSWORD, register, unique_email


def client_at(app: FastAPI, ip: str) -> AsyncClient:
    return AsyncClient(transport=ASGITransport(app=app, client=(ip, 40000)), base_url="http://testserver")


@pytest.fixture
async def office(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """A factory's NAT: everybody's sign-in comes from this one address."""
    async with client_at(app, "203.0.113.7") as c:
        yield c


@pytest.fixture
async def attacker(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with client_at(app, "198.51.100.66") as c:
        yield c


async def sign_in(client: AsyncClient, email: str, password: str = PASSWORD) -> Response:
    return await client.post("/api/v1/auth/token", data={"username": email, "password": password})


def retry_after(resp: Response) -> int:
    assert resp.status_code == 429, resp.text
    body = resp.json()
    assert body["error"] == "rate_limited" and body["request_id"] and body["detail"]
    assert resp.headers["Retry-After"] == str(body["retry_after"])
    return int(resp.headers["Retry-After"])


async def test_twenty_five_successful_sign_ins_from_one_ip_within_a_minute_all_succeed(
    client: AsyncClient, office: AsyncClient
) -> None:
    people = [(await register(client))["email"] for _ in range(5)]
    statuses = [(await sign_in(office, email)).status_code for _ in range(5) for email in people]
    assert statuses == [200] * 25


async def test_failed_sign_ins_back_off_exponentially_and_waiting_retry_after_is_enough(client: AsyncClient) -> None:
    email = (await register(client))["email"]
    assert [(await sign_in(client, email, "wrong-password")).status_code for _ in range(5)] == [401] * 5
    # Five failures: one second of back-off, for the right password too.
    assert retry_after(await sign_in(client, email)) == 1
    for _ in range(3):  # refused attempts are not counted, so hammering does not extend the wait
        assert retry_after(await sign_in(client, email, "wrong-password")) == 1
    await asyncio.sleep(1)
    assert (await sign_in(client, email, "wrong-password")).status_code == 401
    assert retry_after(await sign_in(client, email)) == 2  # the sixth failure doubles it
    await asyncio.sleep(2)
    assert (await sign_in(client, email)).status_code == 200
    # The success forgave the failures: five mistakes are free again.
    assert [(await sign_in(client, email, "wrong-password")).status_code for _ in range(4)] == [401] * 4
    assert (await sign_in(client, email)).status_code == 200


async def test_an_attacker_on_one_address_does_not_lock_the_victim_out_elsewhere(
    client: AsyncClient, attacker: AsyncClient
) -> None:
    email = (await register(client))["email"]
    statuses = [(await sign_in(attacker, email, "guess")).status_code for _ in range(8)]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}  # the attacker backs off ...
    assert (await sign_in(client, email)).status_code == 200  # ... the victim, on another address, does not


async def test_a_distributed_guessing_attack_backs_the_account_off_only_for_the_window(
    app: FastAPI, client: AsyncClient
) -> None:
    email = (await register(client))["email"]
    for i in range(20):  # twenty addresses, one guess each: the account-wide count is reached
        async with client_at(app, f"192.0.2.{i + 1}") as bot:
            assert (await sign_in(bot, email, "guess")).status_code == 401
    wait = retry_after(await sign_in(client, email))
    assert wait == 1
    await asyncio.sleep(wait)
    assert (await sign_in(client, email)).status_code == 200


async def test_the_per_ip_limit_counts_failures_and_its_retry_after_can_be_waited_out(
    app: FastAPI, redis: Redis, office: AsyncClient, client: AsyncClient
) -> None:
    app.state.login_limiter = LoginLimiter(redis, ip_limit=3, window_seconds=2, namespace=f"login-{uuid.uuid4().hex}")
    email = (await register(client))["email"]
    for _ in range(4):  # successes never count against the address
        assert (await sign_in(office, email)).status_code == 200
    for _ in range(3):  # three different accounts: no account backs off, only the address counts
        assert (await sign_in(office, unique_email(), "guess")).status_code == 401
    wait = retry_after(await sign_in(office, unique_email(), "guess"))
    assert 1 <= wait <= 2
    for _ in range(5):  # refused attempts are not counted
        retry_after(await sign_in(office, unique_email(), "guess"))
    await asyncio.sleep(wait)
    assert (await sign_in(office, unique_email(), "guess")).status_code == 401


async def test_registration_is_limited_per_ip_and_its_retry_after_can_be_waited_out(
    app: FastAPI, redis: Redis, client: AsyncClient
) -> None:
    app.state.auth_rate_limiter = RateLimiter(redis, limit=2, window_seconds=2, namespace=f"rl-{uuid.uuid4().hex}")
    await register(client)
    await register(client)
    body = {"email": unique_email(), "password": PASSWORD, "full_name": "Late", "locale": "en"}
    wait = retry_after(await client.post("/api/v1/auth/register", json=body))
    for _ in range(5):
        retry_after(await client.post("/api/v1/auth/register", json=body))
    await asyncio.sleep(wait)
    assert (await client.post("/api/v1/auth/register", json=body)).status_code == 201


async def test_the_web_sign_in_backs_off_with_a_translated_message_and_retry_after(client: AsyncClient) -> None:
    email = (await register(client))["email"]
    client.cookies.set("locale", "zh-CN")
    page = await client.get("/login", headers={"Accept-Language": "zh-CN"})
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    form = {"email": email, "password": "wrong-password", "csrf_token": token.group(1)}
    headers = {"Accept-Language": "zh-CN"}
    assert [(await client.post("/login", data=form, headers=headers)).status_code for _ in range(5)] == [401] * 5
    refused = await client.post("/login", data={**form, "password": PASSWORD}, headers=headers)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert "尝试次数过多，请等待 1 秒后再试。" in refused.text
    await asyncio.sleep(1)
    assert (await client.post("/login", data={**form, "password": PASSWORD}, headers=headers)).status_code == 303
