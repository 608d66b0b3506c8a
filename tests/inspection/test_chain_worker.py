"""Make + verify end to end (issue #17) on a live server, the outbox relay and a real Celery worker: a
machine booking is paid, accepted, started and completed; the buyer orders an inspection; the lab booking is
paid and accepted; the factory ships the samples, the lab receives them and reports. The ledger is balanced
at every step, and the production booking's money leaves ``customer_funds_held`` only at its settlement.

* pass: the accepted lot settles the production booking; the lab booking settles through the worker after
  its own dispute window; the worker renders the report's PDF;
* fail: the rejected lot disputes the production booking (money held); the admin resolves with a refund, or
  sends a second lot back for rework, after which a new inspection holds the payout again; the lab is paid;
* not gating: the lab's accreditation had expired; the worker's settlement waits for the buyer's window.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from celery import Celery
from sqlalchemy.ext.asyncio import AsyncEngine

from tests import processes
from tests.bookings.helpers import slot
from tests.bookings.live_server import (
    LiveServer,
    Market,
    build_market,
    http_client,
    live_settings,
    published,
    scalar,
    sql,
    verified_supplier,
    wait_for,
)
from tests.factories import lab_payload
from tests.inspection.test_reports_helpers import HELD, LOT, PAYABLE, SAMPLING, UNBALANCED, report_body
from tests.processes import Proc, run_task, running, task_client

pytestmark = pytest.mark.worker

CHARACTERISTICS = [
    {"name": "Bore diameter", "nominal": "12.000", "lower_tol": "-0.020", "upper_tol": "0.020", "unit": "mm"},
    {"name": "Hardness", "nominal": "45", "lower_tol": "-3", "upper_tol": "3", "unit": "HRC"},
]


@pytest.fixture(scope="module")
def queue() -> str:
    return f"test-chain-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chain-data")


@pytest.fixture(scope="module")
def worker(committed_db_url: str, redis_url: str, queue: str, data_dir: Path) -> Iterator[Proc]:
    with running(processes.worker(committed_db_url, redis_url, queue, data_dir=data_dir)) as proc:
        yield proc


@pytest.fixture(scope="module")
def relay(committed_db_url: str, redis_url: str, queue: str) -> Iterator[Proc]:
    with running(processes.relay(committed_db_url, redis_url, queue)) as proc:
        yield proc


@pytest.fixture(scope="module")
def server(committed_db_url: str, redis_url: str, queue: str, data_dir: Path) -> Iterator[LiveServer]:
    with LiveServer(committed_db_url, redis_url, live_settings(celery_queue=queue, data_dir=data_dir)) as s:
        yield s


@pytest.fixture
def celery_client(redis_url: str, queue: str) -> Celery:
    client: Celery = task_client(redis_url, queue, "chain-test-client")
    return client


class Chain:
    """One market on the live server: a factory's machine, a buyer, an independent lab."""

    def __init__(self, client: httpx.AsyncClient, db_url: str, market: Market, lab: dict[str, Any]) -> None:
        self.client = client
        self.db_url = db_url
        self.m = market
        self.lab = lab  # {"headers", "org", "asset"}

    async def ok(self, method: str, url: str, headers: dict[str, str], status: int = 200, **kw: Any) -> Any:
        r = await self.client.request(method, url, headers=headers, **kw)
        assert r.status_code == status, f"{method} {url}: {r.text}"
        return r.json()

    async def act(self, headers: dict[str, str], booking_id: str, action: str) -> dict[str, Any]:
        body = {"reason": "made ahead of the slot (test)"} if action == "complete" else None
        out: dict[str, Any] = await self.ok("POST", f"/api/v1/bookings/{booking_id}/{action}", headers, json=body)
        return out

    async def booking(self, booking_id: str) -> dict[str, Any]:
        out: dict[str, Any] = await self.ok("GET", f"/api/v1/bookings/{booking_id}", self.m.admin)
        return out

    async def ledger(self, booking_id: str) -> dict[str, int]:
        """Every journal of the database balanced; the booking's money in escrow and owed to its supplier."""
        assert await sql(self.db_url, UNBALANCED) == []
        held = -int(await scalar(self.db_url, HELD, {"b": booking_id}))
        payable = -int(await scalar(self.db_url, PAYABLE, {"b": booking_id}))
        return {"held": held, "payable": payable}

    async def completed_production(self, hours_from_now: float) -> dict[str, Any]:
        start, end = slot(hours_from_now)
        booking: dict[str, Any] = await self.ok(
            "POST",
            "/api/v1/bookings",
            {**self.m.buyer, "Idempotency-Key": uuid.uuid4().hex},
            201,
            json={"asset_id": self.m.machine["id"], "start": start.isoformat(), "end": end.isoformat()},
        )
        assert (await self.ledger(booking["id"]))["held"] == booking["amount"]  # invoiced: in escrow
        await self.act(self.m.buyer, booking["id"], "payment/accept-terms")
        for action in ("accept", "start", "complete"):
            await self.act(self.m.supplier, booking["id"], action)
        assert (await self.ledger(booking["id"])) == {"held": booking["amount"], "payable": 0}
        return booking

    async def received_inspection(self, production_id: str, *, require_accreditation: bool) -> dict[str, Any]:
        body = {
            "lab_asset_id": self.lab["asset"]["id"],
            "characteristics": CHARACTERISTICS,
            "sampling": SAMPLING,
            "lot_size": LOT,
            "require_accreditation": require_accreditation,
            "transit_days": 1,
        }
        insp: dict[str, Any] = await self.ok(
            "POST", f"/api/v1/bookings/{production_id}/inspection", self.m.buyer, 201, json=body
        )
        assert insp["plan"]["sample_size"] == 5 and insp["plan"]["accept_number"] == 2
        lab_booking = insp["lab_booking_id"]
        await self.act(self.lab["headers"], lab_booking, "accept")  # ordering it accepted the lab's invoice terms
        url = f"/api/v1/inspections/{insp['id']}"
        await self.ok("POST", f"{url}/shipment", self.m.supplier, json={"tracking_reference": "SF-1-2-3"})
        out: dict[str, Any] = await self.ok("POST", f"{url}/receipt", self.lab["headers"])
        assert out["status"] == "received"
        return out

    async def report(self, inspection: dict[str, Any], *, failing: int) -> dict[str, Any]:
        files = {"file": ("signed.pdf", b"%PDF-1.4 signed " + uuid.uuid4().bytes, "application/pdf")}
        doc = await self.ok("POST", "/api/v1/documents", self.lab["headers"], 201, files=files)
        out: dict[str, Any] = await self.ok(
            "POST",
            f"/api/v1/bookings/{inspection['lab_booking_id']}/report",
            self.lab["headers"],
            201,
            json=report_body(doc["id"], failing=failing),
        )
        return out

    async def age(self, booking_id: str, hours: float) -> None:
        """Time passes: the booking was completed ``hours`` ago."""
        at = datetime.now(UTC) - timedelta(hours=hours)
        await sql(self.db_url, "UPDATE bookings SET completed_at = :at WHERE id = :id", {"id": booking_id, "at": at})


