"""A PgBouncer of the test's (or the bench's) own: Debian's ``pgbouncer`` executable started on a free port
in transaction pooling mode in front of a PostgreSQL server, with its own ini and auth file, and stopped
again. The system service the Debian package installs is never used.

PgBouncer refuses to run as root; as root (CI) it is started with ``-u nobody`` and its files are made
world-readable. Without the executable a test fails when the ``CI`` environment variable is set and is
skipped elsewhere (``pgbouncer_executable``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from sqlalchemy.engine import make_url

CANDIDATES = ("pgbouncer", "/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")


def find_pgbouncer() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def pgbouncer_executable() -> str:
    """The path of ``pgbouncer``; fails the test in CI and skips it elsewhere when it is not installed."""
    import pytest

    found = find_pgbouncer()
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("pgbouncer is not installed (.ci/run installs Debian's pgbouncer package)")
    pytest.skip("pgbouncer is not installed (apt-get install pgbouncer)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgBouncer:
    """``with PgBouncer(exe, server_url, pool_size=4) as bouncer: bouncer.url_for(database_url)``.

    ``server_url`` is a PostgreSQL URL (any driver prefix); every database on that server is reachable
    through the bouncer under the same name, as the same user, on ``pool_size`` server connections per
    database and user: fewer than the clients, so transactions of different clients share them."""

    def __init__(self, exe: str, server_url: str, *, pool_size: int = 4, max_client_conn: int = 1000) -> None:
        self.exe = exe
        self.server = make_url(server_url)
        # The embedded PostgreSQL listens on a Unix socket only (``?host=<socket directory>``): the bouncer must
        # reach it there, as the user who owns that directory (its data directory is private).
        host = self.server.query.get("host")
        self.socket_dir = host if isinstance(host, str) and host.startswith("/") else None
        self.pool_size = pool_size
        self.max_client_conn = max_client_conn
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="mk-pgbouncer-"))
        self.log = self.dir / "pgbouncer.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def url_for(self, database_url: str) -> str:
        """``database_url`` (a database on the same server) rewritten to go through this bouncer."""
        url = make_url(database_url).difference_update_query(["host"]).set(host="127.0.0.1", port=self.port)
        return url.render_as_string(hide_password=False)

    def _write_config(self) -> Path:
        user = self.server.username or "postgres"
        password = (self.server.password or "").replace('"', '""')
        auth = self.dir / "users.txt"
        auth.write_text(f'"{user}" "{password}"\n')
        ini = self.dir / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"* = host={self.socket_dir or self.server.host or '127.0.0.1'} port={self.server.port or 5432}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {auth}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {self.pool_size}\n"
            "min_pool_size = 0\n"
            "reserve_pool_size = 0\n"
            f"max_client_conn = {self.max_client_conn}\n"
            "ignore_startup_parameters = extra_float_digits\n"
            "log_connections = 0\n"
            "log_disconnections = 0\n"
        )
        for path in (self.dir, auth, ini):  # readable by the unprivileged user it runs as under root
            path.chmod(0o755 if path.is_dir() else 0o644)
        return ini

    def start(self, timeout: float = 15.0) -> PgBouncer:
        ini = self._write_config()
        args = [self.exe]
        if os.geteuid() == 0:  # "PgBouncer should not run as root"
            args += ["-u", Path(self.socket_dir).owner() if self.socket_dir else "nobody"]
        self._out = self.log.open("wb")
        self.proc = subprocess.Popen([*args, str(ini)], stdout=self._out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited at start-up:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"pgbouncer did not listen within {timeout} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        if hasattr(self, "_out"):
            self._out.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PgBouncer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
