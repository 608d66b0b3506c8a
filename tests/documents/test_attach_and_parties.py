"""Attaching documents to other rooms' objects, and the party checks that let the other side read them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.errors import Unprocessable
from marketplace.core.principal import Principal
from marketplace.documents import access, service
from tests.bookings.helpers import book, market, slot
from tests.documents import samples
from tests.documents.helpers import uploaded
from tests.factories import signed_up


def _principal(reg: dict[str, object]) -> Principal:
    user = reg["user"]
    org = reg["org"]
    assert isinstance(user, dict) and isinstance(org, dict)
    return Principal(user_id=uuid.UUID(user["id"]), memberships={uuid.UUID(org["id"]): "owner"})


@pytest.fixture
def shared_kind() -> Iterator[tuple[str, set[uuid.UUID]]]:
    """A test-only target kind whose parties are the organisations in the returned set."""
    kind = f"test-{uuid.uuid4().hex[:8]}"
    parties: set[uuid.UUID] = set()

    async def check(session: AsyncSession, target_id: uuid.UUID, org_ids: frozenset[uuid.UUID]) -> bool:
        return bool(parties & org_ids)

    access.register_party_check(kind, check)
    yield kind, parties
    access.PARTY_CHECKS.pop(kind, None)


async def test_a_party_check_grants_access_to_an_attached_document(
    client: AsyncClient, db: AsyncSession, shared_kind: tuple[str, set[uuid.UUID]]
) -> None:
    kind, parties = shared_kind
    owner_reg, owner = await signed_up(client, roles=("buyer",))
    party_reg, party = await signed_up(client, roles=("supplier",))
    doc = await uploaded(client, owner, samples.IGES, "part.igs")
    target = uuid.uuid4()
    await service.attach(
        db, principal=_principal(owner_reg), document_ids=[uuid.UUID(doc["id"])], target_kind=kind, target_id=target
    )
    assert (await client.get(f"/api/v1/documents/{doc['id']}", headers=party)).status_code == 404  # not a party yet
    parties.add(uuid.UUID(party_reg["org"]["id"]))
    got = await client.get(f"/api/v1/documents/{doc['id']}", headers=party)
    assert got.status_code == 200 and got.content == samples.IGES


async def test_attach_is_idempotent_and_refuses_documents_of_another_organisation(
    client: AsyncClient, db: AsyncSession
) -> None:
    reg, headers = await signed_up(client, roles=("buyer",))
    other_reg, other = await signed_up(client, roles=("buyer",))
    mine = await uploaded(client, headers, samples.PDF)
    theirs = await uploaded(client, other, samples.PNG, "x.png")
    principal = _principal(reg)
    target = uuid.uuid4()
    ids = [uuid.UUID(mine["id"])]
    for _ in range(2):
        docs = await service.attach(db, principal=principal, document_ids=ids, target_kind="request", target_id=target)
        assert [d.id for d in docs] == ids
    assert [d.id for d in await service.attached(db, target_kind="request", target_id=target)] == ids
    with pytest.raises(Unprocessable) as refused:
        await service.attach(
            db, principal=principal, document_ids=[uuid.UUID(theirs["id"])], target_kind="request", target_id=target
        )
    assert theirs["id"] in refused.value.detail
    missing = uuid.uuid4()
    with pytest.raises(Unprocessable):
        await service.attach(db, principal=principal, document_ids=[missing], target_kind="request", target_id=target)
    out = service.document_out(docs[0])
    assert out.id == ids[0] and out.sha256 == mine["sha256"]
    assert other_reg["org"]["id"] != reg["org"]["id"]


async def test_the_parties_of_a_booking_read_its_documents_and_a_third_organisation_does_not(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await market(client, db)
    start, end = slot(48)
    resp = await book(client, m["buyer"], m["asset"]["id"], start, end)
    assert resp.status_code == 201, resp.text
    booking = resp.json()
    # the supplier uploads a report and attaches it to the booking
    doc = await uploaded(client, m["supplier"], samples.PDF, "report.pdf")
    supplier_principal = Principal(user_id=None, memberships={uuid.UUID(booking["supplier_org_id"]): "member"})
    await service.attach(
        db,
        principal=supplier_principal,
        document_ids=[uuid.UUID(doc["id"])],
        target_kind="booking",
        target_id=uuid.UUID(booking["id"]),
    )
    got = await client.get(f"/api/v1/documents/{doc['id']}", headers=m["buyer"])
    assert got.status_code == 200 and got.content == samples.PDF
    _third_reg, third = await signed_up(client, roles=("buyer",))
    assert (await client.get(f"/api/v1/documents/{doc['id']}", headers=third)).status_code == 404
