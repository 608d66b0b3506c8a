"""``marketplace`` command line: run everything for development, or each process for production."""

from __future__ import annotations

import asyncio
import getpass
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core import embedded
from marketplace.core.db import normalise_url, run_in_new_session
from marketplace.core.settings import get_settings

app = typer.Typer(help="Shared-manufacturing capacity marketplace.", no_args_is_help=True, add_completion=False)

ROOT = Path(__file__).resolve().parent.parent


def _database_url() -> str:
    settings = get_settings()
    return settings.database_url or embedded.start_postgres(settings.data_dir)


def _redis_url() -> str:
    settings = get_settings()
    return settings.redis_url or embedded.start_redis(settings.data_dir)


def _alembic_config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    ini = ROOT / "alembic.ini"
    if not ini.exists():
        ini = Path.cwd() / "alembic.ini"
    cfg = Config(str(ini))
    cfg.set_main_option("script_location", str(ini.parent / "alembic"))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def migrate_database(url: str) -> None:
    from alembic import command

    command.upgrade(_alembic_config(url), "head")


@app.command()
def migrate() -> None:
    """Apply every Alembic migration (upgrade to head), bypassing PgBouncer when a direct URL is set."""
    migrate_database(get_settings().database_direct_url or _database_url())
    typer.echo("database is at the latest migration")


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The admin's e-mail address.")],
    password: Annotated[str | None, typer.Option(help="Omit to be prompted (not echoed).")] = None,
    full_name: Annotated[str, typer.Option(help="Display name.")] = "Platform admin",
) -> None:
    """Create a platform admin (idempotent: an existing account is promoted, its password kept)."""
    from marketplace.auth.service import ensure_admin

    if password is None:
        password = getpass.getpass("Password: ")
    if len(password) < 10:
        typer.echo("error: the password must have at least 10 characters", err=True)
        raise typer.Exit(2)
    pw = password
    user, created = run_in_new_session(
        _database_url(), lambda s: ensure_admin(s, email=email, password=pw, full_name=full_name)
    )
    typer.echo(f"{'created' if created else 'already exists, ensured admin'}: {user.email}")


@app.command()
def seed(
    *,  # Typer passes the options by name
    demo: Annotated[bool, typer.Option(help="Load the small demo data set if the database is empty.")] = True,
    suppliers: Annotated[int | None, typer.Option(min=0, help="Generated market: supplier factories.")] = None,
    labs: Annotated[int | None, typer.Option(min=0, help="Generated market: testing labs.")] = None,
    buyers: Annotated[int | None, typer.Option(min=0, help="Generated market: buyer organisations.")] = None,
    requests: Annotated[int | None, typer.Option(min=0, help="Generated market: buyer requests (not yet).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same market.")] = 0,
) -> None:
    """Load demo data into an empty database, or generate a deterministic market (see docs/seeding.md)."""
    if any(n is not None for n in (suppliers, labs, buyers, requests)):
        from marketplace.demo.seeding import seed_market

        n_suppliers, n_labs, n_buyers, n_requests = (n or 0 for n in (suppliers, labs, buyers, requests))
        summary = run_in_new_session(
            _database_url(),
            lambda s: seed_market(
                s, suppliers=n_suppliers, labs=n_labs, buyers=n_buyers, requests=n_requests, seed=seed
            ),
        )
        typer.echo(summary.line())
        if n_requests and not summary.skipped:
            typer.echo("requests: not yet supported, skipped")
        return

    from marketplace.demo.accounts import database_is_empty, seed_demo

    async def work(session: AsyncSession) -> int:
        if demo and await database_is_empty(session):
            return len(await seed_demo(session))
        return 0

    n = run_in_new_session(_database_url(), work)
    typer.echo(f"seeded {n} demo organisations" if n else "database not empty: nothing seeded")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    workers: Annotated[int, typer.Option(help="Uvicorn worker processes.")] = 1,
) -> None:
    """Serve the HTTP API with uvicorn."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "marketplace.app:main_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_config=None,
        proxy_headers=True,
    )


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Worker processes (or threads with --pool threads).")] = 2,
    pool: Annotated[str, typer.Option(help="Celery pool: prefork, threads or solo.")] = "prefork",
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
) -> None:
    """Run a Celery worker (any number may run; they share the queue)."""
    from marketplace.celery_app import configure

    if pool not in ("prefork", "threads", "solo"):
        typer.echo("error: --pool must be prefork, threads or solo", err=True)
        raise typer.Exit(2)
    celery = configure(_redis_url())
    celery.worker_main(["worker", f"--loglevel={loglevel}", f"--concurrency={concurrency}", f"--pool={pool}"])


@app.command()
def relay(loglevel: Annotated[str, typer.Option(help="Log level.")] = "INFO") -> None:
    """Run the outbox relay: sends due jobs from PostgreSQL's outbox to Celery (one or more per deployment)."""
    from marketplace.celery_app import configure
    from marketplace.core import outbox
    from marketplace.core.observability import configure_logging

    settings = get_settings()
    configure_logging(loglevel)
    if settings.database_pgbouncer and not settings.database_direct_url:
        # LISTEN needs a session of its own: through a transaction-pooling PgBouncer it hears nothing.
        typer.echo("error: behind PgBouncer the relay needs MARKETPLACE_DATABASE_DIRECT_URL", err=True)
        raise typer.Exit(2)
    db_url = settings.database_direct_url or _database_url()
    celery = configure(_redis_url(), settings)
    asyncio.run(outbox.serve(db_url, celery, settings))


