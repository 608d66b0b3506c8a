"""Support for the API/web parity test: scenario factories that return ids, a normaliser that keeps the
structure of what an action left behind but drops ids, timestamps and secrets, and table snapshots.

People and their organisations are rows written through the models (one password hash for all, a bearer
token as the sign-in issues it: argon2 would otherwise dominate the run); listings and bookings are built
through the public API, on the test's own transaction. Only the snapshots read the tables directly."""

from __future__ import annotations

import functools
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.auth.models import User
from marketplace.core.security import create_access_token, hash_password
from marketplace.core.sqltypes import utcnow
from marketplace.orgs.models import Membership, Organisation
from tests.factories import PASSWORD, SUZHOU, create_asset, machine_payload

ALWAYS_OPEN = [{"weekday": d, "start": "00:00", "end": "00:00"} for d in range(7)]  # 24 h every day
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
# ISO instants and the "2026-12-05 21:00 UTC" of notification texts (a deadline is now + 24 h: the two worlds
# are built seconds apart, so its minute may differ).
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z| UTC)?$")
SECRET_RE = re.compile(r"(whsec|mk)_[A-Za-z0-9_-]{16,}")


@dataclass
class Scenario:
    """One freshly built world: ``ids`` are what the action needs, ``labels`` name every id, e-mail and org
    name of this world by its role, so two worlds built alike normalise to the same rows."""

    ids: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)  # role -> e-mail (web sign-in)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)  # role -> API auth headers

    def name(self, key: str, value: str) -> None:
        self.ids[key] = value
        self.labels[str(value)] = key


# -- building --------------------------------------------------------------------------------------


@functools.cache
def _password_hash() -> str:
    # Argon2 is deliberately slow; one hash serves every person of the module (their password is the same).
    return hash_password(PASSWORD)


async def _person(
    s: Scenario, client: AsyncClient, db: AsyncSession, role: str, org_roles: tuple[str, ...] = (), **org: Any
) -> None:
    """A person with a verified address (an admin when ``role`` is admin), owner of a fresh organisation
    unless ``org_roles`` is empty, and a bearer token as the API's sign-in issues it."""
    email = f"{role}-{uuid.uuid4().hex[:10]}@example.com"
    user = User(
        email=email,
        password_hash=_password_hash(),
        full_name=f"Parity {role}",
        is_platform_admin=role == "admin",
        email_verified_at=utcnow(),
    )
    db.add(user)
    await db.flush()
    s.name(f"{role}_user", str(user.id))
    s.labels[email] = f"{role}_email"
    if org_roles:
        name = f"Parity {role} {uuid.uuid4().hex[:8]}"
        organisation = Organisation(name=name, country=org.pop("country", "DE"), roles=list(org_roles), **org)
        db.add(organisation)
        await db.flush()
        db.add(Membership(org_id=organisation.id, user_id=user.id, role="owner"))
        s.name(f"{role}_org", str(organisation.id))
        s.labels[name] = f"{role}_org_name"
    await db.commit()
    settings = client._transport.app.state.settings  # type: ignore[attr-defined]  # the in-process app's
    s.emails[role] = email
    s.headers[role] = {"Authorization": f"Bearer {create_access_token(settings, user.id)}"}


async def _supplier_with_asset(s: Scenario, client: AsyncClient, db: AsyncSession, *, submit: bool) -> None:
    await _person(s, client, db, "supplier", ("supplier",), country="CN", verification_status="verified")
    site = await client.post("/api/v1/sites", json=SUZHOU, headers=s.headers["supplier"])
    assert site.status_code == 201, site.text
    s.name("site", site.json()["id"])
    asset = await create_asset(client, s.headers["supplier"], machine_payload(s.ids["site"]), ALWAYS_OPEN)
    s.name("asset", asset["id"])
    if submit:
        sub = await client.post(f"/api/v1/assets/{asset['id']}/submit", headers=s.headers["supplier"])
        assert sub.status_code == 200, sub.text


async def pending_org(client: AsyncClient, db: AsyncSession) -> Scenario:
    """A supplier organisation that has sent its papers for verification, and an admin."""
    s = Scenario()
    await _person(s, client, db, "admin")
    await _person(s, client, db, "supplier", ("supplier",))
    resp = await client.post(
        f"/api/v1/orgs/{s.ids['supplier_org']}/verification",
        headers=s.headers["supplier"],
        json={"legal_name": "Parity Werke GmbH", "documents": [{"name": "Register", "reference": "s3://docs/1.pdf"}]},
    )
    assert resp.status_code == 200 and resp.json()["verification_status"] == "pending", resp.text
    return s