async def _chain(client: httpx.AsyncClient, db_url: str) -> Chain:
    market = await build_market(client, db_url)
    lab_reg, lab_headers, lab_site = await verified_supplier(client, db_url)
    asset = await published(client, lab_headers, market.admin, lab_payload(lab_site["id"], daily_sample_capacity=200))
    return Chain(client, db_url, market, {"headers": lab_headers, "org": lab_reg["org"]["id"], "asset": asset})


async def test_pass_chain_settles_the_factory_on_an_accepted_lot_and_the_lab_after_its_window(
    worker: Proc,
    relay: Proc,
    server: LiveServer,
    committed_engine: AsyncEngine,
    committed_db_url: str,
    celery_client: Celery,
) -> None:
    window = server.settings.dispute_window_hours
    async with http_client(server) as client:
        chain = await _chain(client, committed_db_url)
        production = await chain.completed_production(3)
        inspection = await chain.received_inspection(production["id"], require_accreditation=False)
        lab_booking = inspection["lab_booking_id"]
        # While the inspection is open, the worker's settlement waits even after the dispute window.
        await chain.age(production["id"], window + 1)
        assert run_task(celery_client, worker, "bookings.settle_one", production["id"]) is False
        assert (await chain.ledger(production["id"]))["held"] == production["amount"]

        report = await chain.report(inspection, failing=2)
        assert report["verdict"] == "accepted" and report["gates_payment"] is True
        settled = await chain.booking(production["id"])
        assert settled["status"] == "settled" and settled["timeline"][-1]["actor_kind"] == "system"
        money = await chain.ledger(production["id"])
        assert money["held"] == 0 and 0 < money["payable"] < production["amount"]

        lab = await chain.booking(lab_booking)
        assert lab["status"] == "completed"
        assert (await chain.ledger(lab_booking)) == {"held": lab["amount"], "payable": 0}
        # Inside its window the lab booking does not settle; after it, the worker settles it.
        assert run_task(celery_client, worker, "bookings.settle_one", lab_booking) is False
        await chain.age(lab_booking, window + 1)
        assert run_task(celery_client, worker, "bookings.settle_one", lab_booking) is True
        assert (await chain.booking(lab_booking))["status"] == "settled"
        lab_money = await chain.ledger(lab_booking)
        assert lab_money["held"] == 0 and lab_money["payable"] > 0

        # The relay sent the render job to the worker: the report's PDF is issued and readable by the buyer.
        async def rendered() -> str | None:
            got = await chain.ok("GET", f"/api/v1/inspections/{inspection['id']}/report", chain.m.buyer)
            return got["pdf_document_id"]  # type: ignore[no-any-return]

        pdf = await wait_for(rendered, within=60, what="the worker's report PDF")
        r = await client.get(f"/api/v1/documents/{pdf}", headers=chain.m.buyer)
        assert r.status_code == 200, r.text


