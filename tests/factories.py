"""Small factory functions that build test data through the public API or the models."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.auth.models import User
from marketplace.auth.security import hash_password

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
) -> dict[str, Any]:
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
    return data


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
    )
    db.add(user)
    await db.flush()
    return user


async def admin_headers(client: AsyncClient, db: AsyncSession) -> dict[str, str]:
    admin = await create_admin(db)
    await db.commit()
    return await login(client, admin.email)