async def pending_asset(client: AsyncClient, db: AsyncSession) -> Scenario:
    """A machine waiting for review and an admin."""
    s = Scenario()
    await _person(s, client, db, "admin")
    await _supplier_with_asset(s, client, db, submit=True)
    return s


async def published_asset(client: AsyncClient, db: AsyncSession) -> Scenario:
    s = await pending_asset(client, db)
    ok = await client.post(f"/api/v1/admin/assets/{s.ids['asset']}/approve", headers=s.headers["admin"])
    assert ok.status_code == 200, ok.text
    return s


async def flagged_asset(client: AsyncClient, db: AsyncSession) -> Scenario:
    s = await published_asset(client, db)
    await _person(s, client, db, "buyer", ("buyer",))
    flag = await client.post(
        f"/api/v1/assets/{s.ids['asset']}/flags", headers=s.headers["buyer"], json={"reason": "looks fake"}
    )
    assert flag.status_code == 201, flag.text
    s.name("flag", flag.json()["id"])
    return s


# The booking's way through the API after it is placed: (status reached, path suffix, actor, JSON body).
WORK = [
    ("requested", "payment/accept-terms", "buyer", None),
    ("confirmed", "accept", "supplier", None),
    ("in_progress", "start", "supplier", None),
    ("completed", "complete", "supplier", {"reason": "night shift finished early"}),
]
AFTER_WORK = {
    "disputed": ("dispute", "buyer", {"reason": "tolerance out of spec"}),
    "settled": ("confirm", "buyer", None),
}


async def booking_in(client: AsyncClient, db: AsyncSession, status: str, period: tuple[datetime, datetime]) -> Scenario:
    """A booking of ``period`` on a fresh published machine by a fresh buyer, moved to ``status``."""
    s = await published_asset(client, db)
    await _person(s, client, db, "buyer", ("buyer",))
    start, end = period
    resp = await client.post(
        "/api/v1/bookings",
        headers={**s.headers["buyer"], "Idempotency-Key": f"parity-{uuid.uuid4().hex}"},
        json={"asset_id": s.ids["asset"], "start": start.isoformat(), "end": end.isoformat()},
    )
    assert resp.status_code == 201, resp.text
    s.name("booking", resp.json()["id"])
    reached = [w[0] for w in WORK]
    steps = [w[1:] for w in WORK[: reached.index(status) + 1]] if status in reached else [w[1:] for w in WORK]
    if status in AFTER_WORK:
        steps.append(AFTER_WORK[status])
    for suffix, who, body in steps:
        done = await client.post(f"/api/v1/bookings/{s.ids['booking']}/{suffix}", headers=s.headers[who], json=body)
        assert done.status_code == 200, (suffix, done.text)
    return s


# -- the web side ----------------------------------------------------------------------------------


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def web_sign_in(app: Any, email: str) -> tuple[AsyncClient, str]:
    """A browser of its own (cookie jar) signed in through the login form; returns it with its CSRF token."""
    browser = AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver")
    token = csrf_of((await browser.get("/login")).text)
    resp = await browser.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 303, resp.text
    return browser, csrf_of((await browser.get("/dashboard")).text)


# -- normalising and snapshots ---------------------------------------------------------------------


def normalise(value: Any, labels: dict[str, str]) -> Any:
    """``value`` with this world's ids, e-mails and names replaced by their role, other ids by ``<uuid>``,
    timestamps by ``<ts>`` and secrets by ``<secret>``; lists, dicts and numbers keep their shape."""
    if isinstance(value, dict):
        return {k: normalise(v, labels) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalise(v, labels) for v in value]
    if isinstance(value, uuid.UUID):
        value = str(value)
    if isinstance(value, datetime):
        return "<ts>"
    if not isinstance(value, str):
        return value
    if value in labels:
        return f"<{labels[value]}>"
    if TS_RE.match(value):
        return "<ts>"
    for known, label in sorted(labels.items(), key=lambda kv: -len(kv[0])):
        value = value.replace(known, f"<{label}>")
    value = SECRET_RE.sub("<secret>", value)
    return UUID_RE.sub("<uuid>", value)


