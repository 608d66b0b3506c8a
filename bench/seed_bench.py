"""Seeding benchmark: bulk-load a generated market of about ``--assets`` listings into a fresh database.

    python bench/seed_bench.py --assets 100000

Uses the server of ``MARKETPLACE_TEST_DATABASE_URL`` (or the embedded PostgreSQL under ``.data/bench`` when
unset), creates a throw-away database, runs the Alembic migrations, seeds, prints the time, writes
``bench/results/seed.json`` and drops the database again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import admin as _admin  # noqa: E402
from common import cpu_model as _cpu_model  # noqa: E402
from common import server_url as _server_url  # noqa: E402

from marketplace.cli import migrate_database  # noqa: E402
from marketplace.demo.seeding import AVG_MACHINES_PER_SUPPLIER, AVG_SERVICES_PER_LAB, seed_market  # noqa: E402


async def _seed(url: str, suppliers: int, labs: int, buyers: int, seed: int) -> tuple[dict[str, object], float]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        started = time.perf_counter()
        async with AsyncSession(engine) as session:
            summary = await seed_market(session, suppliers=suppliers, labs=labs, buyers=buyers, seed=seed)
            await session.commit()
        total = time.perf_counter() - started
        async with engine.connect() as conn:
            published = (
                await conn.execute(sa.text("SELECT count(*) FROM assets WHERE status = 'published'"))
            ).scalar_one()
            missing_next_free = (
                await conn.execute(
                    sa.text("SELECT count(*) FROM assets WHERE kind = 'machine' AND next_free_at IS NULL")
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    counts: dict[str, object] = {
        "suppliers": summary.suppliers,
        "labs": summary.labs,
        "buyers": summary.buyers,
        "organisations": summary.organisations,
        "users": summary.users,
        "sites": summary.sites,
        "certificates": summary.certificates,
        "machines": summary.machines,
        "lab_services": summary.lab_services,
        "assets": summary.assets,
        "status_events": summary.status_events,
        "published_assets": published,
        "machines_without_next_free_at": missing_next_free,
        "generate_seconds": round(summary.generate_seconds, 2),
        "seed_market_seconds": round(summary.elapsed_seconds, 2),
    }
    return counts, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, default=100_000, help="target number of listings (approximate)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "seed.json")
    args = parser.parse_args()

    # Labs are ~1 per 20 suppliers; size suppliers so machines + lab services come to about --assets.
    per_supplier = AVG_MACHINES_PER_SUPPLIER + AVG_SERVICES_PER_LAB / 20
    suppliers = max(1, round(args.assets / per_supplier))
    labs = max(1, suppliers // 20)
    buyers = max(1, suppliers // 5)

    server = _server_url()
    name = f"mk_seed_bench_{uuid.uuid4().hex[:8]}"
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        migrate_database(url)
        print(f"seeding {suppliers} suppliers, {labs} labs, {buyers} buyers (target ~{args.assets} assets) ...")
        counts, seconds = asyncio.run(_seed(url, suppliers, labs, buyers, args.seed))
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print(
        f"seeded {counts['assets']} assets ({counts['machines']} machines, {counts['lab_services']} lab services)"
        f" in {seconds:.1f} s (including commit)"
    )
    result = {
        "benchmark": "seed",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "cpu_model": _cpu_model(), "python": platform.python_version()},
        "database": "embedded" if not os.environ.get("MARKETPLACE_TEST_DATABASE_URL") else "server",
        "target_assets": args.assets,
        "seed": args.seed,
        "counts": counts,
        "seconds": round(seconds, 2),
        "target_seconds": 120,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
