"""E-mail verification, password reset and change of password, end to end: the platform's e-mails go to a
real SMTP server (aiosmtpd on loopback) and the tests follow the links they contain."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.auth import service as auth_service
from marketplace.core.settings import Settings
from tests.bookings.helpers import book, market, slot
from tests.bookings.test_delivery import Mailbox, smtp  # noqa: F401  (the SMTP fixture)
from tests.factories import (
    PASSWORD,
    SUZHOU,
    create_asset,
    csrf_token,
    machine_payload,
    register,
    unique_email,
    verify_org,
)

NEW_PASSWORD = "a-brand-new-passphrase-9"
LINK = re.compile(r"https?://\S+")


async def _send_mail(client: AsyncClient, port: int) -> int:
    """Run the queued e-mail-link jobs (the outbox rows the relay would hand to the worker) against the real
    SMTP server, then remove them as the relay does; returns how many jobs ran."""
    app: Any = getattr(client._transport, "app")  # noqa: B009 - the test client's ASGI app
    mail = Settings(environment="test", smtp_host="127.0.0.1", smtp_port=port, public_url="https://market.test")
    async with app.state.sessionmaker() as session:
        rows = (
            await session.execute(
                sa.text("SELECT id, args FROM outbox WHERE task = :task ORDER BY id"),
                {"task": auth_service.SEND_LINK_TASK},
            )
        ).all()
        for job_id, (user_id, purpose, token) in rows:
            await auth_service.deliver_email_link(
                session, mail, user_id=uuid.UUID(user_id), purpose=purpose, token=token
            )
            await session.execute(sa.text("DELETE FROM outbox WHERE id = :id"), {"id": job_id})
        await session.commit()
    return len(rows)


def _link(message: Any, path: str) -> str:
    """The link to ``path`` in an e-mail; returns its token."""
    links = [u for u in LINK.findall(message.get_content()) if urlsplit(u).path == path]
    assert len(links) == 1, message.get_content()
    assert links[0].startswith("https://market.test/")
    return parse_qs(urlsplit(links[0]).query)["token"][0]


async def _token_login(client: AsyncClient, email: str, password: str) -> Any:
    return await client.post("/api/v1/auth/token", data={"username": email, "password": password})


async def _headers(client: AsyncClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    resp = await _token_login(client, email, password)
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


# -- e-mail verification ---------------------------------------------------------------------------


async def test_registration_mails_a_link_that_verifies_the_address_and_unlocks_booking(
    client: AsyncClient,
    db: AsyncSession,
    smtp: tuple[Mailbox, int],  # noqa: F811
) -> None:
    mailbox, port = smtp
    m = await market(client, db)
    reg = await register(client, roles=("buyer",), verified=False, locale="zh-CN")
    headers = await _headers(client, reg["email"])
    assert reg["user"]["email_verified_at"] is None

    start, end = slot(30)
    refused = await book(client, headers, m["asset"]["id"], start, end)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "email_unverified"

    assert await _send_mail(client, port) >= 1
    mine = [msg for msg in mailbox.messages if msg["To"] == reg["email"]]
    assert len(mine) == 1
    assert mine[0]["Subject"] == "请确认您的电子邮箱"  # in the user's language
    token = _link(mine[0], "/verify-email")

    verified = await client.post("/api/v1/auth/verify-email", json={"token": token})
    assert verified.status_code == 200, verified.text
    assert verified.json()["email_verified_at"] is not None
    me = await client.get("/api/v1/me", headers=headers)
    assert me.json()["user"]["email_verified_at"] is not None

    booked = await book(client, headers, m["asset"]["id"], start, end, key="after-verification")
    assert booked.status_code == 201, booked.text


async def test_an_unverified_user_signs_in_and_prepares_but_cannot_book_publish_or_accept_invitations(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await market(client, db)
    reg = await register(client, roles=("supplier", "buyer"), country="CN", verified=False)
    headers = await _headers(client, reg["email"])  # signing in works
    await verify_org(db, reg["org"]["id"])  # even a verified organisation does not help an unproven person

    # Preparing works: profile, a site, a listing draft with its availability.
    assert (await client.patch("/api/v1/me", json={"full_name": "Ann Draft"}, headers=headers)).status_code == 200
    site = await client.post("/api/v1/sites", json=SUZHOU, headers=headers)
    assert site.status_code == 201, site.text
    asset = await create_asset(client, headers, machine_payload(site.json()["id"]))

    def refused(resp: Any) -> None:
        assert resp.status_code == 403, resp.text
        assert resp.json()["error"] == "email_unverified", resp.text
        assert "e-mail" in resp.json()["detail"]

    refused(await client.post(f"/api/v1/assets/{asset['id']}/submit", headers=headers))  # publishing
    # ... nor mint an API key to book with instead (a key counts as its organisation's verified credential).
    key = {"name": "MES", "scopes": ["bookings:write"]}
    refused(await client.post(f"/api/v1/orgs/{reg['org']['id']}/api-keys", json=key, headers=headers))
    start, end = slot(30)
    refused(await book(client, headers, m["asset"]["id"], start, end))  # booking
    refused(await client.get("/api/v1/invitations", headers=headers))  # seeing invitations to the address
    refused(await client.post("/api/v1/invitations/accept", json={"token": "x" * 43}, headers=headers))  # accepting one

    # Control: the same requests pass the check once the address is verified.
    from tests.factories import verify_email

    await verify_email(client, reg["user"]["id"])
    submitted = await client.post(f"/api/v1/assets/{asset['id']}/submit", headers=headers)
    assert submitted.status_code == 200, submitted.text
    assert (await book(client, headers, m["asset"]["id"], start, end, key="verified")).status_code == 201
    minted = await client.post(f"/api/v1/orgs/{reg['org']['id']}/api-keys", json=key, headers=headers)
    assert minted.status_code == 201, minted.text


async def test_a_verification_link_works_once_and_not_after_it_expires(client: AsyncClient, db: AsyncSession) -> None:
    from tests.factories import email_link_token

    reg = await register(client, verified=False)
    token = await email_link_token(client, reg["user"]["id"])
    first = await client.post("/api/v1/auth/verify-email", json={"token": token})
    assert first.status_code == 200, first.text
    again = await client.post("/api/v1/auth/verify-email", json={"token": token})
    assert again.status_code == 400 and again.json()["error"] == "invalid_token", again.text

    # Stored hashed: the clear token is nowhere in the table.
    stored = (await db.execute(sa.text("SELECT token_hash FROM email_tokens"))).scalars().all()
    assert token not in stored and len(stored) >= 1

    other = await register(client, verified=False)
    token = await email_link_token(client, other["user"]["id"])
    await db.execute(
        sa.text("UPDATE email_tokens SET expires_at = now() - interval '1 second' WHERE user_id = :u"),
        {"u": other["user"]["id"]},
    )
    await db.commit()
    expired = await client.post("/api/v1/auth/verify-email", json={"token": token})
    assert expired.status_code == 400 and expired.json()["error"] == "invalid_token", expired.text


async def test_resending_the_verification_replaces_the_old_link_and_answers_the_same_when_verified(
    client: AsyncClient,
) -> None:
    from tests.factories import email_link_token

    reg = await register(client, verified=False)
    headers = await _headers(client, reg["email"])
    old = await email_link_token(client, reg["user"]["id"])
    resent = await client.post("/api/v1/auth/verify-email/resend", headers=headers)
    assert resent.status_code == 202, resent.text
    new = await email_link_token(client, reg["user"]["id"])
    assert new != old
    assert (await client.post("/api/v1/auth/verify-email", json={"token": old})).status_code == 400
    assert (await client.post("/api/v1/auth/verify-email", json={"token": new})).status_code == 200
    again = await client.post("/api/v1/auth/verify-email/resend", headers=headers)
    assert (again.status_code, again.json()) == (resent.status_code, resent.json())
    assert await email_link_token(client, reg["user"]["id"]) == new  # nothing new was sent


# -- passwords -------------------------------------------------------------------------------------


async def test_password_reset_by_email_link_replaces_the_password_once_and_signs_out_everywhere(
    client: AsyncClient,
    db: AsyncSession,
    smtp: tuple[Mailbox, int],  # noqa: F811
) -> None:
    mailbox, port = smtp
    reg = await register(client)
    before = await _token_login(client, reg["email"], PASSWORD)
    assert before.status_code == 200
    refresh_token = before.json()["refresh_token"]
    await _send_mail(client, port)  # the verification mail of the registration
    mailbox.messages.clear()

    asked = await client.post("/api/v1/auth/password-reset", json={"email": reg["email"].upper()})
    assert asked.status_code == 202, asked.text
    assert await _send_mail(client, port) == 1
    assert [m["To"] for m in mailbox.messages] == [reg["email"]]
    assert mailbox.messages[0]["Subject"] == "Reset your password"
    token = _link(mailbox.messages[0], "/reset-password")
    lifetime = (
        await db.execute(
            sa.text(
                "SELECT extract(epoch FROM expires_at - created_at) FROM email_tokens "
                "WHERE user_id = :u AND purpose = 'reset_password'"
            ),
            {"u": reg["user"]["id"]},
        )
    ).scalar_one()
    assert float(lifetime) == 3600

    done = await client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD})
    assert done.status_code == 204, done.text
    assert (await _token_login(client, reg["email"], PASSWORD)).status_code == 401
    assert (await _token_login(client, reg["email"], NEW_PASSWORD)).status_code == 200
    # Every session that existed before the reset is gone.
    stale = await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})
    assert stale.status_code == 401, stale.text

    reused = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": "yet-another-password-1"}
    )
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_token"
    assert (await _token_login(client, reg["email"], NEW_PASSWORD)).status_code == 200


async def test_password_reset_for_an_unknown_address_answers_identically_and_sends_nothing(
    client: AsyncClient,
    smtp: tuple[Mailbox, int],  # noqa: F811
) -> None:
    mailbox, port = smtp
    reg = await register(client)
    await _send_mail(client, port)
    mailbox.messages.clear()

    unknown = await client.post("/api/v1/auth/password-reset", json={"email": unique_email("nobody")})
    assert await _send_mail(client, port) == 0
    assert mailbox.messages == []
    known = await client.post("/api/v1/auth/password-reset", json={"email": reg["email"]})
    assert await _send_mail(client, port) == 1
    assert len(mailbox.messages) == 1
    assert (unknown.status_code, unknown.json()) == (known.status_code, known.json())
    assert unknown.status_code == 202


async def test_changing_the_password_needs_the_current_one_and_signs_out_other_sessions(
    client: AsyncClient,
) -> None:
    reg = await register(client)
    other_device = (await _token_login(client, reg["email"], PASSWORD)).json()["refresh_token"]
    headers = await _headers(client, reg["email"])
    wrong = await client.post(
        "/api/v1/auth/change-password",
        json={"current_password": "not-the-password", "new_password": NEW_PASSWORD},
        headers=headers,
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "wrong_password", wrong.text
    assert (await _token_login(client, reg["email"], PASSWORD)).status_code == 200  # unchanged

    changed = await client.post(
        "/api/v1/auth/change-password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=headers,
    )
    assert changed.status_code == 204, changed.text
    assert (await _token_login(client, reg["email"], PASSWORD)).status_code == 401
    assert (await _token_login(client, reg["email"], NEW_PASSWORD)).status_code == 200
    stale = await client.post("/api/v1/auth/refresh", json={"refresh_token": other_device})
    assert stale.status_code == 401, stale.text
    anonymous = await client.post(
        "/api/v1/auth/change-password", json={"current_password": NEW_PASSWORD, "new_password": PASSWORD}
    )
    assert anonymous.status_code == 401


# -- the web pages (zh-CN and en) ------------------------------------------------------------------


async def _web_sign_in(client: AsyncClient, email: str, password: str = PASSWORD) -> None:
    token = csrf_token((await client.get("/login")).text)
    resp = await client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert resp.status_code == 303, resp.text


async def test_the_web_banner_and_verify_page_confirm_the_address_in_chinese(
    client: AsyncClient,
    smtp: tuple[Mailbox, int],  # noqa: F811
) -> None:
    mailbox, port = smtp
    client.headers["Accept-Language"] = "zh-CN"
    reg = await register(client, verified=False, locale="zh-CN")
    await _web_sign_in(client, reg["email"])
    dashboard = (await client.get("/dashboard")).text
    assert "data-verify-banner" in dashboard and "请确认您的电子邮箱" in dashboard

    await _send_mail(client, port)
    token = _link(mailbox.messages[-1], "/verify-email")
    page = await client.get(f"/verify-email?token={token}")  # opening the link changes nothing yet
    assert page.status_code == 200 and "确认我的电子邮箱" in page.text
    assert (await client.get("/dashboard")).text.count("data-verify-banner") == 1

    done = await client.post("/verify-email", data={"token": token, "csrf_token": csrf_token(page.text)})
    assert done.status_code == 200 and "data-verified" in done.text, done.text
    assert "data-verify-banner" not in (await client.get("/dashboard")).text
    again = await client.post("/verify-email", data={"token": token, "csrf_token": csrf_token(page.text)})
    assert again.status_code == 400 and "此链接无效、已被使用或已过期。" in again.text


async def test_forgot_and_reset_password_pages_and_change_password_on_the_account_page(
    client: AsyncClient,
    smtp: tuple[Mailbox, int],  # noqa: F811
) -> None:
    mailbox, port = smtp
    reg = await register(client)
    await _send_mail(client, port)
    mailbox.messages.clear()

    form = await client.get("/forgot-password")
    sent = await client.post("/forgot-password", data={"email": reg["email"], "csrf_token": csrf_token(form.text)})
    assert sent.status_code == 200 and "data-sent" in sent.text
    nobody = await client.post(
        "/forgot-password", data={"email": unique_email("x"), "csrf_token": csrf_token(form.text)}
    )
    assert nobody.status_code == 200 and "data-sent" in nobody.text  # the same page
    assert await _send_mail(client, port) == 1
    token = _link(mailbox.messages[0], "/reset-password")

    page = await client.get(f"/reset-password?token={token}")
    reset = await client.post(
        "/reset-password", data={"token": token, "new_password": NEW_PASSWORD, "csrf_token": csrf_token(page.text)}
    )
    assert reset.status_code == 303 and reset.headers["location"] == "/login?reset=1"
    await _web_sign_in(client, reg["email"], NEW_PASSWORD)

    account = await client.get("/account/password")
    assert account.status_code == 200
    wrong = await client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": "third-password-0", "csrf_token": csrf_token(account.text)},
    )
    assert wrong.status_code == 400 and "The current password is not correct." in wrong.text
    changed = await client.post(
        "/account/password",
        data={
            "current_password": NEW_PASSWORD,
            "new_password": "third-password-0",
            "csrf_token": csrf_token(account.text),
        },
    )
    assert changed.status_code == 200 and "data-changed" in changed.text, changed.text
    assert (await client.get("/account/password")).status_code == 200  # this browser stays signed in
    assert (await _token_login(client, reg["email"], "third-password-0")).status_code == 200


# -- the migration ---------------------------------------------------------------------------------


async def test_migration_0011_marks_the_accounts_that_already_exist_verified(db: AsyncSession) -> None:
    """Run 0011's real downgrade and upgrade inside the test's transaction: an account made before it (no
    column yet) comes out verified as of its creation; one registered afterwards starts unverified."""
    import importlib.util
    from pathlib import Path

    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    path = Path(__file__).resolve().parents[1] / "alembic" / "versions" / "0011_email_verification.py"
    spec = importlib.util.spec_from_file_location("migration_0011", path)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    conn = await db.connection()

    async def run(step: Any) -> None:
        def inner(sync_conn: Any) -> None:
            with Operations.context(MigrationContext.configure(sync_conn)):
                step()

        await conn.run_sync(inner)

    await run(migration.downgrade)
    old = uuid.uuid4()
    await db.execute(
        sa.text(
            "INSERT INTO users (id, email, password_hash, full_name, locale, is_platform_admin, is_active, "
            "created_at) VALUES (:id, :e, 'x', 'Old', 'en', false, true, now() - interval '30 days')"
        ),
        {"id": old, "e": unique_email("old")},
    )
    await run(migration.upgrade)
    row = (
        await db.execute(sa.text("SELECT email_verified_at = created_at FROM users WHERE id = :id"), {"id": old})
    ).scalar_one()
    assert row is True
    new = uuid.uuid4()
    await db.execute(
        sa.text(
            "INSERT INTO users (id, email, password_hash, full_name, locale, is_platform_admin, is_active) "
            "VALUES (:id, :e, 'x', 'New', 'en', false, true)"
        ),
        {"id": new, "e": unique_email("new")},
    )
    fresh = (await db.execute(sa.text("SELECT email_verified_at FROM users WHERE id = :id"), {"id": new})).scalar_one()
    assert fresh is None
