"""Replay of one booking's own SQL with pgbench (issue #19 item 1): pure functions, no I/O.

``bench/bookings_bench.py`` makes a few bookings through the API with ``log_statement = 'all'`` set on its
database, reads the server log written meanwhile and hands it to :func:`build_replay`, which

1. parses the log (:func:`parse_log`): every ``statement:`` / ``execute <name>:`` line of the benchmark
   database with the ``parameters:`` detail that follows it;
2. cuts out the capture booking's statements (:func:`booking_block`): the backend that received its
   Idempotency-Key, from the statement after that backend's previous ``COMMIT`` (so the pool's pre-ping, a
   ``BEGIN; ROLLBACK;``, is included) to the ``COMMIT`` that ends the booking;
3. turns them into a pgbench script (:func:`build_script`). Every parameter stays a parameter (pgbench
   ``-M prepared`` sends ``:variables`` as ``$n``, as asyncpg does): constants become ``-D`` variables, and
   the values the booking created become per-transaction variables computed by one first statement ending
   in ``\\gset``: a new uuid for each uuid that appears in the booking but nowhere else in the log (its
   dashed and its 32-hex-digit forms), a new 32-hex-digit idempotency key, the machine of the client
   (``:client_id`` picks one) and a slot from a sequence in a far-future range (its start and end in the
   text forms the log shows). A parameter that merely contains such a value (an invoice number ``DRAFT-<hex>``,
   a journal key ``booking:<uuid>:invoice``, the stored JSON response) is rebuilt with ``replace()``.

The first statement is one round trip more than the API makes; the replay is that much slower, not faster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

_ENTRY = re.compile(r"^\S+ \S+ \S+ \[(\d*)\] (?:(\S*)@(\S*) )?([A-Z0-9]+):  (.*)$")
_PARAM = re.compile(r"\$(\d+) = (NULL|'(?:[^']|'')*')")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PGBENCH_VARIABLE = re.compile(r"(?<!:):[A-Za-z0-9_\u0080-\U0010ffff]")


@dataclass(frozen=True)
class Statement:
    """One statement a backend ran: its SQL text and its parameters (``$1`` first; ``None`` is NULL)."""

    pid: int
    sql: str
    params: tuple[str | None, ...] = ()


@dataclass(frozen=True)
class Replay:
    """A pgbench script and the ``-D`` variables it needs (``name -> value``)."""

    script: str
    defines: dict[str, str]
    statements: list[Statement]
    fresh_values: int
    notes: list[str] = field(default_factory=list)


def _entries(text: str, database: str) -> list[tuple[int, str, str]]:
    """``(pid, level, message)`` of the log entries of ``database``; continuation lines (PostgreSQL starts
    them with a tab) are joined to their entry with a newline."""
    entries: list[tuple[int, str, str]] = []
    keep = False
    for line in text.splitlines():
        m = _ENTRY.match(line)
        if m:
            keep = m.group(3) == database
            if keep:
                entries.append((int(m.group(1) or 0), m.group(4), m.group(5)))
        elif keep and entries:
            pid, level, message = entries[-1]
            entries[-1] = (pid, level, message + "\n" + (line[1:] if line.startswith("\t") else line))
    return entries


def _params(detail: str) -> tuple[str | None, ...]:
    values: dict[int, str | None] = {}
    for m in _PARAM.finditer(detail):
        raw = m.group(2)
        values[int(m.group(1))] = None if raw == "NULL" else raw[1:-1].replace("''", "'")
    return tuple(values.get(i) for i in range(1, max(values, default=0) + 1))


def parse_log(text: str, *, database: str) -> list[Statement]:
    """The statements of ``database`` in a PostgreSQL log written with ``log_statement = 'all'`` and the
    default ``log_line_prefix`` (``%m [%p] %q%u@%d``), in log order."""
    statements: list[Statement] = []
    for pid, level, message in _entries(text, database):
        if level == "LOG" and message.startswith("statement: "):
            statements.append(Statement(pid, message[len("statement: ") :]))
        elif level == "LOG" and message.startswith("execute "):
            statements.append(Statement(pid, message.split(": ", 1)[1]))
        elif level == "DETAIL" and message.startswith("parameters: ") and statements and statements[-1].pid == pid:
            last = statements[-1]
            statements[-1] = Statement(pid, last.sql, _params(message[len("parameters: ") :]))
    return statements


def _is(statement: Statement, word: str) -> bool:
    return statement.sql.strip().rstrip(";").strip().upper() == word


def booking_block(statements: list[Statement], *, marker: str) -> list[Statement]:
    """The statements of the request whose parameters contain ``marker`` (its Idempotency-Key): on that
    backend, from after the previous ``COMMIT`` to the next ``COMMIT`` inclusive."""
    hit = next((i for i, s in enumerate(statements) if any(marker in (p or "") for p in s.params)), None)
    if hit is None:
        raise ValueError(f"no statement of the log carries {marker!r}")
    pid = statements[hit].pid
    own = [(i, s) for i, s in enumerate(statements) if s.pid == pid]
    at = next(k for k, (i, _) in enumerate(own) if i == hit)
    first = at
    while first > 0 and not _is(own[first - 1][1], "COMMIT"):
        first -= 1
    last = at
    while last < len(own) - 1 and not _is(own[last][1], "COMMIT"):
        last += 1
    if not _is(own[last][1], "COMMIT"):
        raise ValueError("the captured booking has no COMMIT in the log")
    return [s for _, s in own[first : last + 1]]


def fresh_uuids(block: list[Statement], everything: list[Statement]) -> list[str]:
    """The uuids in ``block``'s parameters that appear in no other statement of the log: the ones the
    booking created (the earlier bookings' statements carry every pre-existing id the booking reads)."""
    inside = {id(s) for s in block}
    known = {u for s in everything if id(s) not in inside for p in s.params for u in _UUID.findall(p or "")}
    found: list[str] = []
    for s in block:
        for p in s.params:
            for u in _UUID.findall(p or ""):
                if u not in known and u not in found:
                    found.append(u)
    return found


def _timestamp_forms(moment: datetime) -> list[tuple[str, str]]:
    """The text forms a UTC timestamp takes in the log (PostgreSQL's output, JSON, ISO 8601) with the
    ``to_char`` format producing each."""
    m = moment.astimezone(UTC)
    return [
        (f"{m:%Y-%m-%d %H:%M:%S}+00", 'YYYY-MM-DD HH24:MI:SS"+00"'),
        (f"{m:%Y-%m-%dT%H:%M:%SZ}", 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        (f"{m:%Y-%m-%dT%H:%M:%S}+00:00", 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'),
    ]


def _quote(value: str) -> str:
    """A SQL string literal pgbench leaves alone: pgbench takes any ``:name`` in a script for a variable, even
    inside quotes (``12:30``, ``HH24:MI``), so a value with a colon becomes an ``E''`` literal with ``\\072``."""
    text = value.replace("'", "''")
    if ":" not in value and "\\" not in value:
        return "'" + text + "'"
    return "E'" + text.replace("\\", "\\\\").replace(":", "\\072") + "'"


def build_script(
    block: list[Statement],
    *,
    fresh: list[str],
    key: str,
    asset: str,
    assets: list[str],
    start: datetime,
    end: datetime,
    sequence: str,
    epoch: str = "2040-01-01 00:00+00",
) -> Replay:
    """The pgbench script replaying ``block`` with new values per transaction (see the module docstring)."""
    slot = end - start
    tokens: list[tuple[str, str]] = [(asset, "v.asset"), (key, "v.k")]
    for n, u in enumerate(fresh, 1):
        tokens += [(u, f"v.u{n}"), (u.replace("-", ""), f"replace(v.u{n}, '-', '')")]
    for moment, column in ((start, "v.s"), (end, "v.e")):
        tokens += [
            (text, f"to_char({column} AT TIME ZONE 'UTC', {_quote(fmt)})") for text, fmt in _timestamp_forms(moment)
        ]
    tokens.sort(key=lambda t: -len(t[0]))
    defines: dict[str, str] = {}
    computed: dict[str, str] = {}  # value -> variable of the \gset statement
    constant: dict[str, str] = {}  # value -> -D variable
    body: list[str] = []
    for statement in block:
        sql = statement.sql.rstrip().rstrip(";").rstrip()
        if _PGBENCH_VARIABLE.search(sql):
            raise ValueError(f"a statement's text contains a pgbench variable reference: {sql[:80]!r}")

        def substitute(m: re.Match[str], params: tuple[str | None, ...] = statement.params) -> str:
            value = params[int(m.group(1)) - 1]
            if value is None:
                return "NULL"
            if any(text in value for text, _ in tokens):
                name = computed.setdefault(value, f"d{len(computed) + 1}")
            else:
                name = constant.setdefault(value, f"c{len(constant) + 1}")
                defines[name] = value
            return ":" + name

        body.append(re.sub(r"\$(\d+)\b", substitute, sql) + ";")
    columns = []
    for value, name in computed.items():
        exact = next((replacement for text, replacement in tokens if text == value), None)
        expr = exact or _quote(value)
        for text, replacement in tokens if exact is None else ():
            if text in value:
                expr = f"replace({expr}, {_quote(text)}, {replacement})"
        columns.append(f"{expr} AS {name}")
    uuids = "".join(f", gen_random_uuid()::text AS u{n}" for n in range(1, len(fresh) + 1))
    head = [
        f"\\set m (:client_id % {len(assets)}) + 1",
        "SELECT " + ",\n       ".join(columns or ["1 AS d0"]),
        f"  FROM (SELECT (ARRAY[{', '.join(_quote(a) for a in assets)}])[:m] AS asset,",
        f"               md5(random()::text) AS k{uuids},",
        f"               t.s, t.s + interval '{int(slot.total_seconds())} seconds' AS e",
        f"          FROM (SELECT timestamptz {_quote(epoch)} + nextval({_quote(sequence)}) * interval"
        f" '{int(slot.total_seconds())} seconds' AS s) AS t) AS v \\gset",
    ]
    return Replay("\n".join(head + body) + "\n", defines, block, len(computed))


def build_replay(
    log: str,
    *,
    database: str,
    key: str,
    asset: str,
    assets: list[str],
    start: datetime,
    end: datetime,
    sequence: str,
) -> Replay:
    """Parse ``log``, cut out the booking made with Idempotency-Key ``key`` and build its replay."""
    statements = parse_log(log, database=database)
    block = booking_block(statements, marker=key)
    fresh = fresh_uuids(block, statements)
    return build_script(
        block, fresh=fresh, key=key, asset=asset, assets=assets, start=start, end=end, sequence=sequence
    )
