"""The command line: every command documents itself; create-admin is idempotent; `run` starts the API,
the outbox relay, a worker and beat together and one Ctrl-C stops all of them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import httpx
import psutil
import pytest
import sqlalchemy as sa
import typer
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from marketplace.cli import app
from tests.conftest import _admin, _with_database

COMMANDS = ["run", "serve", "relay", "worker", "beat", "migrate", "create-admin", "seed"]


def test_every_command_has_help() -> None:
    group = typer.main.get_command(app)
    names = set(group.commands)  # type: ignore[attr-defined]
    assert set(COMMANDS) <= names
    for name in COMMANDS:
        out = subprocess.run(
            [sys.executable, "-m", "marketplace", name, "--help"], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        assert "Usage" in out.stdout and "--help" in out.stdout


def _env(db_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "MARKETPLACE_DATABASE_URL": db_url, "MARKETPLACE_REDIS_URL": redis_url, **extra}


async def test_create_admin_is_idempotent(server_url: str, redis_url: str) -> None:
    name = f"mk_cli_{uuid.uuid4().hex[:8]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    url = _with_database(server_url, name)
    try:
        env = _env(url, redis_url)
        migrate = subprocess.run(
            [sys.executable, "-m", "marketplace", "migrate"], env=env, capture_output=True, text=True, timeout=120
        )
        assert migrate.returncode == 0, migrate.stderr
        cmd = [
            sys.executable,
            "-m",
            "marketplace",
            "create-admin",
            "--email",
            "Ops@Example.com",
            "--password",
            "a-long-password",
        ]
        first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        second = subprocess.run([*cmd[:-1], "another-password"], env=env, capture_output=True, text=True, timeout=60)
        assert first.returncode == second.returncode == 0, first.stderr + second.stderr
        assert "created" in first.stdout and "already exists" in second.stdout
        assert "a-long-password" not in first.stdout + first.stderr
        short = subprocess.run([*cmd[:-1], "short"], env=env, capture_output=True, text=True, timeout=60)
        assert short.returncode == 2
        engine = create_async_engine(url, poolclass=NullPool)
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT email, is_platform_admin FROM users"))).all()
        await engine.dispose()
        assert rows == [("ops@example.com", True)]
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_run_serves_with_relay_worker_and_beat_and_ctrl_c_stops_everything(
    server_url: str, redis_url: str
) -> None:
    name = f"mk_run_{uuid.uuid4().hex[:8]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    url = _with_database(server_url, name)
    port = _free_port()
    # Other tests sign in from 127.0.0.1 on the same Redis: give this run room in the rate limit.
    env = _env(
        url, redis_url, MARKETPLACE_CELERY_QUEUE=f"run-{uuid.uuid4().hex[:6]}", MARKETPLACE_AUTH_RATE_LIMIT="100000"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "marketplace", "run", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        ready = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    ready = True
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert ready, proc.stdout.read() if proc.stdout and proc.poll() is not None else "no /healthz in 90 s"
        children = psutil.Process(proc.pid).children(recursive=True)
        commands = " ".join(" ".join(c.cmdline()) for c in children)
        assert "serve" in commands and "worker" in commands and "beat" in commands and "relay" in commands
        # The demo data is there: listings are searchable.
        found = httpx.get(f"http://127.0.0.1:{port}/api/v1/assets?limit=5", timeout=10).json()["items"]
        assert found
        token = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/auth/token",
            data={"username": "admin@example.com", "password": "admin-password-123"},
            timeout=10,
        )
        assert token.status_code == 200
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=40)
        time.sleep(0.5)
        alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        assert alive == [], [c.cmdline() for c in alive]
    finally:
        if proc.poll() is None:
            proc.kill()
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_killing_run_leaves_no_orphans(server_url: str, redis_url: str) -> None:
    """Even a SIGKILL of `marketplace run` (no chance to clean up) takes its API, relay, worker and beat down."""
    name = f"mk_run_{uuid.uuid4().hex[:8]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    url = _with_database(server_url, name)
    port = _free_port()
    env = _env(
        url, redis_url, MARKETPLACE_CELERY_QUEUE=f"run-{uuid.uuid4().hex[:6]}", MARKETPLACE_AUTH_RATE_LIMIT="100000"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "marketplace", "run", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        children: list[psutil.Process] = []
        while time.monotonic() < deadline and len(children) < 4:
            time.sleep(0.5)
            children = [c for c in psutil.Process(proc.pid).children() if c.is_running()]
        assert len(children) == 4
        proc.kill()
        proc.wait(timeout=10)
        _, alive = psutil.wait_procs(children, timeout=30)
        assert alive == [], [c.cmdline() for c in alive]
    finally:
        if proc.poll() is None:
            proc.kill()
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("command", ["worker", "beat", "relay"])
def test_worker_beat_and_relay_commands_exist_for_compose(command: str) -> None:
    group = typer.main.get_command(app)
    assert command in group.commands  # type: ignore[attr-defined]
