"""What people are told about messages: the in-app notice of a new message (not e-mailed on its own) and the
texts of the unread-messages e-mail digest, in English and Simplified Chinese."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.messages.models import Message, MessageThread
from marketplace.notifications.service import TEMPLATES, notify_org
from marketplace.orgs.repository import OrgRepository

EXCERPT_CHARS = 140

TEMPLATES.update(
    {
        ("message.received", "en"): ("New message from {who}", "{who} sent you a message: {excerpt}"),
        ("message.received", "zh-CN"): ("来自 {who} 的新消息", "{who} 给您发来一条消息：{excerpt}"),
        # Request threads do not name the buyer to the factory (opportunities hide the buyer until a deal).
        ("message.received_buyer", "en"): (
            "New message from a buyer",
            "A buyer sent you a message about a request: {excerpt}",
        ),
        ("message.received_buyer", "zh-CN"): ("来自买方的新消息", "一位买方就某个需求给您发来一条消息：{excerpt}"),
        ("message.received_platform", "en"): (
            "New message from the platform's dispute team",
            "The platform's dispute team wrote in your booking's thread: {excerpt}",
        ),
        ("message.received_platform", "zh-CN"): (
            "来自平台争议处理团队的新消息",
            "平台争议处理团队在您的预订对话中留言：{excerpt}",
        ),
        # The digest e-mail (sent straight to the address, never stored as a notification): a header and one
        # line per thread.
        ("messages.digest", "en"): (
            "You have {total} unread messages",
            "Hello {name},\n\nthese conversations have messages you have not read yet:\n\n{lines}\n\n"
            "Sign in to read and answer them.",
        ),
        ("messages.digest", "zh-CN"): (
            "您有 {total} 条未读消息",
            "{name}，您好：\n\n以下对话中有您尚未阅读的消息：\n\n{lines}\n\n请登录查看并回复。",
        ),
        ("messages.digest.request", "en"): ("", "- {other}, about a request (since {date}): {count} unread"),
        ("messages.digest.request", "zh-CN"): ("", "- {other}（需求对话，始于 {date}）：{count} 条未读"),
        ("messages.digest.a_buyer", "en"): ("", "A buyer"),
        ("messages.digest.a_buyer", "zh-CN"): ("", "一位买方"),
        ("messages.digest.booking", "en"): ("", "- {other}, about a booking (since {date}): {count} unread"),
        ("messages.digest.booking", "zh-CN"): ("", "- {other}（预订对话，始于 {date}）：{count} 条未读"),
    }
)


def excerpt(body: str) -> str:
    text = " ".join(body.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1].rstrip() + "…"


def buyer_hidden(thread: MessageThread, viewer_org_ids: set[uuid.UUID] | frozenset[uuid.UUID]) -> bool:
    """A request thread does not name the buyer to the factory's side (a booking thread names both)."""
    return thread.request_id is not None and thread.buyer_org_id not in viewer_org_ids


async def message_received(session: AsyncSession, *, thread: MessageThread, message: Message) -> int:
    """Tell the members of the other organisation (both, for a platform admin's message) in-app."""
    data: dict[str, str | None] = {
        "thread_id": str(thread.id),
        "message_id": str(message.id),
        "request_id": str(thread.request_id) if thread.request_id else None,
        "booking_id": str(thread.booking_id) if thread.booking_id else None,
        "excerpt": excerpt(message.body),
    }
    recipients: list[uuid.UUID]
    if message.author_org_id is None:
        kind = "message.received_platform"
        recipients = [thread.buyer_org_id, thread.supplier_org_id]
    elif thread.request_id is not None and message.author_org_id == thread.buyer_org_id:
        kind = "message.received_buyer"
        recipients = [thread.supplier_org_id]
    else:
        kind = "message.received"
        author = await OrgRepository(session).get(message.author_org_id)
        data["who"] = author.name if author is not None else ""
        recipients = [o for o in (thread.buyer_org_id, thread.supplier_org_id) if o != message.author_org_id]
    count = 0
    for org_id in recipients:
        count += await notify_org(session, org_id, kind=kind, data=dict(data), email=False)
    return count
