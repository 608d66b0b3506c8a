"""A real Celery worker process, consuming from real Redis and writing to real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from celery import Celery

from marketplace.core.celery import kombu_url

pytestmark = pytest.mark.worker


@pytest.fixture
def worker_queue() -> str:
    return f"test-worker-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def celery_worker_proc(committed_db_url: str, redis_url: str, worker_queue: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "MARKETPLACE_DATABASE_URL": committed_db_url,
        "MARKETPLACE_REDIS_URL": redis_url,
        "MARKETPLACE_CELERY_QUEUE": worker_queue,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "marketplace.celery_app:celery",
            "worker",
            "--pool=solo",
            "--loglevel=WARNING",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _client(redis_url: str, queue: str) -> Celery:
    url = kombu_url(redis_url)
    app = Celery("test-client", broker=url, backend=url)
    app.conf.task_default_queue = queue
    return app


def test_task_round_trip_through_worker_and_redis(
    celery_worker_proc: subprocess.Popen[bytes], redis_url: str, worker_queue: str, committed_db_url: str
) -> None:
    client = _client(redis_url, worker_queue)
    token = uuid.uuid4().hex
    result = client.send_task("marketplace.health.roundtrip", args=[token])
    try:
        value = result.get(timeout=60)
    except Exception:
        celery_worker_proc.terminate()
        out = celery_worker_proc.communicate(timeout=20)[0].decode(errors="replace")
        raise AssertionError(f"worker did not answer; its output:\n{out}") from None
    assert value == {"token": token, "database": committed_db_url.rsplit("/", 1)[-1].split("?")[0]}


def test_a_task_sent_to_another_queue_is_not_consumed(
    celery_worker_proc: subprocess.Popen[bytes], redis_url: str
) -> None:
    """Control for the round trip: the answer really comes from the worker on our queue."""
    client = _client(redis_url, f"nobody-listens-{uuid.uuid4().hex[:6]}")
    result = client.send_task("marketplace.health.roundtrip", args=["x"])
    time.sleep(3)
    assert result.state == "PENDING"
    result.forget()
