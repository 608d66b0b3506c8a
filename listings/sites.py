"""Sites and certificates of an organisation. Functions take a session and never commit."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from listings.access import owned_site, require, require_existing, utcnow
from listings.actor import Actor
from listings.errors import Invalid, NotFound
from listings.lifecycle import transition
from listings.models import Certificate, CertificateStatus, Site
from listings.repository import ListingsRepository
from listings.schemas import CertificateCreate, Decision, SiteCreate, SiteUpdate, check_region_code

SITE_LOCATION_FIELDS = frozenset({"address", "region_code", "latitude", "longitude", "timezone"})


async def create_site(session: AsyncSession, actor: Actor, data: SiteCreate) -> Site:
    org_id = data.org_id
    member_orgs = sorted(actor.org_ids)
    if org_id is None:
        if len(member_orgs) != 1:
            raise Invalid("org_id: you belong to several organisations (or none); say which one owns the site.")
        org_id = member_orgs[0]
    repo = ListingsRepository(session)
    await require_existing(repo, actor, org_id, scope="listings:write")
    site = Site(org_id=org_id, **data.model_dump(exclude={"org_id"}))
    return await repo.add(site)  # type: ignore[no-any-return]


async def get_site(session: AsyncSession, actor: Actor, site_id: uuid.UUID) -> Site:
    return await owned_site(ListingsRepository(session), actor, site_id, scope="listings:read")


async def list_sites(session: AsyncSession, actor: Actor, org_id: uuid.UUID) -> list[Site]:
    require(actor, org_id, "listings:read", not_found="Organisation not found.")
    return await ListingsRepository(session).sites_of_org(org_id)


async def update_site(session: AsyncSession, actor: Actor, site_id: uuid.UUID, *, data: SiteUpdate) -> Site:
    repo = ListingsRepository(session)
    site = await owned_site(repo, actor, site_id, scope="listings:write")
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "region_code" in changes:
        try:
            changes["region_code"] = check_region_code(site.country, str(changes["region_code"]))
        except ValueError as exc:
            raise Invalid(str(exc)) from None
    moved = any(getattr(site, k) != v for k, v in changes.items() if k in SITE_LOCATION_FIELDS)
    for key, value in changes.items():
        setattr(site, key, value)
    site.updated_at = utcnow()
    if moved:
        # Buyers chose these listings partly by location: a moved site goes back to review.
        for asset in await repo.published_assets_at_site(site.id):
            await transition(repo, asset, "material_edit", actor_user_id=actor.user_id, reason="site location changed")
    await session.flush()
    return site


# -- certificates ----------------------------------------------------------------------------------


async def add_certificate(
    session: AsyncSession, actor: Actor, org_id: uuid.UUID, *, data: CertificateCreate
) -> Certificate:
    repo = ListingsRepository(session)
    await require_existing(repo, actor, org_id, scope="listings:write")
    if data.site_id is not None:
        site = await repo.get_site(data.site_id)
        if site is None or site.org_id != org_id:
            raise NotFound("Site not found.")
    cert = Certificate(org_id=org_id, **data.model_dump(exclude={"document_id"}))
    return await repo.add(cert)  # type: ignore[no-any-return]


async def list_certificates(session: AsyncSession, actor: Actor, org_id: uuid.UUID) -> list[Certificate]:
    require(actor, org_id, "listings:read", not_found="Organisation not found.")
    return await ListingsRepository(session).certificates_of_org(org_id)


async def site_certificates(
    session: AsyncSession, actor: Actor, org_id: uuid.UUID, *, site_id: uuid.UUID
) -> list[Certificate]:
    """The certificates that cover one site of the organisation (organisation-wide ones too), any status."""
    require(actor, org_id, "listings:read", not_found="Organisation not found.")
    return await ListingsRepository(session).certificates_for_site(org_id, site_id)


async def listed_certificates(session: AsyncSession, *, org_id: uuid.UUID, site_id: uuid.UUID) -> list[Certificate]:
    """What a listing's public page shows: the verified certificates covering its site (expired ones too, so
    the page can say they expired)."""
    return await ListingsRepository(session).certificates_for_site(org_id, site_id, verified_only=True)


async def remove_certificate(session: AsyncSession, actor: Actor, org_id: uuid.UUID, *, cert_id: uuid.UUID) -> None:
    """The owner removes one of its certificates (404 for another organisation's, as for an unknown one)."""
    repo = ListingsRepository(session)
    require(actor, org_id, "listings:write", not_found="Certificate not found.")
    cert = await repo.get_certificate(cert_id, for_update=True)
    if cert is None or cert.org_id != org_id:
        raise NotFound("Certificate not found.")
    await repo.delete_certificate(cert)


async def decide_certificate(session: AsyncSession, cert_id: uuid.UUID, data: Decision) -> tuple[str, Certificate]:
    """Admin decision; returns the previous status (for the audit log) and the certificate."""
    cert = await ListingsRepository(session).get_certificate(cert_id, for_update=True)
    if cert is None:
        raise NotFound("Certificate not found.")
    before = cert.status
    cert.status = CertificateStatus(data.decision)
    cert.status_reason = data.reason or None
    cert.verified_at = utcnow() if data.decision == "verified" else None
    await session.flush()
    return before, cert
