"""The small demo data set ``marketplace run`` loads into an empty database."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.auth.models import User
from marketplace.core.security import hash_password
from marketplace.core.sqltypes import utcnow
from marketplace.demo import repository
from marketplace.orgs.models import Membership, Organisation, VerificationStatus

DEMO_PASSWORD = "demo-password-123"


@dataclass(frozen=True)
class DemoAccount:
    email: str
    org_name: str
    roles: tuple[str, ...]
    country: str
    uscc: str | None
    locale: str


DEMO_ACCOUNTS = (
    DemoAccount(
        "factory@example.com",
        "苏州精工机械 Suzhou Precision Machining",
        ("supplier", "buyer"),
        "CN",
        "91350200776049653A",
        "zh-CN",
    ),
    DemoAccount(
        "lab@example.com",
        "宁波检测中心 Ningbo Testing Lab",
        ("supplier",),
        "CN",
        "91440101MA5CJQ4N59",
        "zh-CN",
    ),
    # Registered in Dongguan (USCC positions 3-8: 441900), so the Guangdong voucher programme below takes it.
    DemoAccount("buyer@example.com", "Dongguan Smart Devices Ltd", ("buyer",), "CN", "91441900MAMEA76YXX", "en"),
    # A provincial science-and-technology department running an innovation-voucher programme (issue #18).
    DemoAccount(
        "programme@example.com",
        "广东省科学技术厅 Guangdong Department of Science and Technology",
        ("programme",),
        "CN",
        "11440000MAGYGLUY0F",
        "zh-CN",
    ),
)


async def database_is_empty(session: AsyncSession) -> bool:
    return await repository.count_organisations(session) == 0


async def seed_demo(session: AsyncSession) -> list[DemoAccount]:
    """Verified demo organisations, each with one owner who signs in with ``DEMO_PASSWORD``."""
    password_hash = hash_password(DEMO_PASSWORD)
    for acc in DEMO_ACCOUNTS:
        user = User(
            email=acc.email,
            password_hash=password_hash,
            full_name=acc.org_name.split(" ")[0],
            locale=acc.locale,
            email_verified_at=utcnow(),  # demo accounts are ready to book and publish
        )
        org = Organisation(
            name=acc.org_name,
            legal_name=acc.org_name,
            country=acc.country,
            uscc=acc.uscc,
            roles=list(acc.roles),
            verification_status=VerificationStatus.verified,
            verification_reason="demo data",
            verification_decided_at=utcnow(),
        )
        session.add_all([user, org])
        await session.flush()
        session.add(Membership(org_id=org.id, user_id=user.id, role="owner"))
    await session.flush()
    return list(DEMO_ACCOUNTS)
