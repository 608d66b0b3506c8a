"""The load side of ``bench/bookings_bench.py``: the measured window (lock waits, CPU seconds per process
group) and the two load generators. Run as a script, it is the lean generator's own process (spec on stdin)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

SLOT = timedelta(hours=1)  # every booking the generators make is one hour long


@dataclass(frozen=True)
class Load:
    """What a load generator runs: ``jobs`` = per client, its machine and first slot start."""

    api_url: str
    headers: dict[str, str]
    jobs: list[tuple[str, datetime]]
    seconds: float
    warmup: float


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


async def httpx_load(load: Load, window: Window) -> dict[str, Any]:
    """The httpx generator, in this process: one ``AsyncClient`` shared by the clients."""
    api_url, headers, jobs, seconds, warmup = load.api_url, load.headers, load.jobs, load.seconds, load.warmup
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


async def lean_load(load: Load, window: Window) -> dict[str, Any]:
    """Run :func:`lean_generate` in a process of its own and open the measured window when it says so."""
    api_url, headers, jobs, seconds, warmup = load.api_url, load.headers, load.jobs, load.seconds, load.warmup
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


# -- replay phase: where the server log is, and PostgreSQL's CPU while pgbench runs ------------------


async def server_log(db_url: str) -> Path:
    """The file the PostgreSQL server of ``db_url`` logs to: ``pg_current_logfile()`` when the logging
    collector runs, else the postmaster's stderr (``/proc/<pid>/fd/2``; the server must be on this machine)."""
    engine = create_async_engine(db_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            current = (await conn.execute(sa.text("SELECT pg_current_logfile()"))).scalar()
            data = Path(str((await conn.execute(sa.text("SHOW data_directory"))).scalar()))
    finally:
        await engine.dispose()
    if current:
        return data / str(current)
    pid = (data / "postmaster.pid").read_text().splitlines()[0].strip()
    return Path(os.readlink(f"/proc/{pid}/fd/2"))


class BackendCpu:
    """CPU seconds of the PostgreSQL backends of one database over a period, sampled every ``every`` seconds
    in a thread (a backend that exits between samples loses at most its last ``every`` seconds)."""

    def __init__(self, db_name: str, every: float = 0.25) -> None:
        self.title, self.every = f" {db_name} ", every
        self.seen: dict[int, float] = {}
        self.stop = threading.Event()
        self.before = self._sample()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _sample(self) -> dict[int, float]:
        found: dict[int, float] = {}
        for p in psutil.process_iter(["name", "cmdline"]):
            try:
                if (p.info["name"] or "").startswith("postgres") and self.title in " ".join(p.info["cmdline"] or ()):
                    t = p.cpu_times()
                    found[p.pid] = t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return found

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            self.seen.update(self._sample())

    def end(self) -> float:
        self.stop.set()
        self.thread.join()
        self.seen.update(self._sample())
        return round(sum(v - self.before.get(pid, 0.0) for pid, v in self.seen.items()), 2)


if __name__ == "__main__":
    asyncio.run(lean_generate(json.loads(sys.stdin.read()), sys.stdout))
