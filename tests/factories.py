"""Small factory functions that build test data through the public API or the models."""

from __future__ import annotations

import itertools
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.auth.models import User
from marketplace.core.security import hash_password
from marketplace.core.sqltypes import utcnow

PASSWORD = "correct-horse-battery"
_seq = itertools.count(1)

# Real-world-shaped Unified Social Credit Codes that pass both GB 32100 checks.
VALID_USCC = [
    "91350200776049653A",
    "91440101MA5CJQ4N59",
    "91110000802100433B",
    "91440300708461136T",
    "914403001922038216",
]


def csrf_token(html: str) -> str:
    """The CSRF token of a web page's first form."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def web_sign_in(client: AsyncClient, email: str, *, locale: str = "en") -> str:
    """Sign in on the web as ``email`` (signing out whoever was signed in) and choose ``locale``; returns a CSRF
    token for the next form."""
    client.cookies.clear()
    client.headers["Accept-Language"] = "zh-CN,zh;q=0.9" if locale == "zh-CN" else "en"
    token = csrf_token((await client.get("/login")).text)
    resp = await client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 303, resp.text
    token = csrf_token((await client.get("/dashboard")).text)
    chosen = await client.post("/lang", data={"csrf_token": token, "locale": locale, "next": "/dashboard"})
    assert chosen.status_code == 303
    return csrf_token((await client.get("/dashboard")).text)


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{next(_seq)}-{uuid.uuid4().hex[:6]}@example.com"


async def register(
    client: AsyncClient,
    *,
    email: str | None = None,
    roles: tuple[str, ...] = ("supplier",),
    country: str = "DE",
    uscc: str | None = None,
    org_name: str | None = None,
    locale: str = "en",
    verified: bool = True,
) -> dict[str, Any]:
    """Register through the API; ``verified`` (default) also opens the verification link."""
    email = email or unique_email()
    body: dict[str, Any] = {
        "email": email,
        "password": PASSWORD,
        "full_name": "Test User",
        "locale": locale,
        "org": {"name": org_name or f"Org {email}", "roles": list(roles), "country": country},
    }
    if uscc:
        body["org"]["uscc"] = uscc
    resp = await client.post("/api/v1/auth/register", json=body)
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    data["email"] = email
    if verified:
        await verify_email(client, data["user"]["id"])
    return data


async def email_link_token(client: AsyncClient, user_id: str, purpose: str = "verify_email") -> str:
    """The token of the newest e-mail link (``purpose``) for the user, read from the outbox job that mails it
    (the clear token exists nowhere else; the table holds only its hash). In-process app clients only."""
    app = getattr(client._transport, "app", None)  # the ASGI app of the test client
    if app is None:
        raise RuntimeError("email_link_token needs a client on the in-process app")
    async with app.state.sessionmaker() as session:
        token = (
            await session.execute(
                sa.text(
                    "SELECT args->>2 FROM outbox WHERE task = 'auth.send_email_link' AND args->>0 = :user "
                    "AND args->>1 = :purpose ORDER BY id DESC LIMIT 1"
                ),
                {"user": str(user_id), "purpose": purpose},
            )
        ).scalar_one()
    return str(token)


async def verify_email(client: AsyncClient, user_id: str) -> None:
    """Verify the user's address the way a person does: post the token of the verification link."""
    resp = await client.post("/api/v1/auth/verify-email", json={"token": await email_link_token(client, user_id)})
    assert resp.status_code == 200, resp.text


