"""``marketplace.jobs``: jobs buffered in a unit of work reach the broker (real Redis) only when it commits,
as fire-and-forget messages: the sender does not wait for, and the worker does not store, a result."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import redis

from marketplace import celery_app, jobs
from marketplace.settings import Settings


@pytest.fixture
def queue(redis_url: str) -> Iterator[str]:
    name = f"test-jobs-{uuid.uuid4().hex[:8]}"
    celery_app.configure(redis_url, Settings(environment="test", jwt_secret="x" * 40, celery_queue=name))
    yield name
    client = redis.Redis.from_url(redis_url)
    client.delete(name)
    client.close()


def _messages(redis_url: str, queue: str) -> list[dict[str, object]]:
    client = redis.Redis.from_url(redis_url)
    try:
        return [json.loads(raw) for raw in client.lrange(queue, 0, -1)]
    finally:
        client.close()


def test_jobs_are_sent_after_commit_as_fire_and_forget_messages(redis_url: str, queue: str) -> None:
    token = jobs.open_buffer()
    jobs.enqueue_after_commit("bookings.expire_one", "booking-1", countdown=60)
    assert _messages(redis_url, queue) == []  # buffered, not sent
    jobs.flush_buffer(token)
    (message,) = _messages(redis_url, queue)
    headers = message["headers"]
    assert isinstance(headers, dict)
    assert headers["task"] == "bookings.expire_one"
    assert headers["eta"] is not None  # the countdown travels as an ETA
    assert headers["ignore_result"] is True  # the worker stores no result that nobody reads
    task_id = str(headers["id"])
    # The sender did not subscribe to the job's result channel (celery-task-meta-<id>) on the result backend.
    subscribed = getattr(celery_app.celery.backend.result_consumer, "subscribed_to", set())
    assert not [k for k in subscribed if task_id in (k.decode() if isinstance(k, bytes) else str(k))]


def test_jobs_of_a_rolled_back_unit_of_work_are_dropped(redis_url: str, queue: str) -> None:
    token = jobs.open_buffer()
    jobs.enqueue_after_commit("bookings.expire_one", "booking-2", countdown=60)
    jobs.discard_buffer(token)
    assert _messages(redis_url, queue) == []
