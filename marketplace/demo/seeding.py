"""Deterministic synthetic market for development, demos and load tests (``marketplace seed --suppliers N``).

The room's pieces, kept apart so the generator can be tested without a database:

* :mod:`marketplace.demo.catalogue`: the literal tables (clusters, shop types, machines, lab services, names)
  from ``/work/shared/DOMAIN.md``; see docs/seeding.md.
* :func:`generate_market` (:mod:`marketplace.demo.generator`) is pure: ``random.Random(seed)`` drives every
  choice (ids included), and the result is plain tuples in the column order of the ``*_COLUMNS`` constants
  (:mod:`marketplace.demo.rows`). Only ``next_free_at`` and timestamps depend on ``now``.
* :func:`seed_market` (here) bulk-loads that result through :mod:`marketplace.demo.repository` (asyncpg
  ``COPY``) inside the caller's transaction; the caller commits.

This module also re-exports the public names the CLI, benchmarks and tests import from it.
"""

from __future__ import annotations

import random
import time as _time
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from marketplace.demo import repository
from marketplace.demo.builder import generate_uscc, lab_next_free, machine_next_free
from marketplace.demo.catalogue import (
    ACCREDITATION_SURCHARGE_CNY,
    AVG_MACHINES_PER_SUPPLIER,
    AVG_SERVICES_PER_LAB,
    CLUSTERS,
    INJECTION_PRESSES,
    LAB_SPECS,
    MACHINE_SPECS,
    SEED_EMAIL_DOMAIN,
    SEED_PASSWORD,
    injection_rate_range,
)
from marketplace.demo.generator import generate_market
from marketplace.demo.repository import seed_requests
from marketplace.demo.rows import GeneratedMarket, SeedSummary

# What the CLI, the benchmarks and the tests import from here (the data itself lives in the catalogue).
__all__ = [
    "ACCREDITATION_SURCHARGE_CNY",
    "AVG_MACHINES_PER_SUPPLIER",
    "AVG_SERVICES_PER_LAB",
    "CLUSTERS",
    "INJECTION_PRESSES",
    "LAB_SPECS",
    "MACHINE_SPECS",
    "SEED_PASSWORD",
    "GeneratedMarket",
    "SeedSummary",
    "generate_market",
    "generate_uscc",
    "injection_rate_range",
    "lab_next_free",
    "machine_next_free",
    "seed_market",
    "seed_requests",
]


async def seed_market(
    conn: AsyncConnection | AsyncSession,
    *,
    suppliers: int,
    labs: int,
    buyers: int,
    requests: int = 0,
    seed: int = 0,
    now: datetime | None = None,
) -> SeedSummary:
    """Generate a market and COPY it in, inside the caller's transaction (the caller commits).

    Skips (``summary.skipped``) when seed users (``…@seed.example``) already exist, so running the command
    twice is harmless."""
    from marketplace.core.security import hash_password

    started = _time.perf_counter()
    summary = SeedSummary(seed=seed, requests=requests)
    sa_conn, apg = await repository.asyncpg_connection(conn)
    existing = await repository.first_user_in_domain(sa_conn, SEED_EMAIL_DOMAIN)
    if existing is not None:
        summary.skipped = True
        summary.message = f"seed data already present ({existing} exists): nothing seeded"
        summary.elapsed_seconds = _time.perf_counter() - started
        return summary

    market = generate_market(
        suppliers=suppliers, labs=labs, buyers=buyers, seed=seed, now=now, password_hash=hash_password(SEED_PASSWORD)
    )  # hashed once: argon2 is slow
    summary.generate_seconds = _time.perf_counter() - started
    await repository.copy_market(apg, market)
    summary.requests_seeded = await seed_requests(apg, market, n=requests, rng=random.Random(f"requests-{seed}"))
    await repository.analyze_seeded_tables(sa_conn)

    summary.suppliers, summary.labs, summary.buyers = market.suppliers, market.labs, market.buyers
    summary.organisations = len(market.organisations)
    summary.users = len(market.users)
    summary.sites = len(market.sites)
    summary.certificates = len(market.certificates)
    summary.machines, summary.lab_services = market.machines, market.lab_services
    summary.status_events = len(market.status_events)
    summary.elapsed_seconds = _time.perf_counter() - started
    return summary
