"""The demo's listings, its pending verification and its open negotiation (see :mod:`marketplace.demo.activity`).

Each step calls the service function the matching API endpoint calls."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from listings import service as listings
from listings.models import Asset
from listings.schemas import (
    AvailabilityIn,
    CertificateCreate,
    Decision,
    LabServiceCreate,
    MachineCreate,
    SiteCreate,
    WeeklyIn,
)
from marketplace.admin.moderation import decide_certificate, moderate_asset
from marketplace.auth.deps import _principal_for_user
from marketplace.auth.models import User
from marketplace.bookings.deps import blocked_time, listings_config
from marketplace.core.principal import Principal
from marketplace.core.security import hash_password
from marketplace.core.settings import Settings
from marketplace.core.sqltypes import utcnow
from marketplace.demo.accounts import DEMO_PASSWORD
from marketplace.messages import service as messages
from marketplace.orgs import service as orgs
from marketplace.orgs.schemas import OrgCreate, VerificationDocument, VerificationSubmit
from marketplace.quotes import service as quotes
from marketplace.quotes.schemas import CounterIn, QuoteCreate
from marketplace.requests import service as requests
from marketplace.requests.schemas import RequestCreate

if TYPE_CHECKING:
    from marketplace.demo.activity import DemoCast

# The organisation that waits for the admin's verification decision (it signs in with the demo password).
PENDING_EMAIL = "moulds@example.com"
PENDING_ORG = "佛山精密模具 Foshan Precision Moulds"
PENDING_USCC = "91440300708461136T"

ALWAYS_OPEN = [WeeklyIn(weekday=d, start="00:00", end="00:00") for d in range(7)]  # a lights-out cell: 24 h a day
WEEKDAYS = [WeeklyIn(weekday=d, start="08:00", end="18:00") for d in range(5)]
LAB_DAYS = [WeeklyIn(weekday=d, start="08:30", end="17:30") for d in range(7)]

SUZHOU = {
    "name": "苏州工业园区 Plant 1",
    "address": "88 Xinghu St, Suzhou Industrial Park",
    "country": "CN",
    "region_code": "320500",
    "latitude": 31.30,
    "longitude": 120.62,
    "timezone": "Asia/Shanghai",
}
NINGBO = {
    "name": "宁波实验室 Ningbo lab",
    "address": "9 Lingyun Rd, Ningbo",
    "country": "CN",
    "region_code": "330200",
    "latitude": 29.87,
    "longitude": 121.54,
    "timezone": "Asia/Shanghai",
}


@dataclass
class DemoListings:
    cell: Asset  # 5-axis centre open around the clock: the bookings that have started use it
    lathe: Asset  # weekday hours; the listing the buyer flags
    tensile: Asset  # the lab's published service
    pending: Asset  # a listing waiting for moderation
    cmm: Asset  # the lab's dimensional inspection: the lab a buyer picks for an inspection of a produced lot
    count: int = 5


async def _listing(
    session: AsyncSession,
    owner: Principal,
    data: MachineCreate | LabServiceCreate,
    *,
    settings: Settings,
    weekly: list[WeeklyIn],
) -> Asset:
    config, blocked = listings_config(settings), blocked_time()
    asset = await listings.create_asset(session, owner, data, config=config, blocked=blocked)
    await listings.set_availability(
        session, owner, asset.id, data=AvailabilityIn(weekly=weekly), config=config, blocked=blocked
    )
    return await listings.owner_transition(session, owner, asset.id, action="submit")


def _machine(site_id: uuid.UUID, **fields: object) -> MachineCreate:
    return MachineCreate.model_validate({"site_id": site_id, "kind": "machine", "currency": "CNY", **fields})


async def publish_listings(session: AsyncSession, *, cast: DemoCast, settings: Settings) -> DemoListings:
    """The factory's machines and the lab's services: created, given hours, submitted; all but one approved by
    the admin (audited); the buyer flags one of them."""
    plant = await listings.create_site(session, cast.factory, SiteCreate.model_validate(SUZHOU))
    lab_site = await listings.create_site(session, cast.lab, SiteCreate.model_validate(NINGBO))
    cell = await _listing(
        session,
        cast.factory,
        _machine(
            plant.id,
            title="DMG MORI DMU 50 五轴加工中心 5-axis cell",
            description="Lights-out 5-axis cell with pallet changer; runs around the clock.",
            process_codes=["machining.milling.cnc_5axis"],
            materials=["al_6061", "steel_45"],
            envelope_mm={"x": 650, "y": 520, "z": 475},
            max_part_mass_kg=200,
            tolerance_mm=0.01,
            hourly_rate=28_000,
            setup_fee=20_000,
            # Quality documents sold with the machine time (docs/verification.md): CoC ¥50, FAI ¥300, 3.1 ¥80.
            quality_documents={"coc": 5_000, "fai": 30_000, "material_cert": 8_000},
        ),
        settings=settings,
        weekly=ALWAYS_OPEN,
    )
    lathe = await _listing(
        session,
        cast.factory,
        _machine(
            plant.id,
            title="Mazak QT-250 数控车床 CNC lathe",
            description="Turning up to 300 mm diameter, bar feeder.",
            process_codes=["machining.turning.cnc_lathe"],
            materials=["al_6061", "steel_45", "q235"],
            envelope_mm={"x": 300, "y": 300, "z": 600},
            tolerance_mm=0.02,
            hourly_rate=15_000,
        ),
        settings=settings,
        weekly=WEEKDAYS,
    )
    tensile = await _listing(
        session,
        cast.lab,
        LabServiceCreate(
            site_id=lab_site.id,
            kind="lab_service",
            title="金属拉伸试验 Tensile test, room temperature",
            process_codes=["testing.mechanical.tensile"],
            materials=["q235", "steel_45", "al_6061"],
            test_standard="GB/T 228.1-2021",
            accredited=True,
            price_per_sample=15_000,
            turnaround_days=3,
            daily_sample_capacity=40,
            sample_requirements="Two specimens per sample, machined to GB/T 228.1 type P.",
        ),
        settings=settings,
        weekly=LAB_DAYS,
    )
    cmm = await _listing(
        session,
        cast.lab,
        LabServiceCreate(
            site_id=lab_site.id,
            kind="lab_service",
            title="三坐标尺寸检测 CMM dimensional inspection",
            process_codes=["testing.dimensional.cmm"],
            materials=["al_6061", "steel_45", "q235"],
            test_standard="GB/T 16857.2-2017",
            accredited=True,
            price_per_sample=12_000,
            turnaround_days=2,
            daily_sample_capacity=200,
            sample_requirements="Clean, deburred parts; the drawing with the characteristics to measure.",
        ),
        settings=settings,
        weekly=LAB_DAYS,
    )
    await _accreditation(session, cast=cast)
    pending = await _listing(
        session,
        cast.factory,
        _machine(
            plant.id,
            title="Trumpf TruLaser 3030 激光切割 laser cutter",
            description="Sheet up to 20 mm steel; new listing, waiting for review.",
            process_codes=["sheet_metal.laser_cut.fiber"],
            materials=["q235", "steel_45"],
            envelope_mm={"x": 3000, "y": 1500, "z": 20},
            tolerance_mm=0.1,
            hourly_rate=40_000,
        ),
        settings=settings,
        weekly=WEEKDAYS,
    )
    for asset in (cell, lathe, tensile, cmm):
        await moderate_asset(session=session, principal=cast.admin, asset_id=asset.id, action="approve", reason=None)
    await listings.flag(
        session,
        cast.buyer,
        lathe.id,
        reason_code="misleading_description",
        reason="The photos show a different machine from the one described.",
    )
    return DemoListings(cell=cell, lathe=lathe, tensile=tensile, pending=pending, cmm=cmm)


async def _accreditation(session: AsyncSession, *, cast: DemoCast) -> None:
    """The lab's CNAS accreditation (ISO/IEC 17025) covering both its services, verified by the admin: an
    inspection by this lab can decide a payment even when the buyer requires accreditation."""
    today = utcnow().date()
    cert = await listings.add_certificate(
        session,
        cast.lab,
        cast.org_of(cast.lab),
        data=CertificateCreate(
            standard="ISO/IEC 17025",
            number="CNAS L8816",
            issuer="中国合格评定国家认可委员会 CNAS",
            accreditation_body="CNAS",
            scope="GB/T 228.1-2021 金属材料 拉伸试验; GB/T 16857.2-2017 坐标测量机 尺寸测量",
            valid_from=today - timedelta(days=365),
            valid_until=today + timedelta(days=730),
        ),
    )
    await decide_certificate(
        session=session, principal=cast.admin, cert_id=cert.id, data=Decision(decision="verified", reason="demo data")
    )


async def pending_verification(session: AsyncSession) -> uuid.UUID:
    """A new mould maker that has submitted its business licence and waits for the admin."""
    user = User(
        email=PENDING_EMAIL,
        password_hash=hash_password(DEMO_PASSWORD),
        full_name="佛山精密模具",
        locale="zh-CN",
        email_verified_at=utcnow(),
    )
    session.add(user)
    await session.flush()
    org = await orgs.create_org(session, OrgCreate(name=PENDING_ORG, roles=["supplier"], country="CN"), owner=user)
    owner = await _principal_for_user(session, user.id, admins_need_two_factor=False)
    if owner is None:  # the user was just created active: only a broken seed gets here
        raise RuntimeError("the pending organisation's owner cannot act")
    data = VerificationSubmit(
        legal_name="佛山市精密模具有限公司",
        uscc=PENDING_USCC,
        documents=[
            VerificationDocument(name="营业执照 Business licence", reference="https://example.com/demo/licence.pdf")
        ],
        contact_phone="+86 757 8888 0000",
    )
    await orgs.submit_verification(session, owner, org_id=org.id, data=data)
    return org.id


async def negotiation(session: AsyncSession, *, cast: DemoCast, listings: DemoListings, now: datetime) -> uuid.UUID:
    """An open request of the buyer, a quote from the factory, the buyer's counter-offer and a message."""
    request = await requests.create(
        session,
        cast.buyer,
        RequestCreate(
            kind="machine",
            process_code="machining.milling.cnc_5axis",
            material="al_6061",
            quantity=40,
            duration_minutes=240,
            part_envelope_mm={"x": 300, "y": 200, "z": 100},
            tolerance_mm=0.05,
            earliest_start=now + timedelta(days=2),
            deadline=now + timedelta(days=20),
            location={"latitude": 31.3, "longitude": 120.6},
            max_distance_km=150,
            budget_max=150_000,
            currency="CNY",
        ),
    )
    start = (now + timedelta(days=5)).replace(minute=0, second=0, microsecond=0)
    offer = await quotes.submit(
        session,
        principal=cast.factory,
        request_id=request.id,
        data=QuoteCreate(
            asset_id=listings.cell.id,
            currency="CNY",
            amount=132_000,
            start=start,
            end=start + timedelta(hours=4),
            valid_until=now + timedelta(days=7),
            note="Fixture and first-article inspection included.",
        ),
    )
    await quotes.counter(
        session,
        principal=cast.buyer,
        quote_id=offer.quote.id,
        data=CounterIn(
            amount=118_000, start=start, end=start + timedelta(hours=4), note="We can supply the raw stock."
        ),
    )
    seat = await messages.request_seat(
        session, cast.factory, request_id=request.id, supplier_org_id=cast.org_of(cast.factory), write=True
    )
    await messages.post(
        session,
        cast.factory,
        seat=seat,
        body="Could you send the drawing with the tolerances of the bore? 请发送孔公差图纸。",
        document_ids=[],
    )
    return request.id
