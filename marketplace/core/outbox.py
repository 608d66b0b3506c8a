"""The outbox relay (``marketplace relay``): moves due ``outbox`` rows to Celery.

Jobs are rows written by :func:`marketplace.core.jobs.enqueue` in the transaction of the change that causes them.
The relay, a process of its own, loops:

1. in one transaction, claim a batch of due rows (``due_at <= now()``, ``FOR UPDATE SKIP LOCKED``, oldest
   first), send each to Celery (``send_task``, no countdown or ETA: the due time lives in the row), delete the
   sent rows and commit;
2. sleep until a ``NOTIFY outbox`` arrives (the insert trigger's, delivered at the inserting commit), the next
   row falls due, or ``outbox_poll_seconds`` passed, whichever comes first.

Delivery is at least once: a crash or a failed commit after the send leaves the rows in place, and they are sent
again, so every task is idempotent. Several relays may run side by side; ``SKIP LOCKED`` gives each row to one
of them. When the broker refuses a send, the unsent rows stay (``attempts`` + 1, due time unchanged) and the
relay backs off exponentially; when the database goes away, it reconnects with the same back-off. Nothing is
ever lost, and no request ever talks to the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from celery import Celery
from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from marketplace.core.db import normalise_url
from marketplace.core.jobs import NOTIFY_CHANNEL, DueJob, OutboxRepository
from marketplace.core.settings import Settings

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0
# One send gives up quickly when the broker is down: the rows stay, and the relay's own back-off retries them.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0}


OUTBOX_JOBS = Gauge(
    "marketplace_outbox_jobs", "Jobs in the outbox: due (waiting for the relay) or scheduled", ["state"]
)
OUTBOX_OLDEST_DUE = Gauge(
    "marketplace_outbox_oldest_due_seconds", "How long the oldest due outbox job has waited for the relay (0: none)"
)


async def observe(engine: AsyncEngine, *, within_seconds: float = 1.0) -> bool:
    """Refresh the outbox gauges (``/metrics`` calls this per scrape: one index-only query). When the database
    does not answer within ``within_seconds`` the gauges keep their last values; returns whether they were
    refreshed."""

    async def read() -> None:
        async with AsyncSession(engine) as session:
            stats = await OutboxRepository(session).stats()
        OUTBOX_JOBS.labels(state="due").set(stats.due)
        OUTBOX_JOBS.labels(state="scheduled").set(stats.rows - stats.due)
        OUTBOX_OLDEST_DUE.set(stats.oldest_due_seconds)

    try:
        async with asyncio.timeout(within_seconds):
            await read()
    except Exception as exc:  # metrics never fail a scrape
        logger.debug("outbox gauges not refreshed: %s", type(exc).__name__)
        return False
    return True


@dataclass(frozen=True)
class PublishOutcome:
    sent: int  # jobs sent, in order, before the first failure
    error: BaseException | None = None


# Sends jobs in order and reports how many went out; it runs in a worker thread (the broker client blocks).
Publisher = Callable[[Sequence[DueJob]], PublishOutcome]


class CeleryPublisher:
    """Sends jobs to Celery over one producer connection per batch, results ignored."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def __call__(self, jobs: Sequence[DueJob]) -> PublishOutcome:
        sent = 0
        try:
            with self.app.producer_or_acquire() as producer:
                for job in jobs:
                    self.app.send_task(
                        job.task,
                        args=job.args,
                        ignore_result=True,
                        producer=producer,
                        retry=True,
                        retry_policy=PUBLISH_RETRY_POLICY,
                    )
                    sent += 1
        except Exception as exc:  # any broker failure: the unsent rows stay in the outbox for the next try
            return PublishOutcome(sent, exc)
        return PublishOutcome(sent)


@dataclass(frozen=True)
class BatchResult:
    claimed: int
    sent: int
    error: BaseException | None = None


def backoff(failures: int) -> float:
    """0.5 s, 1 s, 2 s ... up to 30 s after the ``failures``-th failure in a row."""
    return float(min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** max(0, failures - 1)))


