"""Issue #15 item 5: the unread-messages e-mail digest, delivered to a real SMTP server (aiosmtpd): one e-mail
per user in the user's language, never twice for the same messages."""

from __future__ import annotations

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.core.settings import Settings
from marketplace.core.sqltypes import utcnow
from marketplace.messages.tasks import digest_all, run_digest
from tests.bookings.test_delivery import Mailbox, smtp  # noqa: F401  (the SMTP fixture)
from tests.messages.helpers import world


async def _time_passes(db: AsyncSession, minutes: int) -> None:
    """Move every stored time of the messages room ``minutes`` into the past (as if that much time passed)."""
    for table, column in (
        ("messages", "created_at"),
        ("message_reads", "read_until"),
        ("message_digest_marks", "sent_at"),
    ):
        await db.execute(sa.text(f"UPDATE {table} SET {column} = {column} - make_interval(mins => :m)"), {"m": minutes})


async def test_one_digest_per_user_in_the_users_language_never_twice(
    client: AsyncClient,
    db: AsyncSession,
    smtp: tuple[Mailbox, int],  # noqa: F811
) -> None:
    mailbox, port = smtp
    mail = Settings(environment="test", smtp_host="127.0.0.1", smtp_port=port, message_digest_minutes=60)
    w = await world(client, db, buyer_locale="zh-CN")
    url = f"/api/v1/requests/{w['request']['id']}/messages"
    for text in ("first", "second"):
        assert (await client.post(url, json={"body": text}, headers=w["supplier"])).status_code == 201

    # Too recent: nothing yet.
    assert await digest_all(db, mail) == 0
    await _time_passes(db, 61)
    assert await digest_all(db, mail) == 1
    assert len(mailbox.messages) == 1 and mailbox.recipients[0] == [w["buyer_email"]]
    msg = mailbox.messages[0]
    assert msg["Subject"] == "您有 2 条未读消息"
    assert f"- {w['supplier_name']}（需求对话" in msg.get_content() and "2 条未读" in msg.get_content()

    # The same sweep again (a redelivered job, the next beat, hours later): no second e-mail.
    assert await digest_all(db, mail) == 0
    await _time_passes(db, 180)
    assert await digest_all(db, mail) == 0
    assert len(mailbox.messages) == 1

    # A newer unread message is mailed once it is old enough (the count covers everything unread) ...
    assert (await client.post(url, json={"body": "third"}, headers=w["supplier"])).status_code == 201
    assert await digest_all(db, mail) == 0
    await _time_passes(db, 61)
    assert await digest_all(db, mail) == 1
    assert len(mailbox.messages) == 2 and mailbox.messages[1]["Subject"] == "您有 3 条未读消息"
    # ... and one the buyer has read is not.
    assert (await client.post(url, json={"body": "fourth"}, headers=w["supplier"])).status_code == 201
    read = await client.get(url, params={"supplier_org_id": w["supplier_org"]}, headers=w["buyer"])
    assert read.status_code == 200
    await _time_passes(db, 300)
    assert await digest_all(db, mail) == 0
    assert len(mailbox.messages) == 2
    # The supplier wrote them all: it never got a digest.
    assert all(r == [w["buyer_email"]] for r in mailbox.recipients)


async def test_the_english_digest_goes_to_the_supplier_when_the_buyer_writes(
    client: AsyncClient,
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    smtp: tuple[Mailbox, int],  # noqa: F811
) -> None:
    mailbox, port = smtp
    mail = Settings(environment="test", smtp_host="127.0.0.1", smtp_port=port, message_digest_minutes=5)
    w = await world(client, db)
    url = f"/api/v1/requests/{w['request']['id']}/messages"
    body = {"body": "Quote follows tomorrow.", "supplier_org_id": w["supplier_org"]}
    assert (await client.post(url, json=body, headers=w["buyer"])).status_code == 201
    await _time_passes(db, 6)
    # The task's own loop: one unit of work per user.
    assert await run_digest(sessionmaker, mail, now=utcnow()) == 1
    assert await run_digest(sessionmaker, mail, now=utcnow()) == 0
    msg = mailbox.messages[0]
    assert len(mailbox.messages) == 1 and mailbox.recipients[0] == [w["supplier_email"]]
    assert msg["Subject"] == "You have 1 unread messages"
    # A request thread does not name the buyer to the factory.
    assert "- A buyer, about a request (since " in msg.get_content() and "1 unread" in msg.get_content()
