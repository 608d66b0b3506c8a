"""Tables of buyer requests and stored batch plans."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlmodel import Field, SQLModel

from marketplace.core.sqltypes import jsonb_column, text_array_column, ts_column, utcnow


class RequestStatus(StrEnum):
    open = "open"
    booked = "booked"
    closed = "closed"
    cancelled = "cancelled"
    expired = "expired"


class BuyerRequest(SQLModel, table=True):
    """What a buyer organisation asks for; matched against published capacity."""

    __tablename__ = "requests"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('machine', 'lab_service')", name="ck_requests_kind"),
        sa.CheckConstraint("status IN ('open', 'booked', 'closed', 'cancelled', 'expired')", name="ck_requests_status"),
        sa.CheckConstraint("deadline > earliest_start", name="ck_requests_window"),
        sa.CheckConstraint("audience IN ('open', 'invited')", name="ck_requests_audience"),
        sa.CheckConstraint(
            "(kind = 'machine' AND duration_minutes >= 1) OR (kind = 'lab_service' AND samples >= 1)",
            name="ck_requests_size",
        ),
        sa.Index("ix_requests_buyer_created", "buyer_org_id", "created_at"),
        sa.Index("ix_requests_open_deadline", "deadline", postgresql_where=sa.text("status = 'open'")),
        sa.Index("ix_requests_open_process", "kind", "process_code", postgresql_where=sa.text("status = 'open'")),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    buyer_org_id: uuid.UUID = Field(foreign_key="organisations.id", ondelete="CASCADE")
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    status: str = Field(default=RequestStatus.open, max_length=16)
    kind: str = Field(max_length=16)
    process_code: str = Field(max_length=100)
    material: str | None = Field(default=None, max_length=100)
    quantity: int = 1
    duration_minutes: int | None = None
    samples: int | None = None
    part_x_mm: float | None = None
    part_y_mm: float | None = None
    part_z_mm: float | None = None
    tolerance_mm: float | None = None
    required_certificates: list[str] = Field(default_factory=list, sa_column=text_array_column())
    earliest_start: datetime = Field(sa_column=ts_column())
    deadline: datetime = Field(sa_column=ts_column())
    site_id: uuid.UUID | None = Field(default=None, foreign_key="sites.id", ondelete="SET NULL")
    latitude: float | None = None
    longitude: float | None = None
    max_distance_km: float | None = None
    region_prefixes: list[str] = Field(default_factory=list, sa_column=text_array_column())
    budget_max: int | None = Field(default=None, sa_type=sa.BigInteger)
    currency: str = Field(max_length=3)
    weights: dict[str, Any] | None = Field(default=None, sa_column=jsonb_column())
    # Negotiation: open to every matching verified factory or to invited ones only; pass a declined or lapsed
    # quote request on to the next-ranked match; drawings only after the platform NDA is accepted. A request
    # leaves "open" once (booked, closed, cancelled, expired): its updated_at is then when it closed, which the
    # drawings' retention counts from.
    audience: str = Field(default="open", max_length=8, sa_column_kwargs={"server_default": "open"})
    auto_cascade: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    nda_required: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    # Set once the "request.matched" notifications went out (the job is then a no-op on redelivery).
    suppliers_notified_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))


class PlanStatus(StrEnum):
    queued = "queued"  # asked for; the job is in the outbox or the broker
    running = "running"  # a worker is solving it
    done = "done"  # the result columns are filled in
    failed = "failed"  # ``error`` says why


class MatchPlan(SQLModel, table=True):
    """A batch plan: asked for by an admin (``queued``), computed by the optimiser in a worker job
    (``running`` → ``done`` or ``failed``); buyers see their suggestion from the latest done plan."""

    __tablename__ = "match_plans"
    __table_args__ = (
        sa.CheckConstraint("objective IN ('score', 'hours')", name="ck_match_plans_objective"),
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="ck_match_plans_status"),
        sa.Index("ix_match_plans_request_ids", "request_ids", postgresql_using="gin"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    status: str = Field(default=PlanStatus.queued, max_length=16, sa_column_kwargs={"server_default": "queued"})
    horizon_start: datetime = Field(sa_column=ts_column())
    horizon_end: datetime = Field(sa_column=ts_column())
    objective: str = Field(max_length=8)
    # The admin's choice of requests (None = every open machine request in the horizon) and solver budget.
    requested_ids: list[uuid.UUID] | None = Field(default=None, sa_column=sa.Column(pg.ARRAY(sa.Uuid), nullable=True))
    time_limit_seconds: float | None = None
    # Every request the optimiser considered (assigned or not), for "the latest plan that saw this request".
    request_ids: list[uuid.UUID] = Field(
        default_factory=list, sa_column=sa.Column(pg.ARRAY(sa.Uuid), nullable=False, server_default="{}")
    )
    assignments: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=sa.Column(pg.JSONB, nullable=False, server_default="[]")
    )
    value: float | None = None
    bound: float | None = None
    lp_bound: float | None = None
    gap: float | None = None
    method: str | None = Field(default=None, max_length=16)
    matched_hours: float | None = None
    option_count: int = 0
    solver_status: str = Field(default="", max_length=500)
    seconds: float = 0.0
    error: str | None = Field(default=None, max_length=2000)
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True, index=True))
    started_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
