"""The booking action routes come from one table that must cover the transition table, with the OpenAPI each
route had when it was written by hand; and the webhook list reads every endpoint's delivery log in one query."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from marketplace.app import create_app
from marketplace.bookings.endpoints import ACTION_ROUTES, ActionRoute
from marketplace.bookings.transitions import TRANSITIONS
from marketplace.core.sqltypes import utcnow
from marketplace.notifications.models import WebhookDelivery, WebhookEndpoint
from tests.factories import signed_up
from tests.statements import statements


def _uncovered(routes: tuple[ActionRoute, ...]) -> set[str]:
    """Actions a buyer or supplier may perform that have no route (``resolve`` is the admin's own route)."""
    people = {action for (_, action), (_, roles) in TRANSITIONS.items() if roles & {"buyer", "supplier"}}
    return people - {r.action for r in routes}


def test_every_action_a_person_performs_has_one_route() -> None:
    assert _uncovered(ACTION_ROUTES) == set()
    assert len({r.action for r in ACTION_ROUTES}) == len(ACTION_ROUTES) == len({r.path for r in ACTION_ROUTES})
    # Control: a table that forgot an action is caught.
    assert _uncovered(tuple(r for r in ACTION_ROUTES if r.action != "confirm")) == {"confirm"}


def _body(operation: dict[str, Any]) -> tuple[bool, Any] | None:
    body = operation.get("requestBody")
    if body is None:
        return None
    return bool(body.get("required")), body["content"]["application/json"]["schema"]


def test_action_routes_keep_their_hand_written_openapi() -> None:
    paths = create_app().openapi()["paths"]

    def maybe(name: str) -> tuple[bool, Any]:
        """An optional body (the component's name is qualified where another room has a schema of that name)."""
        return False, {"anyOf": [{"$ref": f"#/components/schemas/{name}"}, {"type": "null"}], "title": "Data"}

    expected: dict[str, tuple[str, str, tuple[bool, Any] | None]] = {
        "payment/accept-terms": (
            "accept_terms_api_v1_bookings__booking_id__payment_accept_terms_post",
            "Buyer accepts the invoice terms: the held booking becomes a request to the supplier",
            None,
        ),
        "accept": ("accept_api_v1_bookings__booking_id__accept_post", "Accept", None),
        "decline": (
            "decline_api_v1_bookings__booking_id__decline_post",
            "Decline",
            maybe("ReasonIn"),
        ),
        "cancel": (
            "cancel_api_v1_bookings__booking_id__cancel_post",
            "Cancel (buyer or supplier); the refund follows the snapshotted policy",
            maybe("ReasonIn"),
        ),
        "start": (
            "start_api_v1_bookings__booking_id__start_post",
            "Supplier check-in (from 24 hours before the start)",
            None,
        ),
        "complete": (
            "complete_api_v1_bookings__booking_id__complete_post",
            "Supplier marks the work completed (a reason is required before the booked start)",
            maybe("CompleteIn"),
        ),
        "release": (
            "release_api_v1_bookings__booking_id__release_post",
            "Supplier releases the machine time left after an early completion (audited, on the timeline)",
            maybe("ReleaseIn"),
        ),
        "confirm": (
            "confirm_api_v1_bookings__booking_id__confirm_post",
            "Buyer confirms the work: the booking settles",
            None,
        ),
        "dispute": (
            "dispute_api_v1_bookings__booking_id__dispute_post",
            "Dispute",
            (True, {"$ref": "#/components/schemas/DisputeIn"}),
        ),
    }
    for suffix, (operation_id, summary, body) in expected.items():
        operation = paths[f"/api/v1/bookings/{{booking_id}}/{suffix}"]["post"]
        assert (operation["operationId"], operation["summary"], _body(operation)) == (operation_id, summary, body)
        assert [p["name"] for p in operation["parameters"]] == ["booking_id", "Idempotency-Key"]
        assert set(operation["responses"]) == {"200", "401", "403", "404", "409", "422"}
    assert "description" in paths["/api/v1/bookings/{booking_id}/release"]["post"]


async def test_the_webhook_list_reads_every_delivery_log_in_one_query(
    client: AsyncClient, db: AsyncSession, connection: AsyncConnection
) -> None:
    reg, owner = await signed_up(client, roles=("buyer",))
    org_id = uuid.UUID(reg["org"]["id"])
    now = utcnow()
    endpoints = [
        WebhookEndpoint(
            org_id=org_id,
            url=f"https://hooks.example.com/{i}",
            secret="whsec_x",
            events=["booking.*"],
            created_at=now + timedelta(seconds=i),
        )
        for i in range(3)
    ]
    db.add_all(endpoints)
    await db.flush()
    busy, quiet, some = endpoints
    db.add_all(
        WebhookDelivery(endpoint_id=busy.id, event="booking.held", payload={}, created_at=now + timedelta(minutes=i))
        for i in range(52)
    )
    db.add_all(
        WebhookDelivery(endpoint_id=some.id, event="booking.confirmed", payload={}, created_at=now) for _ in range(2)
    )
    await db.commit()

    with statements(connection) as seen:
        response = await client.get(f"/api/v1/orgs/{org_id}/webhooks", headers=owner)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [i["id"] for i in items] == [str(busy.id), str(quiet.id), str(some.id)]
    assert [len(i["deliveries"]) for i in items] == [50, 0, 2]
    created = [datetime.fromisoformat(d["created_at"]) for d in items[0]["deliveries"]]
    # Newest first, and the two oldest of the 52 are left out.
    assert created == [now + timedelta(minutes=i) for i in range(51, 1, -1)]
    reads = [s for s in seen if "webhook_deliveries" in s]
    # Three endpoints, yet one read of their deliveries (a query per endpoint would make three).
    assert len(reads) == 1, reads
