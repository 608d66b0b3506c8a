"""API/web parity (issue #14, item 1): every action the web UI offers, done once through its form (POST with
the session's CSRF token, as the pages do) and once through the public API on an identical, freshly built
world, leaves the same rows behind: audit log, outbox jobs, notifications, booking timeline, ledger lines,
webhook endpoints and deliveries, reviews, the row count of every other table, and the acted-on row itself.

Rows are compared normalised (ids, e-mails and names replaced by their role in the world, timestamps and
secrets blanked), so the structure is kept: which task with which arguments, who is notified, which accounts
move by how much.

Control: approving a listing through the web admin used to skip the ``requests.notify_buyers`` job that the
API's approval enqueues (the API is the reference). Against that handler ``test_parity[approve]`` fails with
exactly this difference (``outbox``: the web side lacks ``requests.notify_buyers(<asset>)``); it passes since
both doors call ``marketplace.admin.moderation.moderate_asset``. ``test_a_missing_job_is_a_difference`` keeps
a control in the suite: the comparison tells a world with one job missing from one without.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from marketplace.core.jobs import enqueue
from marketplace.core.ratelimit import RateLimiter, login_limiter
from marketplace.core.settings import Settings
from tests import parity_support as ps
from tests.bookings.helpers import slot
from tests.conftest import build_app

_BUILT: dict[str, FastAPI] = {}


@pytest.fixture
def app(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    redis: Redis,
    redis_url: str,
) -> FastAPI:
    """conftest's ``app``, but built once for this module (building it takes about a second and this module
    has many short tests), then pointed at each test's transaction and Redis client as ``build_app`` does."""
    if "app" not in _BUILT:
        _BUILT["app"] = build_app(settings, sessionmaker, engine, redis, redis_url)
        return _BUILT["app"]  # this first test's state is set by build_app
    built = _BUILT["app"]
    built.state.engine, built.state.sessionmaker, built.state.redis = engine, sessionmaker, redis
    built.state.auth_rate_limiter = RateLimiter(
        redis,
        limit=settings.auth_rate_limit,
        window_seconds=settings.auth_rate_window_seconds,
        namespace=f"rl-test-{uuid.uuid4().hex}",
    )
    built.state.login_limiter = login_limiter(redis, settings, namespace=f"login-test-{uuid.uuid4().hex}")
    return built


Build = Callable[[AsyncClient, AsyncSession, tuple[datetime, datetime]], Awaitable[ps.Scenario]]


def _booking(status: str) -> Build:
    async def build(client: AsyncClient, db: AsyncSession, period: tuple[datetime, datetime]) -> ps.Scenario:
        return await ps.booking_in(client, db, status, period)

    return build


def _plain(factory: Callable[[AsyncClient, AsyncSession], Awaitable[ps.Scenario]]) -> Build:
    async def build(client: AsyncClient, db: AsyncSession, period: tuple[datetime, datetime]) -> ps.Scenario:
        return await factory(client, db)

    return build


@dataclass(frozen=True)
class Action:
    build: Build
    actor: str  # the role whose web session / API token performs it
    web: str  # form action path; {name} takes the scenario's ids
    form: dict[str, str]
    api: str  # API path under /api/v1
    body: dict[str, Any] | None
    target: tuple[str, str]  # (table, scenario id key) of the acted-on row
    web_status: int = 303
    audited: tuple[str, ...] = ()  # audit actions each door must write (equal is not enough: both could be empty)


FACTORY = "/factory/{supplier_org}/bookings/{booking}"
BUYER = "/buyer/{buyer_org}/bookings/{booking}"
API = "/bookings/{booking}"
EARLY = "night shift finished early"

