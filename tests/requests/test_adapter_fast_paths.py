"""The matching request path's shortcuts agree with the reference implementations they replace."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from listings import availability as av
from listings.calendar import free_time
from marketplace.bookings.repository import BookingRepository
from marketplace.demo.seeding import seed_market
from marketplace.requests import service
from matching import adapter, repository
from matching.conditions_repository import Binder
from matching.prefilter import request_values, shape

ZONES = ("UTC", "Asia/Shanghai", "Europe/Berlin", "America/New_York")


def _plan(rng: random.Random) -> list[av.WeeklyWindow]:
    out = []
    for weekday in rng.sample(range(7), rng.randint(0, 7)):
        s = rng.randint(0, 23)
        e = rng.choice([(s + rng.randint(1, 12)) % 24, s])  # may cross midnight; s == e is 24 h
        out.append(av.WeeklyWindow(weekday=weekday, start=time(s), end=time(e)))
    return out


def test_free_time_equals_free_intervals() -> None:
    rng = random.Random(3)
    base = datetime(2026, 3, 20, tzinfo=UTC)  # spans the European and US DST changes
    for _ in range(300):
        tz = rng.choice(ZONES)
        start = base + timedelta(hours=rng.uniform(0, 24 * 20))
        end = start + timedelta(hours=rng.uniform(0, 24 * 15))
        weekly = _plan(rng)
        excs = []
        for _ in range(rng.randint(0, 3)):
            s = start + timedelta(hours=rng.uniform(-24, 24 * 15))
            excs.append(av.ExceptionRange(s, s + timedelta(hours=rng.uniform(1, 72)), rng.random() < 0.4))
        booked = []
        for _ in range(rng.randint(0, 6)):
            s = start + timedelta(hours=rng.uniform(-24, 24 * 15))
            booked.append((s, s + timedelta(hours=rng.uniform(0.5, 30))))
        want = av.free_intervals(weekly, tz, exceptions=excs, blocked=booked, start=start, end=end)
        plan = av.expand_weekly(weekly, tz, start=start, end=end)
        rows = [(x.start, x.end, x.available) for x in excs]
        got = free_time(plan, exceptions=rows, booked=booked, start=start, end=end)
        assert got == want


async def test_machine_blocked_equals_repository(db: AsyncSession) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    await seed_market(db, suppliers=6, labs=1, buyers=2, seed=4, now=now)
    rows = (
        await db.execute(
            sa.text("SELECT a.id, a.org_id, a.currency FROM assets a WHERE a.kind = 'machine' ORDER BY a.id LIMIT 12")
        )
    ).all()
    buyers = list((await db.execute(sa.text("SELECT id FROM organisations WHERE 'buyer' = ANY(roles)"))).scalars())
    rng = random.Random(8)
    statuses = ["held", "requested", "confirmed", "in_progress", "completed", "cancelled"]
    for asset_id, org_id, currency in rows:
        buyer = next(b for b in buyers if b != org_id)
        t = now
        for _ in range(6):
            t += timedelta(hours=rng.uniform(1, 30))
            end = t + timedelta(hours=rng.uniform(1, 10))
            status = rng.choice(statuses)
            await db.execute(
                sa.text(
                    "INSERT INTO bookings (id, asset_id, kind, supplier_org_id, buyer_org_id, status, start_at, end_at,"
                    " period, currency, unit_price, setup_fee, amount, commission_rate_bp, cancellation_policy,"
                    " site_timezone, refund_amount, payment_method, hold_expires_at, accept_by, created_at, updated_at)"
                    " VALUES (:id, :a, 'machine', :o, :b, :st, :s, :e, tstzrange(:s, :e, '[)'), :c, 100, 0, 100, 800,"
                    " '{}'::jsonb, 'UTC', 0, 'invoice', :hx, :ab, :now, :now)"
                ),
                {
                    "id": uuid.uuid4(), "a": asset_id, "o": org_id, "b": buyer, "st": status, "s": t, "e": end,
                    "c": currency, "now": now,
                    "hx": now + timedelta(minutes=rng.choice([-30, 30])) if status == "held" else None,
                    "ab": now + timedelta(hours=rng.choice([-1, 1])) if status == "requested" else None,
                },
            )  # fmt: skip
            t = end
    ids = [r[0] for r in rows]
    for lo_h, hi_h in [(0, 400), (20, 60), (100, 101)]:
        lo, hi = now + timedelta(hours=lo_h), now + timedelta(hours=hi_h)
        want = await BookingRepository(db).blocked_periods(ids, start=lo, end=hi, now=datetime.now(UTC))
        got = await service.BLOCKED.machine_blocked(db, ids, start=lo, end=hi)
        assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in want.items()}


async def test_run_match_top_k_equals_engine(db: AsyncSession) -> None:
    """run_match fetches scorecards only for matches that can reach the top ``limit`` (and computes free time
    over a short first window): its top ``limit`` must equal the engine's over fully loaded candidates."""
    from matching.engine import match
    from tests.requests.test_adapter import _random_request, _seed

    rng = random.Random(21)
    now = datetime.now(UTC).replace(microsecond=0)
    assets = await _seed(db, rng, now)
    # Varied supplier quality: completed (on time or late) bookings and reviews for some suppliers.
    await db.execute(
        sa.text(
            "UPDATE bookings SET status = 'completed', completed_at = end_at + (random() * interval '10 hours')"
            " WHERE status IN ('confirmed', 'in_progress') AND random() < 0.5"
        )
    )
    service.STATS.clear()
    checked = 0
    for _ in range(80):
        mr = _random_request(rng, rng.choice(assets), now)
        codes = service.serving_codes(mr.process_code)
        full = await adapter.load_for_request(
            db, mr, codes, blocked=service.BLOCKED, stats=service.STATS, now=now, cap=None
        )
        for k in (1, 3, 10):
            want = match(mr, full.candidates, codes, limit=k)
            got = await service.run_match(db, mr, limit=k, now=now, cap=None)
            assert [str(m.asset_id) for m in got.items] == [r.asset_id for r in want.items]
            assert [m.score for m in got.items] == [r.score for r in want.items]
            assert [[c.contribution for c in m.explanation] for m in got.items] == [
                [c.contribution for c in r.explanation] for r in want.items
            ]
            assert got.feasible == want.feasible_count
        checked += want.feasible_count >= 2
    assert checked >= 5