class Relay:
    def __init__(
        self,
        engine: AsyncEngine,
        publish: Publisher,
        *,
        batch_size: int = 100,
        poll_seconds: float = 2.0,
        listen_engine: AsyncEngine | None = None,
    ) -> None:
        self.engine = engine
        self.listen_engine = listen_engine or engine
        self.publish = publish
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._stopping = False
        self._listener_lost = False
        self._db_failures = 0

    def stop(self) -> None:
        """Finish the batch in hand, then return from :meth:`run` (signal handlers call this)."""
        self._stopping = True
        self._wake.set()

    async def relay_due(self) -> BatchResult:
        """One transaction: claim due rows, send them, delete the sent ones, count a failed attempt on the rest."""
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            repo = OutboxRepository(session)
            jobs = await repo.claim_due(self.batch_size)
            if not jobs:
                await session.commit()
                return BatchResult(0, 0)
            outcome = await asyncio.to_thread(self.publish, jobs)
            await repo.delete([job.id for job in jobs[: outcome.sent]])
            if outcome.error is not None:
                await repo.count_failed_attempt([job.id for job in jobs[outcome.sent :]])
            await session.commit()
            return BatchResult(len(jobs), outcome.sent, outcome.error)

    async def _next_wait(self, claimed: int) -> float:
        async with AsyncSession(self.engine) as session:
            until = await OutboxRepository(session).seconds_until_next_due()
        if until is None:
            return self.poll_seconds
        if until <= 0:
            # Due rows left after a batch that made progress: go on at once. After an empty claim they are
            # another relay's (locked): look again after the poll interval.
            return 0.0 if claimed else self.poll_seconds
        return min(until, self.poll_seconds)

    async def _sleep(self, seconds: float) -> None:
        """Sleep up to ``seconds``; a NOTIFY, a lost listener or :meth:`stop` ends it early."""
        if seconds <= 0:
            return
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            pass

    def _notified(self, *_args: Any) -> None:
        self._wake.set()

    def _lost(self, *_args: Any) -> None:
        self._listener_lost = True
        self._wake.set()

    async def _listen_and_relay(self) -> None:
        """LISTEN on a connection of its own and relay until stopped or the listening connection dies."""
        async with self.listen_engine.connect() as conn:
            raw = await conn.get_raw_connection()
            listener = raw.driver_connection
            if listener is None:
                raise RuntimeError("the database driver gave no connection to LISTEN on")
            self._listener_lost = False
            await listener.add_listener(NOTIFY_CHANNEL, self._notified)
            listener.add_termination_listener(self._lost)
            logger.info("outbox relay: listening on channel %r", NOTIFY_CHANNEL)
            broker_failures = 0
            try:
                while not self._stopping and not self._listener_lost:
                    self._wake.clear()
                    result = await self.relay_due()
                    self._db_failures = 0
                    if result.error is not None:
                        broker_failures += 1
                        delay = backoff(broker_failures)
                        logger.warning(
                            "outbox relay: the broker refused a send (%s: %s); %d job(s) stay in the outbox, "
                            "retrying in %.1f s",
                            type(result.error).__name__,
                            result.error,
                            result.claimed - result.sent,
                            delay,
                        )
                        await self._sleep_ignoring_notify(delay)
                        continue
                    if broker_failures:
                        logger.info("outbox relay: the broker is back")
                    broker_failures = 0
                    if result.claimed >= self.batch_size:
                        continue
                    await self._sleep(await self._next_wait(result.claimed))
            finally:
                listener.remove_termination_listener(self._lost)
                if not self._listener_lost:
                    with contextlib.suppress(Exception):  # the connection is closed right after anyway
                        await listener.remove_listener(NOTIFY_CHANNEL, self._notified)

    async def _sleep_ignoring_notify(self, seconds: float) -> None:
        """Back-off: new rows must not cut it short (only :meth:`stop` does)."""
        deadline = asyncio.get_running_loop().time() + seconds
        while not self._stopping:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            self._wake.clear()
            await self._sleep(left)

    async def run(self) -> None:
        """Relay until :meth:`stop`; database outages and lost connections are retried with back-off."""
        while not self._stopping:
            try:
                await self._listen_and_relay()
                if self._listener_lost and not self._stopping:
                    logger.warning("outbox relay: lost the listening connection; reconnecting")
            except Exception as exc:  # the relay outlives any outage; it logs and tries again
                self._db_failures += 1
                delay = backoff(self._db_failures)
                logger.warning(
                    "outbox relay: %s: %s; retrying in %.1f s", type(exc).__name__, exc, delay, exc_info=True
                )
                await self._sleep_ignoring_notify(delay)


async def serve(database_url: str, app: Celery, settings: Settings) -> None:
    """The ``marketplace relay`` process: relay until SIGTERM or SIGINT."""
    url = normalise_url(database_url)
    engine = create_async_engine(url, pool_size=1, max_overflow=1, pool_pre_ping=True)
    # The listening connection is never pooled: closing it really ends the LISTEN.
    listen_engine = create_async_engine(url, poolclass=NullPool)
    relay = Relay(
        engine,
        CeleryPublisher(app),
        batch_size=settings.outbox_batch_size,
        poll_seconds=settings.outbox_poll_seconds,
        listen_engine=listen_engine,
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, relay.stop)
    logger.info("outbox relay: sending to queue %r", settings.celery_queue)
    try:
        await relay.run()
    finally:
        await listen_engine.dispose()
        await engine.dispose()
        logger.info("outbox relay: stopped")
