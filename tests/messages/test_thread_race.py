"""Two first messages of the same thread at once (the buyer and the factory both write before any thread
exists) end in one thread: the unique constraint decides and the insert yields to the winner. The control
does the naive insert in the same interleaving and shows the second one fails, so the race is real and this
test can fail."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from marketplace.core.principal import Principal
from marketplace.core.sqltypes import utcnow
from marketplace.messages import service
from marketplace.messages.models import MessageThread
from marketplace.orgs.models import Organisation
from marketplace.requests.models import BuyerRequest


async def _parties(maker: async_sessionmaker[AsyncSession]) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    async with maker() as session:
        buyer = Organisation(name="Race buyer", country="CN", roles=["buyer"])
        factory = Organisation(name="Race factory", country="CN", roles=["supplier"])
        session.add_all([buyer, factory])
        await session.flush()
        now = utcnow()
        request = BuyerRequest(
            buyer_org_id=buyer.id,
            kind="machine",
            process_code="machining.milling.cnc_3axis",
            duration_minutes=60,
            earliest_start=now + timedelta(days=1),
            deadline=now + timedelta(days=5),
            currency="CNY",
        )
        session.add(request)
        await session.commit()
        return buyer.id, factory.id, request.id


async def _interleave(
    maker: async_sessionmaker[AsyncSession],
    first: Callable[[AsyncSession], Awaitable[None]],
    second: Callable[[AsyncSession], Awaitable[None]],
) -> list[BaseException | None]:
    """``first`` writes and holds its transaction open while ``second`` writes the same key, then commits."""
    first_wrote = asyncio.Event()
    outcomes: list[BaseException | None] = [None, None]

    async def run_first() -> None:
        async with maker() as session:
            await first(session)
            first_wrote.set()
            await asyncio.sleep(0.5)  # the second is now blocked on the same unique key
            await session.commit()

    async def run_second() -> None:
        await first_wrote.wait()
        try:
            async with maker() as session:
                await second(session)
                await session.commit()
        except IntegrityError as exc:
            outcomes[1] = exc

    await asyncio.gather(run_first(), run_second())
    return outcomes


def _seat(org_id: uuid.UUID, buyer: uuid.UUID, factory: uuid.UUID, request_id: uuid.UUID) -> service.Seat:
    new = MessageThread(request_id=request_id, buyer_org_id=buyer, supplier_org_id=factory)
    return service.Seat(thread=None, org_id=org_id, new=new)


async def test_two_first_messages_at_once_share_one_thread(committed_engine: AsyncEngine) -> None:
    maker = async_sessionmaker(committed_engine, expire_on_commit=False)
    buyer, factory, request_id = await _parties(maker)

    def writer(org_id: uuid.UUID, body: str) -> Callable[[AsyncSession], Awaitable[None]]:
        async def write(session: AsyncSession) -> None:
            principal = Principal(user_id=None, memberships={org_id: "owner"})
            seat = _seat(org_id, buyer, factory, request_id)
            await service.post(session, principal, seat=seat, body=body, document_ids=[])

        return write

    outcomes = await _interleave(maker, writer(factory, "from the factory"), writer(buyer, "from the buyer"))
    assert outcomes == [None, None]
    async with maker() as session:
        rows = (
            await session.execute(
                sa.text(
                    "SELECT t.id, count(m.id) FROM message_threads t JOIN messages m ON m.thread_id = t.id "
                    "WHERE t.request_id = :r GROUP BY t.id"
                ),
                {"r": request_id},
            )
        ).all()
    assert len(rows) == 1 and rows[0][1] == 2


async def test_control_the_naive_insert_loses_the_same_race(committed_engine: AsyncEngine) -> None:
    maker = async_sessionmaker(committed_engine, expire_on_commit=False)
    buyer, factory, request_id = await _parties(maker)

    async def naive(session: AsyncSession) -> None:
        session.add(MessageThread(request_id=request_id, buyer_org_id=buyer, supplier_org_id=factory))
        await session.flush()

    outcomes = await _interleave(maker, naive, naive)
    assert outcomes[0] is None and isinstance(outcomes[1], IntegrityError)