@app.command()
def beat(loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO") -> None:
    """Run Celery beat, the scheduler (exactly one per deployment)."""
    from marketplace.celery_app import configure

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    celery = configure(_redis_url())
    celery.start(["beat", f"--loglevel={loglevel}", f"--schedule={settings.data_dir / 'celerybeat-schedule'}"])


@app.command()
def run(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Development all-in-one: embedded services if no URLs are set, migrations, demo data, then the API,
    the outbox relay, a Celery worker and beat together. One Ctrl-C stops everything."""
    settings = get_settings()
    db_url = _database_url()
    redis_url = _redis_url()
    typer.echo("applying migrations ...")
    migrate_database(db_url)

    from marketplace.demo.accounts import DEMO_ACCOUNTS, DEMO_PASSWORD
    from marketplace.demo.activity import load_demo
    from marketplace.demo.activity_market import PENDING_EMAIL

    # The admin; into an empty database only: the demo accounts, a small generated market and the demo's
    # activity made through the real services (docs/seeding.md).
    activity = run_in_new_session(db_url, lambda session: load_demo(session, settings=settings))
    seeded = activity is not None
    if activity is not None:
        typer.echo(activity.line())
    env = {**os.environ, "MARKETPLACE_DATABASE_URL": db_url, "MARKETPLACE_REDIS_URL": redis_url}
    exe = [sys.executable, "-m", "marketplace"]
    bind_host, bind_port = host or settings.host, port or settings.port
    procs = [
        subprocess.Popen(
            [*exe, "serve", "--host", bind_host, "--port", str(bind_port)], env=env, preexec_fn=_die_with_parent
        ),
        subprocess.Popen([*exe, "relay"], env=env, preexec_fn=_die_with_parent),
        subprocess.Popen([*exe, "worker", "--concurrency", "1"], env=env, preexec_fn=_die_with_parent),
        subprocess.Popen([*exe, "beat"], env=env, preexec_fn=_die_with_parent),
    ]
    url = f"http://{bind_host}:{bind_port}"
    typer.echo(
        f"\n  Marketplace: {url}   API docs: {url}/docs\n"
        f"  Admin: {settings.demo_admin_email} / {settings.demo_admin_password}\n"
        + (
            f"  Demo accounts (password {DEMO_PASSWORD}): "
            + ", ".join([*(a.email for a in DEMO_ACCOUNTS), PENDING_EMAIL])
            + "\n"
            if seeded
            else ""
        )
        + "  Press Ctrl-C to stop.\n"
    )
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and all(p.poll() is None for p in procs):
            time.sleep(0.3)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        embedded.stop_all()
        typer.echo("stopped")
    if any(p.returncode not in (0, -signal.SIGTERM, -signal.SIGINT, None) for p in procs) and not stopping:
        raise typer.Exit(1)


def _die_with_parent() -> None:
    """Linux: children get SIGTERM if `marketplace run` itself dies (even by SIGKILL), so none is orphaned."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except OSError:  # not Linux: Ctrl-C still reaches the whole process group
        pass


def main() -> None:
    app()


if __name__ == "__main__":
    main()
