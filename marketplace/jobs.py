"""Enqueue Celery jobs only after the transaction that caused them has committed.

During a request (or a task's unit of work) ``enqueue_after_commit`` only buffers the job; the session
dependency sends the buffer after a successful commit and drops it on rollback, so a worker never sees
an id that was rolled back.
"""

from __future__ import annotations

import contextvars
import logging
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass
class _Job:
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    countdown: float | None = None


@dataclass
class JobBuffer:
    jobs: list[_Job] = field(default_factory=list)


_current: contextvars.ContextVar[JobBuffer | None] = contextvars.ContextVar("job_buffer", default=None)


def open_buffer() -> contextvars.Token[JobBuffer | None]:
    return _current.set(JobBuffer())


def enqueue_after_commit(task_name: str, *args: Any, countdown: float | None = None, **kwargs: Any) -> None:
    """Buffer a job by task name; sent by the unit of work after commit."""
    buffer = _current.get()
    job = _Job(task_name, args, kwargs, countdown)
    if buffer is None:
        raise RuntimeError("enqueue_after_commit called outside a unit of work")
    buffer.jobs.append(job)


def _send(job: _Job) -> None:
    from marketplace.celery_app import celery

    # Fire and forget: nobody waits for these jobs' return values (their effects are in the database), so
    # the sender does not subscribe to the job's result channel on the Redis result backend (one SUBSCRIBE
    # and pub/sub bookkeeping per job, on the request's event loop), and the worker does not store a result
    # that nobody reads (``ignore_result`` travels in the message).
    celery.send_task(job.name, args=job.args, kwargs=job.kwargs, countdown=job.countdown, ignore_result=True)


def flush_buffer(token: contextvars.Token[JobBuffer | None]) -> None:
    buffer = _current.get()
    _current.reset(token)
    for job in buffer.jobs if buffer else []:
        try:
            _send(job)
        except Exception:  # the scheduled sweeps pick up anything a broker outage drops
            logger.exception("could not enqueue %s", job.name)


def discard_buffer(token: contextvars.Token[JobBuffer | None]) -> None:
    _current.reset(token)
