"""bench/booking_replay.py on a captured log sample (two bookings through the API, the second one captured;
``log_statement = 'all'``, PostgreSQL 15's default prefix). No server, no log access: CI runs this."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from booking_replay import (  # noqa: E402
    Statement,
    _quote,
    booking_block,
    build_replay,
    build_script,
    fresh_uuids,
    parse_log,
)

SAMPLE = (Path(__file__).parent / "booking_log_sample.txt").read_text(encoding="utf-8")
DB = "mk_bookings_bench_sample"
KEY = "4e15a81f43ee40d2b3702327fc87fcf1"  # the Idempotency-Key of the captured (second) booking
ASSET = "edc1e1c3-edeb-4bbd-9786-c9beed7e3656"
OTHER_ASSET = "00000000-0000-4000-8000-000000000001"
BOOKING = "6e2b9d9d-9f8f-4ca1-879d-715c7d0c79dc"
START, END = datetime(2027, 3, 17, 6, tzinfo=UTC), datetime(2027, 3, 17, 7, tzinfo=UTC)
NOISE = (
    "2026-12-07 04:59:24.400 UTC [999] postgres@other_db LOG:  statement: SELECT 'not ours';\n"
    "2026-12-07 04:59:24.401 UTC [2235] LOG:  checkpoint starting: time\n"
)


def _replay() -> object:
    return build_replay(
        NOISE + SAMPLE,
        database=DB,
        key=KEY,
        asset=ASSET,
        assets=[OTHER_ASSET, ASSET],
        start=START,
        end=END,
        sequence="bench_replay",
    )


def test_parse_keeps_the_databases_statements_with_their_parameters() -> None:
    statements = parse_log(NOISE + SAMPLE, database=DB)
    assert len(statements) == 32  # two bookings of 16 statements
    assert {s.pid for s in statements} == {10730}
    assert statements[0].sql == "BEGIN;"
    insert = next(s for s in statements if s.sql.startswith("INSERT INTO bookings") and BOOKING in s.params)
    assert len(insert.params) == 38
    assert insert.params[7] is None  # $8 = NULL
    assert insert.params[9] == "2027-03-17 06:00:00+00"
    journal = next(s for s in statements if "WITH journal AS" in s.sql)
    assert "\n" in journal.sql and not journal.sql.splitlines()[1].startswith("\t")  # the log's tab is removed
    assert parse_log(NOISE + SAMPLE, database="other_db") == [Statement(999, "SELECT 'not ours';")]


def test_the_block_runs_from_the_pre_ping_to_the_commit() -> None:
    statements = parse_log(SAMPLE, database=DB)
    block = booking_block(statements, marker=KEY)
    assert [s.sql for s in block[:3]] == ["BEGIN;", "ROLLBACK;", "BEGIN;"]
    assert block[-1].sql == "COMMIT;"
    assert len(block) == 16
    assert any(BOOKING in (p or "") for s in block for p in s.params)
    with pytest.raises(ValueError, match="no statement"):
        booking_block(statements, marker="no-such-key")


def test_fresh_uuids_are_those_the_booking_created() -> None:
    statements = parse_log(SAMPLE, database=DB)
    block = booking_block(statements, marker=KEY)
    fresh = fresh_uuids(block, statements)
    # idempotency row, booking, invoice, journal; not the user, the organisations or the machine
    assert len(fresh) == 4
    assert BOOKING in fresh and ASSET not in fresh


def test_the_script_replaces_every_created_value() -> None:
    replay = _replay()
    script, defines = replay.script, replay.defines  # type: ignore[attr-defined]
    assert replay.statements[-1].sql == "COMMIT;"  # type: ignore[attr-defined]
    for created in (BOOKING, BOOKING.replace("-", ""), KEY, "2027-03-17 06:00:00+00", "2027-03-17T07:00:00Z"):
        assert created not in defines.values()
    # The captured values survive only as the first argument of replace() (the template)...
    gset, _, body = script.partition("\\gset\n")
    assert BOOKING not in body and KEY not in body and KEY not in gset
    assert "nextval('bench_replay')" in gset and "gen_random_uuid()" in gset
    assert f"(ARRAY['{OTHER_ASSET}', '{ASSET}'])[:m]" in gset
    # ... every pgbench variable the script uses is defined: -D constants, \gset columns, m, client_id
    columns = set(re.findall(r" AS (d\d+)", gset))
    used = set(re.findall(r"(?<!:):([A-Za-z0-9_]+)", script))
    assert used <= columns | set(defines) | {"m", "client_id"}
    assert body.count(";\n") == 16 and body.startswith("BEGIN;\nROLLBACK;\nBEGIN;\n")


def test_values_with_colons_do_not_look_like_pgbench_variables() -> None:
    assert _quote("plain") == "'plain'"
    assert _quote("it's") == "'it''s'"
    assert _quote("HH24:MI") == "E'HH24\\072MI'"
    assert _quote("a\\b:") == "E'a\\\\b\\072'"
    block = [Statement(1, "SELECT :name"), Statement(1, "COMMIT;")]
    with pytest.raises(ValueError, match="pgbench variable"):
        build_script(block, fresh=[], key="k", asset="a", assets=["a"], start=START, end=END, sequence="s")