async def test_fail_chain_disputes_the_rejected_lot_and_the_admin_refunds_or_orders_rework(
    worker: Proc,
    relay: Proc,
    server: LiveServer,
    committed_engine: AsyncEngine,
    committed_db_url: str,
    celery_client: Celery,
) -> None:
    window = server.settings.dispute_window_hours
    async with http_client(server) as client:
        chain = await _chain(client, committed_db_url)
        refunded = await chain.completed_production(3)
        reworked = await chain.completed_production(8)
        labs = []
        for production in (refunded, reworked):
            inspection = await chain.received_inspection(production["id"], require_accreditation=False)
            report = await chain.report(inspection, failing=3)
            assert report["verdict"] == "rejected" and report["nonconforming"] == 3
            disputed = await chain.booking(production["id"])
            assert (
                disputed["status"] == "disputed"
                and disputed["dispute_reason"] == "lot rejected by the inspection report"
            )
            assert (await chain.ledger(production["id"])) == {"held": production["amount"], "payable": 0}
            # A disputed booking never settles by itself.
            await chain.age(production["id"], window + 1)
            assert run_task(celery_client, worker, "bookings.settle_one", production["id"]) is False
            labs.append(inspection["lab_booking_id"])

        # The admin refunds the first lot in part.
        refund = refunded["amount"] // 4
        resolved = await chain.ok(
            "POST",
            f"/api/v1/admin/bookings/{refunded['id']}/resolve",
            chain.m.admin,
            json={"refund_amount": refund, "note": "a quarter of the lot is scrap"},
        )
        assert resolved["status"] == "resolved" and resolved["refund_amount"] == refund
        money = await chain.ledger(refunded["id"])
        assert money["held"] == 0 and 0 < money["payable"] < refunded["amount"] - refund

        # ... and sends the second back for rework: in progress, money held, completed again, inspected again.
        back = await chain.ok(
            "POST", f"/api/v1/admin/bookings/{reworked['id']}/rework", chain.m.admin, json={"note": "remake the bores"}
        )
        assert back["status"] == "in_progress" and back["completed_at"] is None
        await chain.act(chain.m.supplier, reworked["id"], "complete")
        assert (await chain.booking(reworked["id"]))["status"] == "completed"  # no dispute from the old report
        second = await chain.received_inspection(reworked["id"], require_accreditation=False)
        await chain.age(reworked["id"], window + 1)
        assert run_task(celery_client, worker, "bookings.settle_one", reworked["id"]) is False  # inspection open
        assert (await chain.ledger(reworked["id"]))["held"] == reworked["amount"]
        assert (await chain.report(second, failing=0))["verdict"] == "accepted"
        assert (await chain.booking(reworked["id"]))["status"] == "settled"
        assert (await chain.ledger(reworked["id"]))["held"] == 0
        labs.append(second["lab_booking_id"])

        # The labs are paid whatever the verdict: each settles through the worker after its window.
        for lab_booking in labs:
            await chain.age(lab_booking, window + 1)
            assert run_task(celery_client, worker, "bookings.settle_one", lab_booking) is True
            lab_money = await chain.ledger(lab_booking)
            assert lab_money["held"] == 0 and lab_money["payable"] > 0


async def test_a_report_that_cannot_gate_waits_for_the_buyer_then_settles_through_the_worker(
    worker: Proc,
    relay: Proc,
    server: LiveServer,
    committed_engine: AsyncEngine,
    committed_db_url: str,
    celery_client: Celery,
) -> None:
    window = server.settings.dispute_window_hours
    async with http_client(server) as client:
        chain = await _chain(client, committed_db_url)
        await sql(
            committed_db_url,
            """INSERT INTO certificates (id, org_id, standard, number, issuer, accreditation_body, scope,
                                         valid_from, valid_until, status, created_at)
               VALUES (:id, :org, 'ISO/IEC 17025', 'CNAS L0001', 'CNAS', 'CNAS', 'GB/T 3177-2009',
                       :start, :end, 'verified', now())""",
            {"id": uuid.uuid4(), "org": chain.lab["org"], "start": date(2020, 1, 1), "end": date(2023, 12, 31)},
        )
        production = await chain.completed_production(3)
        inspection = await chain.received_inspection(production["id"], require_accreditation=True)
        report = await chain.report(inspection, failing=0)
        assert report["accreditation"] == "not_valid_on_test_date" and report["gates_payment"] is False
        assert (await chain.booking(production["id"]))["status"] == "completed"

        # The production booking's own window has passed, but the buyer decides for a window after the report.
        await chain.age(production["id"], window + 1)
        assert run_task(celery_client, worker, "bookings.settle_one", production["id"]) is False
        assert (await chain.ledger(production["id"]))["held"] == production["amount"]
        # Once that window has passed too, the worker settles it.
        await sql(
            committed_db_url,
            "UPDATE inspection_reports SET created_at = now() - make_interval(hours => :h) WHERE id = :id",
            {"id": report["id"], "h": window + 1},
        )
        assert run_task(celery_client, worker, "bookings.settle_one", production["id"]) is True
        assert (await chain.booking(production["id"]))["status"] == "settled"
        assert (await chain.ledger(production["id"]))["held"] == 0
