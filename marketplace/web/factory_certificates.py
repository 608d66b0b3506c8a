"""The listing wizard's certificate step: the quality certificates that cover a listing's site (its own and the
company-wide ones), adding one with its scan (a PDF or an image, kept in the document store) and removing one.
Also the scan itself, shown to those who may read it: the owner, the admins, and buyers who booked with it."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, get_args

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from listings import service as listings
from listings.errors import ListingsError
from listings.models import Asset
from listings.repository import ListingsRepository
from listings.schemas import CertificateCreate
from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError
from marketplace.core.principal import Principal
from marketplace.documents import service as documents
from marketplace.documents.certificate_scans import DocumentStoreScans, scan_documents
from marketplace.orgs.models import Organisation
from marketplace.web import i18n
from marketplace.web.core import (
    N_,
    CsrfChecked,
    FieldError,
    SignedIn,
    WebError,
    locale_of,
    member_org,
    redirect,
    render,
)
from marketplace.web.document_uploads import ACCEPT, MISSING, chosen, inline_response, store_scan

router = APIRouter(include_in_schema=False)

STANDARDS: tuple[str, ...] = get_args(CertificateCreate.model_fields["standard"].annotation)
SCAN_FIELD = "scan"
_TEXT_FIELDS = (
    "standard",
    "number",
    "issuer",
    "accreditation_body",
    "scope",
    "valid_from",
    "valid_until",
    "applies_to",
)
_MESSAGES = {
    "standard": N_("Choose the standard."),
    "number": N_("Enter the certificate number."),
    "issuer": N_("Enter who issued the certificate."),
    "accreditation_body": N_("Keep the accreditation body under 100 characters."),
    "scope": N_("Keep the scope under 5000 characters."),
    "valid_from": N_("Enter the date the certificate is valid from."),
    "valid_until": N_("Enter the date the certificate expires."),
    "order": N_("The expiry date cannot be before the valid-from date."),
    "_": N_("The certificate could not be saved. Check the form and try again."),
}


async def _asset(session: AsyncSession, user: Principal, *, org_id: uuid.UUID, asset_id: uuid.UUID) -> Asset:
    """The listing, if it belongs to ``org_id`` and ``user`` may manage it; 404 alike for everything else."""
    await member_org(session, user, org_id, role="supplier")
    asset = await ListingsRepository(session).get_asset(asset_id)
    if asset is None or asset.org_id != org_id:
        raise WebError(404, "not_found")
    return asset


def _base(org_id: uuid.UUID, asset_id: uuid.UUID) -> str:
    return f"/factory/{org_id}/assets/{asset_id}/certificates"


async def _page(
    request: Request,
    session: AsyncSession,
    user: Principal,
    *,
    org: Organisation,
    asset: Asset,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    certs = await listings.site_certificates(session, user, org.id, site_id=asset.site_id)
    ctx: dict[str, Any] = {
        "org": org,
        "asset": asset,
        "certificates": certs,
        "scans": await scan_documents(session, [c.id for c in certs]),
        "standards": STANDARDS,
        "accept": ACCEPT,
        "today": date.today(),
        "form": form or {"applies_to": "site"},
        "errors": errors or {},
        "base": _base(org.id, asset.id),
    }
    return render(request, "factory/certificates.html", ctx, status=422 if errors else 200, user=user)


@router.get("/factory/{org_id}/assets/{asset_id}/certificates", response_class=HTMLResponse)
async def certificates(
    request: Request, org_id: uuid.UUID, asset_id: uuid.UUID, session: SessionDep, user: SignedIn
) -> HTMLResponse:
    asset = await _asset(session, user, org_id=org_id, asset_id=asset_id)
    org = await member_org(session, user, org_id, role="supplier")
    return await _page(request, session, user, org=org, asset=asset)


def _parse(form: dict[str, str], asset: Asset, gettext: Any) -> tuple[CertificateCreate | None, dict[str, str]]:
    """The certificate the form describes, or the messages of every field that is wrong."""
    errors: dict[str, str] = {}
    dates: dict[str, date | None] = {}
    for name in ("valid_from", "valid_until"):
        try:
            dates[name] = date.fromisoformat(form[name])
        except ValueError:
            errors[name] = gettext(_MESSAGES[name])
    if form["standard"] not in STANDARDS:
        errors["standard"] = gettext(_MESSAGES["standard"])
    if errors:
        return None, errors
    try:
        data = CertificateCreate.model_validate(
            {
                "standard": form["standard"],
                "number": form["number"],
                "issuer": form["issuer"],
                "accreditation_body": form["accreditation_body"] or None,
                "scope": form["scope"],
                "valid_from": dates["valid_from"],
                "valid_until": dates["valid_until"],
                "site_id": asset.site_id if form["applies_to"] != "org" else None,
            }
        )
    except ValidationError as exc:
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ())]
            if not loc:  # the model's own check: the order of the dates
                errors.setdefault("valid_until", gettext(_MESSAGES["order"]))
                continue
            field = loc[0] if loc[0] in _MESSAGES else "_"
            errors.setdefault(field, gettext(_MESSAGES[field]))
        return None, errors
    return data, {}


@router.post("/factory/{org_id}/assets/{asset_id}/certificates")
async def add_certificate(
    request: Request, org_id: uuid.UUID, asset_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    asset = await _asset(session, user, org_id=org_id, asset_id=asset_id)
    org = await member_org(session, user, org_id, role="supplier")
    raw = await request.form()
    form = {name: str(raw.get(name) or "").strip() for name in _TEXT_FIELDS}
    gettext = i18n.translations(locale_of(request)).gettext
    data, errors = _parse(form, asset, gettext)
    if data is None:
        if not chosen(raw.get(SCAN_FIELD)):
            errors[SCAN_FIELD] = gettext(MISSING)
        return await _page(request, session, user, org=org, asset=asset, form=form, errors=errors)
    try:
        doc = await store_scan(request, session, user, org_id=org_id, upload=raw.get(SCAN_FIELD), field=SCAN_FIELD)
        cert = await listings.add_certificate(session, user, org_id, data=data)
        await DocumentStoreScans().attach(session, org_id=org_id, document_id=doc.id, certificate_id=cert.id)
    except (FieldError, ListingsError, AppError) as exc:
        await session.rollback()  # the scan and the certificate are discarded together: nothing is saved
        errors = {exc.field: exc.message} if isinstance(exc, FieldError) else {"_": gettext(_MESSAGES["_"])}
        asset = await _asset(session, user, org_id=org_id, asset_id=asset_id)  # read again after the rollback
        org = await member_org(session, user, org_id, role="supplier")
        return await _page(request, session, user, org=org, asset=asset, form=form, errors=errors)
    return redirect(f"{_base(org_id, asset_id)}?notice=added")


@router.post("/factory/{org_id}/assets/{asset_id}/certificates/{cert_id}/remove")
async def remove_certificate(
    org_id: uuid.UUID, asset_id: uuid.UUID, cert_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    await _asset(session, user, org_id=org_id, asset_id=asset_id)
    try:
        await listings.remove_certificate(session, user, org_id, cert_id=cert_id)
    except ListingsError as exc:
        raise WebError(404, "not_found") from exc
    return redirect(f"{_base(org_id, asset_id)}?notice=removed")


@router.get("/certificates/{cert_id}/scan")
async def certificate_scan(
    request: Request, cert_id: uuid.UUID, session: SessionDep, user: SignedIn
) -> StreamingResponse:
    """The scan, for those the document store lets read it (404 alike for everyone else and for none)."""
    doc = (await scan_documents(session, [cert_id])).get(cert_id)
    if doc is None or not await documents.can_read(session, user, doc):
        raise WebError(404, "not_found")
    return await inline_response(request, doc)


async def listing_certificates(
    session: AsyncSession, user: Principal | None, *, org_id: uuid.UUID, site_id: uuid.UUID
) -> list[dict[str, Any]]:
    """What a listing's public page shows of each verified certificate covering its site: standard, number,
    issuer, scope and expiry (expired ones are marked), and whether this viewer may open the scan."""
    certs = await listings.listed_certificates(session, org_id=org_id, site_id=site_id)
    scans = await scan_documents(session, [c.id for c in certs])
    today = date.today()
    rows = []
    for c in certs:
        doc = scans.get(c.id)
        readable = doc is not None and user is not None and await documents.can_read(session, user, doc)
        rows.append(
            {
                "id": c.id,
                "standard": c.standard,
                "number": c.number,
                "issuer": c.issuer,
                "accreditation_body": c.accreditation_body,
                "scope": c.scope,
                "valid_until": c.valid_until,
                "expired": c.valid_until < today,
                "scan": readable,
            }
        )
    return rows
