"""Real processes for the tests that need them: the outbox relay, Celery workers and beat started through the
``marketplace`` CLI exactly as in production, and a private ``redis-server`` a test may stop and start again.

Every process writes its output to a log file; ``Proc.output()`` returns it for failure messages.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A child process with its output in a file."""

    def __init__(self, args: list[str], env: dict[str, str], name: str) -> None:
        self.name = name
        self.log = Path(tempfile.mkstemp(prefix=f"mk-{name}-", suffix=".log")[1])
        self._out = self.log.open("wb")
        self.popen = subprocess.Popen(args, env=env, stdout=self._out, stderr=subprocess.STDOUT, cwd=ROOT)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        self._out.flush()
        return self.log.read_text(errors="replace")

    def kill9(self) -> None:
        """SIGKILL: no chance to acknowledge, requeue or clean up anything."""
        if self.alive():
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        self._out.close()

    def cleanup(self) -> None:
        self.stop()
        self.log.unlink(missing_ok=True)


def app_env(database_url: str, redis_url: str, queue: str, **settings: Any) -> dict[str, str]:
    """The environment of an application process: ``settings`` are Settings fields (``outbox_poll_seconds=1``)."""
    env = {
        **os.environ,
        "MARKETPLACE_ENVIRONMENT": "test",
        "MARKETPLACE_DATABASE_URL": database_url,
        "MARKETPLACE_REDIS_URL": redis_url,
        "MARKETPLACE_CELERY_QUEUE": queue,
        "MARKETPLACE_WEBHOOK_ALLOW_PRIVATE": "true",
    }
    env.update({f"MARKETPLACE_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def marketplace(command: list[str], env: dict[str, str], name: str) -> Proc:
    return Proc([sys.executable, "-m", "marketplace", *command], env, name)


@contextmanager
def running(proc: Proc) -> Iterator[Proc]:
    try:
        yield proc
    finally:
        proc.cleanup()


def relay(database_url: str, redis_url: str, queue: str, **settings: Any) -> Proc:
    settings.setdefault("outbox_poll_seconds", 1)
    return marketplace(["relay", "--loglevel", "INFO"], app_env(database_url, redis_url, queue, **settings), "relay")


def worker(
    database_url: str, redis_url: str, queue: str, *, pool: str = "solo", concurrency: int = 1, **settings: Any
) -> Proc:
    command = ["worker", "--pool", pool, "--concurrency", str(concurrency), "--loglevel", "WARNING"]
    return marketplace(command, app_env(database_url, redis_url, queue, **settings), "worker")


def beat(database_url: str, redis_url: str, queue: str, data_dir: Path, **settings: Any) -> Proc:
    env = app_env(database_url, redis_url, queue, data_dir=data_dir, **settings)
    return marketplace(["beat", "--loglevel", "WARNING"], env, "beat")


def wait_until(probe: Any, *, within: float, what: str, interval: float = 0.2, procs: tuple[Proc, ...] = ()) -> Any:
    """Call ``probe()`` until it returns something truthy (synchronous probes)."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    logs = "\n".join(f"--- {p.name} output ---\n{p.output()[-4000:]}" for p in procs)
    raise AssertionError(f"{what} not reached within {within} s (last: {last!r})\n{logs}")


# -- what is in a Celery queue on Redis ------------------------------------------------------------


def queued(redis_url: str, queue: str) -> list[tuple[str, list[Any]]]:
    """(task, args) of every message waiting in ``queue`` (oldest first), read without consuming them."""
    client = redis.Redis.from_url(redis_url)
    try:
        raw = client.lrange(queue, 0, -1)
    finally:
        client.close()
    out = []
    for item in reversed(raw):  # kombu LPUSHes and BRPOPs: the oldest message is at the right
        message = json.loads(item)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        out.append((message["headers"]["task"], args))
    return out


def drop_queue(redis_url: str, queue: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{queue}*")) + list(client.scan_iter(match=f"_kombu.binding.{queue}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


# -- a private redis-server ------------------------------------------------------------------------


class RedisServer:
    """A redis-server of the test's own on a free port (no persistence), which it may stop and start again."""

    def __init__(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.skip("redis-server is not installed")
        self.exe = exe
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client = redis.Redis.from_url(self.url)
                try:
                    if client.ping():
                        return self
                finally:
                    client.close()
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


def task_client(redis_url: str, queue: str, name: str) -> Any:
    """A Celery client that sends tasks to ``queue`` and reads their results (the test's own worker)."""
    from celery import Celery

    from marketplace.core.celery import kombu_url

    url = kombu_url(redis_url)
    app = Celery(name, broker=url, backend=url)
    app.conf.task_default_queue = queue
    return app


def run_task(client: Any, worker: Proc, name: str, *args: Any) -> Any:
    """Run ``name`` on the test's worker and return its result; the worker's output when it does not answer."""
    result = client.send_task(name, args=list(args))
    try:
        return result.get(timeout=60)
    except Exception:
        raise AssertionError(f"the worker did not answer {name}; its output:\n{worker.output()}") from None