async def login(client: AsyncClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    resp = await client.post("/api/v1/auth/token", data={"username": email, "password": password})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


async def signed_up(client: AsyncClient, **kwargs: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """Register a user with an organisation and sign in; returns (registration, auth headers)."""
    reg = await register(client, **kwargs)
    return reg, await login(client, reg["email"])


async def create_admin(db: AsyncSession, email: str | None = None) -> User:
    user = User(
        email=email or unique_email("admin"),
        password_hash=hash_password(PASSWORD),
        full_name="Admin",
        is_platform_admin=True,
        email_verified_at=utcnow(),
    )
    db.add(user)
    await db.flush()
    return user


async def admin_headers(client: AsyncClient, db: AsyncSession) -> dict[str, str]:
    admin = await create_admin(db)
    await db.commit()
    return await login(client, admin.email)


# -- listings --------------------------------------------------------------------------------------

SUZHOU: dict[str, Any] = {
    "name": "Plant 1",
    "address": "88 Industrial Rd",
    "country": "CN",
    "region_code": "320500",
    "latitude": 31.30,
    "longitude": 120.62,
    "timezone": "Asia/Shanghai",
}
DONGGUAN: dict[str, Any] = {
    "name": "Dongguan works",
    "address": "1 Songshan Lake",
    "country": "CN",
    "region_code": "441900",
    "latitude": 23.02,
    "longitude": 113.76,
    "timezone": "Asia/Shanghai",
}
BERLIN: dict[str, Any] = {
    "name": "Werk Berlin",
    "address": "Industriestr. 5",
    "country": "DE",
    "region_code": "DE-BE",
    "latitude": 52.52,
    "longitude": 13.40,
    "timezone": "Europe/Berlin",
}
WEEKDAYS_8_18 = [{"weekday": d, "start": "08:00", "end": "18:00"} for d in range(5)]


def weekday_after(days: int) -> date:
    """The first Monday-to-Friday date at least ``days`` after today (UTC): a day a ``WEEKDAYS_8_18`` listing is
    open (a fixed offset lands on a weekend two days a week)."""
    day = datetime.now(UTC).date() + timedelta(days=days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def machine_payload(site_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "site_id": site_id,
        "kind": "machine",
        "title": "DMG MORI DMU 50 5-axis",
        "process_codes": ["machining.milling.cnc_5axis"],
        "materials": ["al_6061"],
        "envelope_mm": {"x": 800, "y": 500, "z": 500},
        "max_part_mass_kg": 200,
        "tolerance_mm": 0.01,
        "hourly_rate": 30000,
        "setup_fee": 20000,
        "currency": "CNY",
        "min_booking_minutes": 60,
        "slot_minutes": 30,
        "buffer_minutes": 0,
        "operator_included": True,
        "description": "5-axis centre",
    }
    body.update(overrides)
    return body


def lab_payload(site_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "site_id": site_id,
        "kind": "lab_service",
        "title": "Tensile test, room temperature",
        "process_codes": ["testing.mechanical.tensile"],
        "materials": ["q235", "steel_45"],
        "test_standard": "GB/T 228.1-2021",
        "accredited": True,
        "price_per_sample": 15000,
        "currency": "CNY",
        "turnaround_days": 3,
        "daily_sample_capacity": 40,
        "sample_requirements": "2 specimens per sample",
    }
    body.update(overrides)
    return body


async def verify_org(db: AsyncSession, org_id: str) -> None:
    import sqlalchemy as sa

    await db.execute(
        sa.text("UPDATE organisations SET verification_status = 'verified' WHERE id = :id"), {"id": org_id}
    )
    await db.commit()


async def supplier(
    client: AsyncClient, db: AsyncSession, *, verified: bool = True, site: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """A supplier organisation (verified by default) with one site; returns (registration, headers, site)."""
    reg, headers = await signed_up(client, roles=("supplier",), country="CN")
    if verified:
        await verify_org(db, reg["org"]["id"])
    resp = await client.post("/api/v1/sites", json=site or SUZHOU, headers=headers)
    assert resp.status_code == 201, resp.text
    return reg, headers, resp.json()


async def create_asset(
    client: AsyncClient, headers: dict[str, str], payload: dict[str, Any], weekly: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    resp = await client.post("/api/v1/assets", json=payload, headers=headers)
    assert resp.status_code == 201, resp.text
    asset: dict[str, Any] = resp.json()
    if payload["kind"] == "machine":
        avail = await client.put(
            f"/api/v1/assets/{asset['id']}/availability",
            json={"weekly": weekly if weekly is not None else WEEKDAYS_8_18, "exceptions": []},
            headers=headers,
        )
        assert avail.status_code == 200, avail.text
    return asset


async def publish(client: AsyncClient, headers: dict[str, str], admin: dict[str, str], asset_id: str) -> dict[str, Any]:
    sub = await client.post(f"/api/v1/assets/{asset_id}/submit", headers=headers)
    assert sub.status_code == 200, sub.text
    ok = await client.post(f"/api/v1/admin/assets/{asset_id}/approve", headers=admin)
    assert ok.status_code == 200, ok.text
    data: dict[str, Any] = ok.json()
    return data


async def published_asset(
    client: AsyncClient,
    db: AsyncSession,
    admin: dict[str, str],
    *,
    kind: str = "machine",
    site: dict[str, Any] | None = None,
    weekly: list[dict[str, Any]] | None = None,
    **overrides: Any,
) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """A published listing of a fresh verified supplier; returns (asset, owner headers, site)."""
    _reg, headers, site_out = await supplier(client, db, site=site)
    payload = (machine_payload if kind == "machine" else lab_payload)(site_out["id"], **overrides)
    asset = await create_asset(client, headers, payload, weekly)
    return await publish(client, headers, admin, asset["id"]), headers, site_out


async def invoiced_market(
    client: AsyncClient,
    db: AsyncSession,
    *,
    bookings: int = 1,
    title: str = "Invoice test mill",
    hours_ahead: int = 120,
) -> dict[str, Any]:
    """A verified factory with one published machine open around the clock and a buyer with ``bookings``
    held bookings of it (each with its invoice, bank-transfer path), the first starting ``hours_ahead`` hours
    from now (rounded down to the hour). Returns the registrations (their
    ``email`` signs in on the web), API headers, the asset and the bookings (API bodies), oldest first."""
    from datetime import UTC, datetime, timedelta

    admin = await admin_headers(client, db)
    supplier_reg, supplier_headers, site = await supplier(client, db)
    always = [{"weekday": d, "start": "00:00", "end": "00:00"} for d in range(7)]
    asset = await create_asset(client, supplier_headers, machine_payload(site["id"], title=title), always)
    await publish(client, supplier_headers, admin, asset["id"])
    buyer_reg, buyer_headers = await signed_up(client, roles=("buyer",))
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=hours_ahead)
    made = []
    for i in range(bookings):
        start = base + timedelta(hours=3 * i)
        resp = await client.post(
            "/api/v1/bookings",
            headers={**buyer_headers, "Idempotency-Key": f"inv-{uuid.uuid4()}"},
            json={"asset_id": asset["id"], "start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()},
        )
        assert resp.status_code == 201, resp.text
        made.append(resp.json())
    return {
        "admin": admin,
        "supplier_reg": supplier_reg,
        "supplier": supplier_headers,
        "supplier_org": supplier_reg["org"]["id"],
        "buyer_reg": buyer_reg,
        "buyer": buyer_headers,
        "buyer_org": buyer_reg["org"]["id"],
        "asset": asset,
        "bookings": made,
    }