async def test_shape_cached_candidate_statement_equals_one_built_for_the_request(db: AsyncSession) -> None:
    """select_rows reuses one statement per request shape with the values bound at execution: for requests that
    share shapes (so the statement was built for an earlier request), its rows must equal those of a statement
    built with this request's values embedded, and every placeholder must have a value."""
    from sqlalchemy.sql import visitors
    from sqlalchemy.sql.elements import BindParameter

    from tests.requests.test_adapter import _random_request, _seed

    rng = random.Random(8)
    now = datetime.now(UTC).replace(microsecond=0)
    assets = await _seed(db, rng, now)
    repository.STATEMENTS.clear()
    shapes: dict[tuple[object, ...], int] = {}
    for _ in range(60):
        mr = _random_request(rng, rng.choice(assets), now)
        codes = service.serving_codes(mr.process_code)
        for cap, hours in ((adapter.DEFAULT_CAP, now), (None, None)):
            key = shape(mr, cap=cap, now=hours)
            shapes[key] = shapes.get(key, 0) + 1
            got = await adapter.select_rows(db, mr, serving_codes=codes, cap=cap, now=hours)
            placeholders = {
                b.key
                for b in visitors.iterate(repository.STATEMENTS[key])
                if isinstance(b, BindParameter) and not b.unique
            }
            values = request_values(mr, codes, now=hours, cap=cap)
            assert placeholders <= set(values) and all(values[k] is not None for k in placeholders)
            embedded = repository.candidate_statement(
                mr, Binder(values), capped=cap is not None, with_hours=hours is not None
            )
            want = repository.selected_rows(await repository.custom_plan(db, embedded), 0, hours is not None)
            assert [r.id for r in got.rows] == [r.id for r in want.rows]
            assert got.booked_hours == want.booked_hours and got.certificates == want.certificates
    assert sum(n > 1 for n in shapes.values()) >= 5  # shapes really were reused
