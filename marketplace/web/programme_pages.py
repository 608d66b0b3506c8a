"""The programme operator's pages (issue #18): ``/programme/{org_id}`` lists the organisation's voucher programmes
and creates one; a programme's page shows its statistics, decides applications, grants and revokes vouchers,
changes its settings and builds a month's claim. A claim's page is in ``programme_claim_pages``. Every action
calls the same service as the API (``marketplace.vouchers``); a refusal comes back beside its field in the
page's language, never silently."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError
from marketplace.core.principal import Principal
from marketplace.orgs.models import Organisation
from marketplace.orgs.uscc import normalise_uscc
from marketplace.vouchers import claims, service, stats
from marketplace.vouchers import schemas as vs
from marketplace.vouchers.models import VoucherProgramme
from marketplace.web import form_errors as web_form_errors
from marketplace.web import i18n, programme_claim_pages, voucher_labels
from marketplace.web.core import CsrfChecked, SignedIn, WebError, locale_of, member_org, redirect, render
from marketplace.web.programme_forms import (
    BUYER,
    BUYER_UNKNOWN,
    GRANT_FIELDS,
    PROGRAMME_FIELDS,
    SETTINGS_FIELDS,
    errors_of,
    month_value,
    programme_payload,
    settings_payload,
)
from marketplace.web.programme_page_repository import ProgrammePageRepository
from marketplace.web.programme_views import breakdown, family_choices, kind_choices, mode_choices, partner_choices
from payments.errors import PaymentsError

router = APIRouter(include_in_schema=False)
router.include_router(programme_claim_pages.router)

Errors = dict[str, str]


async def operator_org(session: AsyncSession, user: Principal, org_id: uuid.UUID) -> Organisation:
    """The programme organisation a page acts for: its members (or an admin); anyone else 404."""
    return await member_org(session, user, org_id, role="programme")


async def operated_programme(
    session: AsyncSession, user: Principal, *, org_id: uuid.UUID, programme_id: uuid.UUID
) -> tuple[Organisation, VoucherProgramme]:
    """The organisation and one of its programmes; another organisation's programme is a 404."""
    org = await operator_org(session, user, org_id)
    try:
        programme = await service.get_programme(session, programme_id)
    except AppError:
        raise WebError(404, "not_found") from None
    if programme is None or programme.org_id != org_id:
        raise WebError(404, "not_found")
    return org, programme


def _helpers(request: Request) -> dict[str, Any]:
    return voucher_labels.helpers(i18n.translations(locale_of(request)).gettext)


# -- the organisation's programmes ----------------------------------------------------------------------------


async def _home(
    request: Request,
    session: AsyncSession,
    user: Principal,
    *,
    org: Organisation,
    form: Any = None,
    errors: Errors | None = None,
) -> HTMLResponse:
    locale = locale_of(request)
    gettext = i18n.translations(locale).gettext
    mine = [p for p in await service.operated_programmes(session, user) if p.org_id == org.id]
    rows = [{"p": p, "stats": await stats.statistics(session, user, programme_id=p.id)} for p in mine]
    # A closed programme is not offered as a partner; the partner list is the market's active programmes.
    others = await service.list_programmes(session, active_only=True)
    return render(
        request,
        "programme/home.html",
        {
            "org": org,
            "rows": rows,
            "form": form or {},
            "errors": errors or {},
            "kinds": kind_choices(gettext),
            "families": family_choices(locale),
            "modes": mode_choices(gettext),
            "partners": partner_choices(others),
            "notice": request.query_params.get("notice"),
            **_helpers(request),
        },
        status=422 if errors else 200,
        user=user,
    )


@router.get("/programme/{org_id}", response_class=HTMLResponse)
async def home(request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn) -> HTMLResponse:
    org = await operator_org(session, user, org_id)
    return await _home(request, session, user, org=org)