# Each table that records a side effect, with the columns that say what happened (no ids of its own, no
# timestamps, no request ids). ``delayed`` keeps whether a job waits, not its exact due time.
TABLES: dict[str, str] = {
    "audit_log": "SELECT id AS _k, actor_user_id, actor_api_key_id IS NOT NULL AS by_api_key, action, target_type,"
    " target_id, before, after, reason FROM audit_log",
    "outbox": "SELECT id AS _k, task, args, due_at > now() AS delayed FROM outbox",
    "notifications": "SELECT id::text AS _k, user_id, kind, locale, subject, data FROM notifications",
    "booking_events": "SELECT id AS _k, booking_id, from_status, to_status, action, actor_kind, actor_user_id,"
    " reason FROM booking_events",
    "journal_entries": "SELECT e.id AS _k, j.kind, j.key, j.booking_id, e.account, e.org_id, e.currency, e.amount"
    " FROM journal_entries e JOIN journals j ON j.id = e.journal_id",
    "webhook_endpoints": "SELECT id::text AS _k, org_id, url, events, active, secret FROM webhook_endpoints",
    "webhook_deliveries": "SELECT id::text AS _k, endpoint_id, event, payload, status FROM webhook_deliveries",
    "reviews": "SELECT id::text AS _k, booking_id, author_org_id, subject_org_id, author_user_id, rating, comment"
    " FROM reviews",
}
# Bookkeeping of who is signed in and of API retries; neither is a side effect of the action itself.
UNCOMPARED = frozenset({"alembic_version", "refresh_tokens", "idempotency_keys"})
# Tables of running numbers: the first world's action may insert a series' row that the second one only
# increments, so they are compared by how far each series moved, not by their row count.
COUNTERS = {"document_counters": "SELECT series, last FROM document_counters"}


@dataclass
class Snapshot:
    keys: dict[str, set[Any]]
    counts: dict[str, int]
    counters: dict[str, dict[str, int]]


async def _counts(db: AsyncSession) -> dict[str, int]:
    """Every table's row count, in one round trip."""
    tables = await db.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"))
    names = [t for t in tables.scalars() if t not in UNCOMPARED and t not in COUNTERS]
    query = "SELECT " + ", ".join(f'(SELECT count(*) FROM "{t}") AS "{t}"' for t in names)
    return dict((await db.execute(sa.text(query))).mappings().one())


async def _counters(db: AsyncSession) -> dict[str, dict[str, int]]:
    return {t: {r[0]: r[1] for r in (await db.execute(sa.text(q))).all()} for t, q in COUNTERS.items()}


async def snapshot(db: AsyncSession) -> Snapshot:
    keys = {t: set((await db.execute(sa.text(f"SELECT _k FROM ({q}) x"))).scalars()) for t, q in TABLES.items()}
    return Snapshot(keys, await _counts(db), await _counters(db))


async def changes(db: AsyncSession, before: Snapshot, labels: dict[str, str]) -> dict[str, Any]:
    """What was added since ``before``, normalised: the new rows of every side-effect table (in insertion
    order where the table has one), how many rows every other table gained or lost, and how far each
    running number moved."""
    out: dict[str, Any] = {}
    new = {
        table: [dict(r) for r in (await db.execute(sa.text(query))).mappings() if r["_k"] not in before.keys[table]]
        for table, query in TABLES.items()
    }
    labels = dict(labels)
    for note in new["notifications"]:  # a delivery job then names the notification it sends
        labels[note["_k"]] = f"notification {note['kind']} to {labels.get(str(note['user_id']), 'someone')}"
    for table, rows in new.items():
        if isinstance(rows[0]["_k"] if rows else 0, str):  # uuid keys say nothing about order
            rows.sort(key=lambda r: json.dumps(normalise({**r, "_k": None}, labels), sort_keys=True, default=str))
        else:
            rows.sort(key=lambda r: r["_k"])
        out[table] = [normalise({k: v for k, v in r.items() if k != "_k"}, labels) for r in rows]
    counts = await _counts(db)
    out["row_counts"] = {t: n - before.counts.get(t, 0) for t, n in counts.items() if n != before.counts.get(t, 0)}
    moved = {
        table: {series: last - before.counters[table].get(series, 0) for series, last in now.items()}
        for table, now in (await _counters(db)).items()
    }
    out["counters"] = {table: {k: d for k, d in m.items() if d} for table, m in moved.items()}
    return out


async def target_row(db: AsyncSession, table: str, key: str, labels: dict[str, str]) -> dict[str, Any]:
    """The acted-on row after the action, normalised, without its change timestamps."""
    row = (await db.execute(sa.text(f'SELECT * FROM "{table}" WHERE id = :id'), {"id": key})).mappings().one()
    return normalise({k: v for k, v in row.items() if not k.endswith("_at")}, labels)