ACTIONS: dict[str, Action] = {
    "verify": Action(
        _plain(ps.pending_org), "admin",
        "/admin/orgs/{supplier_org}/verify", {"decision": "verified", "reason": "register checked"},
        "/admin/orgs/{supplier_org}/verify", {"decision": "verified", "reason": "register checked"},
        ("organisations", "supplier_org"),
    ),
    "approve": Action(
        _plain(ps.pending_asset), "admin",
        "/admin/assets/{asset}/approve", {},
        "/admin/assets/{asset}/approve", None,
        ("assets", "asset"),
    ),
    "reject": Action(
        _plain(ps.pending_asset), "admin",
        "/admin/assets/{asset}/reject", {"reason": "photos missing"},
        "/admin/assets/{asset}/reject", {"reason": "photos missing"},
        ("assets", "asset"),
    ),
    "suspend": Action(
        _plain(ps.flagged_asset), "admin",
        "/admin/assets/{asset}/suspend", {"reason": "reported as fake"},
        "/admin/assets/{asset}/suspend", {"reason": "reported as fake"},
        ("assets", "asset"),
    ),
    "flag_resolve": Action(
        _plain(ps.flagged_asset), "admin",
        "/admin/flags/{flag}/resolve", {"resolution": "checked, genuine"},
        "/admin/flags/{flag}/resolve", {"resolution": "checked, genuine"},
        ("listing_flags", "flag"),
    ),
    "dispute_resolve": Action(
        _booking("disputed"), "admin",
        "/admin/bookings/{booking}/resolve", {"refund_amount": "100.00", "note": "half the parts redone"},
        "/admin/bookings/{booking}/resolve", {"refund_amount": 10000, "note": "half the parts redone"},
        ("bookings", "booking"),
    ),
    "accept": Action(
        _booking("requested"), "supplier", FACTORY + "/accept", {}, API + "/accept", None, ("bookings", "booking")
    ),
    "decline": Action(
        _booking("requested"), "supplier", FACTORY + "/decline", {}, API + "/decline", None, ("bookings", "booking")
    ),
    "start": Action(
        _booking("confirmed"), "supplier", FACTORY + "/start", {}, API + "/start", None, ("bookings", "booking")
    ),
    "complete": Action(
        _booking("in_progress"), "supplier",
        FACTORY + "/complete", {"result_reference": "QC-7", "reason": EARLY},
        API + "/complete", {"result_reference": "QC-7", "reason": EARLY},
        ("bookings", "booking"),
    ),
    "confirm": Action(
        _booking("completed"), "buyer", BUYER + "/confirm", {}, API + "/confirm", None, ("bookings", "booking")
    ),
    "cancel": Action(
        _booking("confirmed"), "buyer", BUYER + "/cancel", {}, API + "/cancel", None, ("bookings", "booking")
    ),
    "review": Action(
        _booking("settled"), "buyer",
        BUYER + "/review", {"rating": "4", "comment": "on time"},
        API + "/reviews", {"rating": 4, "comment": "on time"},
        ("bookings", "booking"),
    ),
    "webhook_create": Action(
        _plain(ps.pending_org), "supplier",
        "/factory/{supplier_org}/integrations/webhooks", {"url": "http://127.0.0.1:9/hook", "events": "booking.*"},
        "/orgs/{supplier_org}/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["booking.*"]},
        ("organisations", "supplier_org"),
        web_status=200,  # the page with the secret, shown once
        audited=("org.webhook_created",),
    ),
}  # fmt: skip


async def _through_api(client: AsyncClient, action: Action, s: ps.Scenario) -> None:
    resp = await client.post(f"/api/v1{action.api.format(**s.ids)}", headers=s.headers[action.actor], json=action.body)
    assert resp.status_code in (200, 201), resp.text


async def _run(
    app: Any, client: AsyncClient, db: AsyncSession, action: Action, door: str, period: tuple[datetime, datetime]
) -> dict[str, Any]:
    """Build a fresh world, act through ``door`` and return what the action left behind, normalised."""
    s = await action.build(client, db, period)
    if door == "web":  # sign in first: the session rows are not the action's
        browser, csrf = await ps.web_sign_in(app, s.emails[action.actor])
        before = await ps.snapshot(db)
        try:
            resp = await browser.post(action.web.format(**s.ids), data={"csrf_token": csrf, **action.form})
        finally:
            await browser.aclose()
        assert resp.status_code == action.web_status, resp.text[-2000:]
        assert "error=" not in resp.headers.get("location", ""), resp.headers.get("location")
    else:
        before = await ps.snapshot(db)
        await _through_api(client, action, s)
    left = await ps.changes(db, before, s.labels)
    table, key = action.target
    left["target"] = await ps.target_row(db, table, s.ids[key], s.labels)
    return left


@pytest.mark.parametrize("name", list(ACTIONS))
async def test_parity(app: Any, client: AsyncClient, db: AsyncSession, name: str) -> None:
    action = ACTIONS[name]
    period = slot(3)  # one booked period for both worlds (different machines): same refunds, same early finish
    api = await _run(app, client, db, action, "api", period)
    web = await _run(app, client, db, action, "web", period)
    assert any(api[t] for t in ps.TABLES) or api["row_counts"], api  # the action did something
    for part in [*ps.TABLES, "row_counts", "counters", "target"]:
        assert web[part] == api[part], f"{name}: {part} differs (web != api)"
    if action.audited:
        assert [row["action"] for row in api["audit_log"]] == list(action.audited), api["audit_log"]


async def test_a_missing_job_is_a_difference(client: AsyncClient, db: AsyncSession) -> None:
    """The control for the comparison: a world where one job is missing is told apart from one where it is
    not, and two alike worlds are not (so the approve case can fail for the right reason only)."""
    first = await ps.pending_org(client, db)
    before = await ps.snapshot(db)
    await enqueue(db, "requests.notify_buyers", first.ids["supplier_org"])
    with_job = await ps.changes(db, before, first.labels)
    second = await ps.pending_org(client, db)
    before = await ps.snapshot(db)
    without_job = await ps.changes(db, before, second.labels)
    assert with_job["outbox"] == [{"task": "requests.notify_buyers", "args": ["<supplier_org>"], "delayed": False}]
    assert with_job["outbox"] != without_job["outbox"]
    await enqueue(db, "requests.notify_buyers", second.ids["supplier_org"])
    assert (await ps.changes(db, before, second.labels))["outbox"] == with_job["outbox"]
