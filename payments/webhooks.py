"""Stripe webhooks: verify, store once, process later.

1. :func:`verify` checks the signature on the raw body (``stripe.Webhook.construct_event``; a bad
   signature or a timestamp older than the tolerance is refused);
2. :func:`store` inserts the event under its unique event id; a duplicate delivery inserts nothing;
3. the endpoint answers 2xx at once; a Celery task calls :func:`process`, which **re-fetches** the object
   from Stripe instead of trusting the event's copy or the order of delivery. Every money movement it
   causes is keyed (journals and Stripe idempotency keys), so duplicates and out-of-order deliveries
   apply exactly once. Unknown event types are recorded and ignored.

:func:`process` returns what the booking side must do (``Action``); the shell applies it, because this
package never imports the app shell.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy.ext.asyncio import AsyncSession

from payments.errors import PaymentsError
from payments.repository import PaymentsRepository
from payments.stripe_gateway import StripeGateway


class InvalidSignature(PaymentsError):
    """The webhook signature is missing, wrong, or too old."""

    status_code = 400
    code = "invalid_signature"


@dataclass(frozen=True)
class Action:
    """A booking transition the payments side asks the shell to perform (as the system)."""

    action: str  # pay | dispute
    booking_id: uuid.UUID
    reason: str


HANDLED = (
    "payment_intent.amount_capturable_updated",
    "payment_intent.succeeded",
    "payment_intent.canceled",
    "payment_intent.payment_failed",
    "payment_intent.requires_action",
    "account.updated",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
)


def verify(payload: bytes, signature: str | None, *, secret: str, tolerance: int = 300) -> dict[str, Any]:
    if not signature:
        raise InvalidSignature("Missing Stripe-Signature header.")
    if not signature.isascii():  # the SDK's compare_digest would raise TypeError on non-ASCII str
        raise InvalidSignature("Signature verification failed: malformed Stripe-Signature header.")
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret, tolerance=tolerance)
    except stripe.SignatureVerificationError as exc:
        raise InvalidSignature(f"Signature verification failed: {exc.user_message or exc}") from None
    except ValueError:
        raise InvalidSignature("The body is not a Stripe event.") from None
    data: dict[str, Any] = json.loads(payload)
    if not isinstance(data, dict) or not data.get("id") or not getattr(event, "type", None):
        raise InvalidSignature("The body is not a Stripe event.")
    return data


async def store(session: AsyncSession, event: dict[str, Any]) -> bool:
    """Record the event once. True if it is new (then processing must be enqueued)."""
    obj = (event.get("data") or {}).get("object") or {}
    object_id = obj.get("id") if isinstance(obj, dict) else None
    return await PaymentsRepository(session).store_event(
        str(event["id"]), type_=str(event.get("type", "")), object_id=object_id, payload=event
    )


async def process(session: AsyncSession, gateway: StripeGateway, event_id: str) -> list[Action]:
    """Apply one stored event (once). Returns the booking transitions to perform."""
    repo = PaymentsRepository(session)
    event = await repo.event(event_id, for_update=True)
    if event is None or event.status in ("processed", "ignored"):
        return []
    type_, object_id = event.type, event.object_id
    if type_ not in HANDLED or not object_id:
        await repo.mark_event(event, "ignored")
        return []
    actions: list[Action] = []
    if type_.startswith("payment_intent."):
        payment, status = await gateway.sync_intent(session, object_id)
        if payment is not None and status == "requires_capture":
            actions.append(Action("pay", payment.booking_id, "card hold in place"))
    elif type_ == "account.updated":
        await gateway.sync_account(session, object_id)
    elif type_.startswith("charge.dispute."):
        payment, status = await gateway.sync_dispute(session, object_id)
        if payment is not None and status not in ("won", "lost", "warning_closed"):
            actions.append(Action("dispute", payment.booking_id, f"card dispute {object_id} ({status})"))
    await repo.mark_event(event, "processed")
    return actions
