"""Tables of analytics: observer grants and the monthly observatory rollups.

Rollup rows are kept at the finest grain (full site region code x process family x month) together with the
distinct organisation ids behind each row, so any coarser region prefix can be aggregated exactly (distinct
counts are not additive) and suppression can count the organisations behind every cell and total."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlmodel import Field, SQLModel

from marketplace.core.sqltypes import text_array_column, ts_column, utcnow


def _uuids() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(pg.ARRAY(sa.Uuid), nullable=False, server_default="{}")


def _floats() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(pg.ARRAY(sa.Float), nullable=False, server_default="{}")


class ObserverGrant(SQLModel, table=True):
    """A platform admin lets a user observe aggregates of one or more region-code prefixes."""

    __tablename__ = "observer_grants"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    region_prefixes: list[str] = Field(default_factory=list, sa_column=text_array_column())
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))


class ObservatoryCell(SQLModel, table=True):
    """One month x site region code x process family: additive measures plus the organisations behind them."""

    __tablename__ = "observatory_cells"

    month: date = Field(primary_key=True)
    region_code: str = Field(primary_key=True, max_length=20)
    process_family: str = Field(primary_key=True, max_length=100)
    listed_hours: float = 0.0
    booked_hours: float = 0.0
    bookings: int = 0
    lab_tests: int = 0
    lab_samples: int = 0
    accredited_tests: int = 0
    requests: int = 0
    requests_closed: int = 0
    requests_booked: int = 0
    match_minutes: list[float] = Field(default_factory=list, sa_column=_floats())
    active_supplier_org_ids: list[uuid.UUID] = Field(default_factory=list, sa_column=_uuids())
    active_buyer_org_ids: list[uuid.UUID] = Field(default_factory=list, sa_column=_uuids())
    # Every organisation a number of this cell depends on (listings, bookings, payments, requests).
    supplier_org_ids: list[uuid.UUID] = Field(default_factory=list, sa_column=_uuids())
    buyer_org_ids: list[uuid.UUID] = Field(default_factory=list, sa_column=_uuids())


class ObservatoryGmv(SQLModel, table=True):
    """Buyer payments received in the ledger, by month x supplier region x process family x currency."""

    __tablename__ = "observatory_gmv"

    month: date = Field(primary_key=True)
    region_code: str = Field(primary_key=True, max_length=20)
    process_family: str = Field(primary_key=True, max_length=100)
    currency: str = Field(primary_key=True, max_length=3)
    amount: int = Field(default=0, sa_type=sa.BigInteger)


class ObservatoryFlow(SQLModel, table=True):
    """Bookings from buyers of one region to suppliers of another."""

    __tablename__ = "observatory_flows"

    month: date = Field(primary_key=True)
    buyer_region: str = Field(primary_key=True, max_length=20)
    supplier_region: str = Field(primary_key=True, max_length=20)
    process_family: str = Field(primary_key=True, max_length=100)
    bookings: int = 0
    booked_hours: float = 0.0
    supplier_org_ids: list[uuid.UUID] = Field(default_factory=list, sa_column=_uuids())
    buyer_org_ids: list[uuid.UUID] = Field(default_factory=list, sa_column=_uuids())


class ObservatoryLabTests(SQLModel, table=True):
    """Lab tests (bookings) and samples by month x lab region x test standard."""

    __tablename__ = "observatory_lab_tests"

    month: date = Field(primary_key=True)
    region_code: str = Field(primary_key=True, max_length=20)
    test_standard: str = Field(primary_key=True, max_length=100)
    tests: int = 0
    samples: int = 0
    accredited_tests: int = 0
    supplier_org_ids: list[uuid.UUID] = Field(default_factory=list, sa_column=_uuids())
    buyer_org_ids: list[uuid.UUID] = Field(default_factory=list, sa_column=_uuids())


class ObservatoryRollup(SQLModel, table=True):
    """Run log: when each month was last rolled up."""

    __tablename__ = "observatory_rollups"

    month: date = Field(primary_key=True)
    computed_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))
    seconds: float = 0.0
    cells: int = 0
