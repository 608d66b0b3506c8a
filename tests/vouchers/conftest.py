"""Shared factories of the voucher tests (programmes, vouchers, buyers registered in a region).

Small functions on the test ``client`` (and ``db`` where the API deliberately offers no way, e.g. verifying an
organisation). Helper modules of other voucher tests (claims, statistics) use them too.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.orgs.uscc import ALPHABET, org_code_check_char, uscc_check_char
from tests.bookings.live_server import LiveServer, sql
from tests.factories import (
    PASSWORD,
    SUZHOU,
    admin_headers,
    create_asset,
    lab_payload,
    machine_payload,
    publish,
    signed_up,
    supplier,
    unique_email,
    verify_org,
)

SUZHOU_REGION = "320500"  # tests.factories.SUZHOU's region_code
SUZHOU_PREFIX = "3205"
SHANGHAI_REGION = "310115"  # Pudong
SHANGHAI = {
    "name": "Pudong lab",
    "address": "1 Zhangjiang Rd",
    "country": "CN",
    "region_code": SHANGHAI_REGION,
    "latitude": 31.20,
    "longitude": 121.60,
    "timezone": "Asia/Shanghai",
}
CHINA = ZoneInfo("Asia/Shanghai")
ALWAYS_OPEN = [{"weekday": d, "start": "00:00", "end": "00:00"} for d in range(7)]


def china_today() -> date:
    return datetime.now(UTC).astimezone(CHINA).date()


def uscc_for(region: str) -> str:
    """A fresh valid USCC (both GB 32100 checks) registered in the 6-digit GB/T 2260 ``region``."""
    if len(region) != 6 or not region.isdigit():
        raise ValueError("region must be a 6-digit GB/T 2260 code")
    org8 = "".join(random.choice(ALPHABET[:10] + "ABCDEFGH") for _ in range(8))
    first17 = "91" + region + org8 + org_code_check_char(org8)
    if any(c not in ALPHABET for c in first17):  # 'X' as the GB 11714 check is in the alphabet; be safe
        return uscc_for(region)
    return first17 + uscc_check_char(first17)


async def programme_org(
    client: AsyncClient, db: AsyncSession, *, verified: bool = True
) -> tuple[dict[str, Any], dict[str, str]]:
    """A programme organisation (a bureau), verified by default; returns (registration, headers)."""
    reg, headers = await signed_up(client, roles=("programme",), country="CN", uscc=uscc_for(SUZHOU_REGION))
    if verified:
        await verify_org(db, reg["org"]["id"])
    return reg, headers


async def buyer_in(
    client: AsyncClient, region: str | None = SUZHOU_REGION, *, roles: tuple[str, ...] = ("buyer",)
) -> tuple[dict[str, Any], dict[str, str]]:
    """A buyer organisation registered in ``region`` (its USCC's positions 3-8); None: no USCC at all."""
    uscc = uscc_for(region) if region else None
    return await signed_up(client, roles=roles, country="CN", uscc=uscc)


def programme_body(org_id: str, **overrides: Any) -> dict[str, Any]:
    """A valid ProgrammeCreate body: Suzhou, both kinds, 50 %, caps 1 000 / 3 000 CNY, budget 100 000 CNY."""
    today = china_today()
    body: dict[str, Any] = {
        "org_id": org_id,
        "name": "Suzhou innovation vouchers",
        "region_prefix": SUZHOU_PREFIX,
        "eligible_kinds": ["machine", "lab_service"],
        "eligible_families": [],
        "rate_bp": 5000,
        "currency": "CNY",
        "cap_per_booking": 100_000,
        "cap_per_buyer_year": 300_000,
        "budget": 10_000_000,
        "valid_from": str(today - timedelta(days=30)),
        "valid_until": str(today + timedelta(days=365)),
        "payment_mode": "advance",
        "partner_programme_ids": [],
        "auto_grant": False,
    }
    body.update(overrides)
    return body


async def programme(client: AsyncClient, headers: dict[str, str], org_id: str, **overrides: Any) -> dict[str, Any]:
    """Create a programme through the API (``overrides`` change the body); returns ProgrammeOut."""
    resp = await client.post("/api/v1/programmes", json=programme_body(org_id, **overrides), headers=headers)
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    return out


async def granted_voucher(
    client: AsyncClient, programme_headers: dict[str, str], programme_id: str, buyer_org_id: str
) -> dict[str, Any]:
    """The programme grants ``buyer_org_id`` a voucher; returns VoucherOut (status granted)."""
    resp = await client.post(
        f"/api/v1/programmes/{programme_id}/vouchers", json={"buyer_org_id": buyer_org_id}, headers=programme_headers
    )
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    assert out["status"] == "granted", out
    return out


async def listing(
    client: AsyncClient,
    db: AsyncSession,
    admin: dict[str, str],
    *,
    kind: str = "lab_service",
    site: dict[str, Any] | None = None,
    **overrides: Any,
) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """A published listing of a fresh verified supplier (default: a lab in Suzhou, 150 CNY a sample, open
    every day); returns (asset, supplier headers, site)."""
    _reg, headers, site_out = await supplier(client, db, site=site or SUZHOU)
    payload = (lab_payload if kind == "lab_service" else machine_payload)(site_out["id"], **overrides)
    asset = await create_asset(client, headers, payload, ALWAYS_OPEN)
    if kind == "lab_service":  # create_asset sets the weekly plan of machines only; a lab's says its open days
        plan = {"weekly": ALWAYS_OPEN, "exceptions": []}
        resp = await client.put(f"/api/v1/assets/{asset['id']}/availability", json=plan, headers=headers)
        assert resp.status_code == 200, resp.text
    return await publish(client, headers, admin, asset["id"]), headers, site_out


async def voucher_market(client: AsyncClient, db: AsyncSession, **programme_overrides: Any) -> dict[str, Any]:
    """Everything a voucher booking needs: an admin, a verified programme org with an active Suzhou programme,
    a buyer registered in Suzhou holding a granted voucher, and a published Suzhou lab (150 CNY a sample).

    Keys: admin, programme_reg, programme_headers, programme_org, programme, buyer_reg, buyer, buyer_org,
    voucher, lab, supplier, site."""
    admin = await admin_headers(client, db)
    p_reg, p_headers = await programme_org(client, db)
    prog = await programme(client, p_headers, p_reg["org"]["id"], **programme_overrides)
    b_reg, b_headers = await buyer_in(client)
    voucher = await granted_voucher(client, p_headers, prog["id"], b_reg["org"]["id"])
    lab, s_headers, site = await listing(client, db, admin)
    return {
        "admin": admin,
        "programme_reg": p_reg,
        "programme_headers": p_headers,
        "programme_org": p_reg["org"]["id"],
        "programme": prog,
        "buyer_reg": b_reg,
        "buyer": b_headers,
        "buyer_org": b_reg["org"]["id"],
        "voucher": voucher,
        "lab": lab,
        "supplier": s_headers,
        "site": site,
    }


def lab_booking_body(
    asset_id: str, *, samples: int = 2, voucher_id: str | None = None, days_ahead: int = 3
) -> dict[str, Any]:
    """A POST /api/v1/bookings body for a lab listing of ``listing`` (open every day)."""
    body: dict[str, Any] = {
        "asset_id": asset_id,
        "drop_off_date": str(china_today() + timedelta(days=days_ahead)),
        "samples": samples,
    }
    if voucher_id is not None:
        body["voucher_id"] = voucher_id
    return body


async def book(client: AsyncClient, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """POST /api/v1/bookings (with an Idempotency-Key); asserts 201 and returns the booking."""
    resp = await client.post("/api/v1/bookings", json=body, headers={**headers, "Idempotency-Key": str(uuid.uuid4())})
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    return out


async def registered_in_suzhou(
    server: LiveServer, client: AsyncClient, roles: list[str], *, locale: str = "zh-CN"
) -> dict[str, Any]:
    """Through a live server (browser tests): an account with an organisation registered in Suzhou (a USCC of
    region 320500), its e-mail address verified. The registration answer, with ``email``."""
    email = unique_email("voucher")
    body = {
        "email": email,
        "password": PASSWORD,
        "full_name": "Voucher Journey",
        "locale": locale,
        "org": {
            "name": f"苏州 {uuid.uuid4().hex[:6]}",
            "roles": roles,
            "country": "CN",
            "uscc": uscc_for(SUZHOU_REGION),
        },
    }
    response = await client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    reg: dict[str, Any] = response.json()
    reg["email"] = email
    await sql(
        server.database_url, "UPDATE users SET email_verified_at = now() WHERE id = :id", {"id": reg["user"]["id"]}
    )
    return reg