@router.post("/programme/{org_id}/programmes", response_class=HTMLResponse)
async def create(
    request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    org = await operator_org(session, user, org_id)
    form = await request.form()
    locale = locale_of(request)
    payload, found = programme_payload(form, org_id=str(org_id), locale=locale)
    currency = payload["currency"]
    try:
        data = web_form_errors.validated(
            vs.ProgrammeCreate, payload, errors=found, locale=locale, currency=currency, aliases=PROGRAMME_FIELDS
        )
        programme = await service.create_programme(session, user, data=data)
    except (AppError, PaymentsError, ValueError) as exc:
        await session.rollback()
        errors = web_form_errors.placed(
            errors_of(exc, locale=locale, currency=currency, aliases=PROGRAMME_FIELDS), PROGRAMME_FIELDS.values()
        )
        org = await operator_org(session, user, org_id)
        return await _home(request, session, user, org=org, form=form, errors=errors)
    return redirect(f"/programme/{org.id}/programmes/{programme.id}?notice=created")


# -- one programme --------------------------------------------------------------------------------------------


async def programme_page(
    request: Request,
    session: AsyncSession,
    user: Principal,
    *,
    org_id: uuid.UUID,
    programme_id: uuid.UUID,
    failed: str | None = None,
    form: Any = None,
    errors: Errors | None = None,
) -> HTMLResponse:
    """The programme's page; after a refused form, with its messages (``failed`` names the form)."""
    locale = locale_of(request)
    gettext = i18n.translations(locale).gettext
    org, programme = await operated_programme(session, user, org_id=org_id, programme_id=programme_id)
    figures = await stats.statistics(session, user, programme_id=programme_id)
    vouchers = await service.programme_vouchers(session, user, programme_id=programme_id)
    others = await service.list_programmes(session, active_only=True)
    return render(
        request,
        "programme/programme.html",
        {
            "org": org,
            "p": programme,
            "stats": figures,
            "by_kind": breakdown(_get(figures, "by_kind"), kind="kind", locale=locale, gettext=gettext),
            "by_family": breakdown(_get(figures, "by_family"), kind="family", locale=locale, gettext=gettext),
            "applied": [v for v in vouchers if v.voucher.status == "applied"],
            "granted": [v for v in vouchers if v.voucher.status == "granted"],
            "closed_vouchers": [v for v in vouchers if v.voucher.status in ("rejected", "revoked")],
            "claims": await claims.list_claims(session, user, programme_id=programme_id),
            "partners": partner_choices(others, exclude=programme.id),
            "family_names": dict(family_choices(locale)),
            "kind_names": dict(kind_choices(gettext)),
            "failed": failed,
            "form": form or {},
            "errors": errors or {},
            "notice": request.query_params.get("notice"),
            **_helpers(request),
        },
        status=422 if errors else 200,
        user=user,
    )


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


@router.get("/programme/{org_id}/programmes/{programme_id}", response_class=HTMLResponse)
async def programme_view(
    request: Request, org_id: uuid.UUID, programme_id: uuid.UUID, session: SessionDep, user: SignedIn
) -> HTMLResponse:
    return await programme_page(request, session, user, org_id=org_id, programme_id=programme_id)


async def _refused(
    request: Request,
    session: AsyncSession,
    user: Principal,
    *,
    ids: tuple[uuid.UUID, uuid.UUID],
    failed: str,
    form: Any,
    errors: Errors,
) -> HTMLResponse:
    await session.rollback()  # the failed service call may have flushed part of its work
    return await programme_page(
        request, session, user, org_id=ids[0], programme_id=ids[1], failed=failed, form=form, errors=errors
    )


async def _buyer_id(session: AsyncSession, raw: str, *, locale: str) -> uuid.UUID:
    """The grant form's buyer: a Unified Social Credit Code (or, for the platform's staff, an organisation id)."""
    gettext = i18n.translations(locale).gettext
    text = raw.strip()
    if not text:
        raise web_form_errors.FormInvalid({"buyer": gettext(BUYER)})
    try:
        return uuid.UUID(text)
    except ValueError:
        pass
    found = await ProgrammePageRepository(session).org_id_by_uscc(normalise_uscc(text))
    if found is None:
        raise web_form_errors.FormInvalid({"buyer": gettext(BUYER_UNKNOWN)})
    return found


@router.post("/programme/{org_id}/programmes/{programme_id}/vouchers", response_class=HTMLResponse)
async def grant(
    request: Request,
    org_id: uuid.UUID,
    programme_id: uuid.UUID,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
) -> Response:
    await operated_programme(session, user, org_id=org_id, programme_id=programme_id)
    form = await request.form()
    locale = locale_of(request)
    try:
        buyer = await _buyer_id(session, str(form.get("buyer") or ""), locale=locale)
        note = str(form.get("note") or "").strip() or None
        data = web_form_errors.validated(
            vs.VoucherRequest,
            {"buyer_org_id": str(buyer), "note": note},
            errors={},
            locale=locale,
            aliases=GRANT_FIELDS,
        )
        await service.request_voucher(session, user, programme_id=programme_id, data=data)
    except (AppError, ValueError) as exc:
        errors = web_form_errors.placed(errors_of(exc, locale=locale, aliases=GRANT_FIELDS), GRANT_FIELDS.values())
        return await _refused(
            request, session, user, ids=(org_id, programme_id), failed="grant", form=form, errors=errors
        )
    return redirect(f"/programme/{org_id}/programmes/{programme_id}?notice=granted#vouchers")


@router.post(
    "/programme/{org_id}/programmes/{programme_id}/vouchers/{voucher_id}/decision", response_class=HTMLResponse
)
async def decide(
    request: Request,
    org_id: uuid.UUID,
    programme_id: uuid.UUID,
    voucher_id: uuid.UUID,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
) -> Response:
    """Approve or reject an application, or revoke a granted voucher (with a reason)."""
    await operated_programme(session, user, org_id=org_id, programme_id=programme_id)
    form = await request.form()
    locale = locale_of(request)
    reason_field = f"reason-{voucher_id}"
    aliases = {"reason": reason_field, "decision": reason_field}
    payload = {"decision": str(form.get("decision") or ""), "reason": str(form.get("reason") or "").strip() or None}
    try:
        data = web_form_errors.validated(vs.VoucherDecision, payload, errors={}, locale=locale, aliases=aliases)
        await service.decide_voucher(session, user, programme_id=programme_id, voucher_id=voucher_id, data=data)
    except (AppError, ValueError) as exc:
        errors = web_form_errors.placed(errors_of(exc, locale=locale, aliases=aliases), [reason_field])
        return await _refused(
            request, session, user, ids=(org_id, programme_id), failed=f"decide-{voucher_id}", form=form, errors=errors
        )
    return redirect(f"/programme/{org_id}/programmes/{programme_id}?notice={payload['decision']}#vouchers")


@router.post("/programme/{org_id}/programmes/{programme_id}/settings", response_class=HTMLResponse)
async def update_settings(
    request: Request,
    org_id: uuid.UUID,
    programme_id: uuid.UUID,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
) -> Response:
    """Auto-grant, partner programmes and a raised budget; the "close" button sends ``status=closed``."""
    _org, programme = await operated_programme(session, user, org_id=org_id, programme_id=programme_id)
    form = await request.form()
    locale = locale_of(request)
    if form.get("close"):
        payload: dict[str, Any] = {"status": "closed"}
        found: Errors = {}
    else:
        payload, found = settings_payload(form, currency=programme.currency, locale=locale)
        if payload.get("budget") == programme.budget:  # left as it was: not a change
            payload.pop("budget")
    try:
        data = web_form_errors.validated(
            vs.ProgrammeUpdate,
            payload,
            errors=found,
            locale=locale,
            currency=programme.currency,
            aliases=SETTINGS_FIELDS,
        )
        await service.update_programme(session, user, programme_id=programme_id, data=data)
    except (AppError, ValueError) as exc:
        errors = web_form_errors.placed(
            errors_of(exc, locale=locale, currency=programme.currency, aliases=SETTINGS_FIELDS),
            SETTINGS_FIELDS.values(),
        )
        return await _refused(
            request, session, user, ids=(org_id, programme_id), failed="settings", form=form, errors=errors
        )
    notice = "closed" if form.get("close") else "saved"
    return redirect(f"/programme/{org_id}/programmes/{programme_id}?notice={notice}#settings")


@router.post("/programme/{org_id}/programmes/{programme_id}/claims", response_class=HTMLResponse)
async def build(
    request: Request,
    org_id: uuid.UUID,
    programme_id: uuid.UUID,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
) -> Response:
    """Build (or open, when it exists) the claim of a month."""
    await operated_programme(session, user, org_id=org_id, programme_id=programme_id)
    form = await request.form()
    locale = locale_of(request)
    try:
        month = month_value(str(form.get("month") or ""), locale=locale)
        claim, _created = await claims.build_claim(session, user, programme_id=programme_id, month=month)
    except (AppError, PaymentsError, ValueError) as exc:
        errors = web_form_errors.placed(errors_of(exc, locale=locale, aliases={"month": "month"}), ["month"])
        return await _refused(
            request, session, user, ids=(org_id, programme_id), failed="claim", form=form, errors=errors
        )
    return redirect(f"/programme/{org_id}/programmes/{programme_id}/claims/{claim.id}")
