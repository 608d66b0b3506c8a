"""A programme's monthly claim (issue #18): its lines with their evidence, approve or reject each (a reason to
reject), the CSV and PDF of the claim (the same documents as the API's), and the programme's payment. Every
action calls ``marketplace.vouchers.claims``; a refusal comes back beside its field in the page's language."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.csv_export import csv_response
from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError
from marketplace.core.principal import Principal
from marketplace.vouchers import claim_pdf, claims
from marketplace.vouchers.claim_repository import ClaimRepository
from marketplace.vouchers.claim_schemas import ClaimPayment, LineDecision
from marketplace.web import form_errors as web_form_errors
from marketplace.web import i18n, voucher_labels
from marketplace.web.core import CsrfChecked, SignedIn, WebError, locale_of, member_org, redirect, render, viewer_tz
from marketplace.web.programme_forms import PAYMENT_FIELDS, errors_of, payment_payload
from marketplace.web.programme_views import evidence_rows, lab_report_link
from payments.errors import PaymentsError

router = APIRouter(include_in_schema=False)

Errors = dict[str, str]


async def _view(
    session: AsyncSession, user: Principal, *, ids: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> claims.ClaimView:
    """The claim, if the page's organisation runs its programme and the caller acts for it; else 404."""
    org_id, programme_id, claim_id = ids
    await member_org(session, user, org_id, role="programme")
    try:
        view = await claims.claim_view(session, user, programme_id=programme_id, claim_id=claim_id)
    except AppError:
        raise WebError(404, "not_found") from None
    if view.programme.org_id != org_id:
        raise WebError(404, "not_found")
    return view


async def claim_page(
    request: Request,
    session: AsyncSession,
    user: Principal,
    *,
    ids: tuple[uuid.UUID, uuid.UUID, uuid.UUID],
    form: Any = None,
    errors: Errors | None = None,
) -> HTMLResponse:
    view = await _view(session, user, ids=ids)
    locale = locale_of(request)
    translations = i18n.translations(locale)
    tz = viewer_tz(request)
    currency = view.claim.currency
    lines = [
        {
            "line": line,
            "evidence": evidence_rows(
                line.evidence,
                currency=currency,
                gettext=translations.gettext,
                money=lambda amount, cur: i18n.money(amount, cur, locale),
                when=lambda value: i18n.when(value, locale, tz),
            ),
            "report_link": lab_report_link(line.evidence),
        }
        for line in view.lines
    ]
    return render(
        request,
        "programme/claim.html",
        {
            "org_id": ids[0],
            "p": view.programme,
            "c": view.claim,
            "lines": lines,
            "pending": sum(1 for line in view.lines if line.status == "pending"),
            "form": form or {},
            "errors": errors or {},
            "notice": request.query_params.get("notice"),
            **voucher_labels.helpers(translations.gettext),
        },
        status=422 if errors else 200,
        user=user,
    )


def _base(org_id: uuid.UUID, programme_id: uuid.UUID, claim_id: uuid.UUID) -> str:
    return f"/programme/{org_id}/programmes/{programme_id}/claims/{claim_id}"


# The documents first: ``{claim_id}`` alone would also match ``<id>.csv`` (and refuse it as no id).


@router.get("/programme/{org_id}/programmes/{programme_id}/claims/{claim_id}.csv")
async def claim_csv_download(
    org_id: uuid.UUID, programme_id: uuid.UUID, claim_id: uuid.UUID, session: SessionDep, user: SignedIn
) -> Response:
    """The claim's lines as CSV (the API's document: UTF-8 with BOM, amounts in major units)."""
    view = await _view(session, user, ids=(org_id, programme_id, claim_id))
    return csv_response(claim_pdf.csv_rows(view), filename=f"{view.claim.number}.csv")


@router.get("/programme/{org_id}/programmes/{programme_id}/claims/{claim_id}.pdf")
async def claim_pdf_download(
    org_id: uuid.UUID, programme_id: uuid.UUID, claim_id: uuid.UUID, session: SessionDep, user: SignedIn
) -> Response:
    """The claim as a bilingual PDF (the API's document)."""
    view = await _view(session, user, ids=(org_id, programme_id, claim_id))
    operator = await ClaimRepository(session).org(view.programme.org_id)
    body = await claim_pdf.claim_pdf(view, operator=operator)
    headers = {"Content-Disposition": f'attachment; filename="{view.claim.number}.pdf"', "Cache-Control": "no-store"}
    return Response(body, media_type="application/pdf", headers=headers)


@router.get("/programme/{org_id}/programmes/{programme_id}/claims/{claim_id}", response_class=HTMLResponse)
async def claim(
    request: Request,
    org_id: uuid.UUID,
    programme_id: uuid.UUID,
    claim_id: uuid.UUID,
    session: SessionDep,
    user: SignedIn,
) -> HTMLResponse:
    return await claim_page(request, session, user, ids=(org_id, programme_id, claim_id))


@router.post(
    "/programme/{org_id}/programmes/{programme_id}/claims/{claim_id}/lines/{line_id}/decision",
    response_class=HTMLResponse,
)
async def decide_line(
    request: Request,
    org_id: uuid.UUID,
    programme_id: uuid.UUID,
    claim_id: uuid.UUID,
    line_id: uuid.UUID,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
) -> Response:
    ids = (org_id, programme_id, claim_id)
    await _view(session, user, ids=ids)
    form = await request.form()
    locale = locale_of(request)
    reason_field = f"reason-{line_id}"
    aliases = {"reason": reason_field, "decision": reason_field}
    payload = {"decision": str(form.get("decision") or ""), "reason": str(form.get("reason") or "").strip() or None}
    try:
        data = web_form_errors.validated(LineDecision, payload, errors={}, locale=locale, aliases=aliases)
        await claims.decide_line(
            session, user, programme_id=programme_id, claim_id=claim_id, line_id=line_id, data=data
        )
    except (AppError, PaymentsError, ValueError) as exc:
        await session.rollback()
        errors = web_form_errors.placed(errors_of(exc, locale=locale, aliases=aliases), [reason_field])
        return await claim_page(request, session, user, ids=ids, form=form, errors=errors)
    return redirect(f"{_base(*ids)}?notice=decided#line-{line_id}")


@router.post("/programme/{org_id}/programmes/{programme_id}/claims/{claim_id}/payment", response_class=HTMLResponse)
async def record_payment(
    request: Request,
    org_id: uuid.UUID,
    programme_id: uuid.UUID,
    claim_id: uuid.UUID,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
) -> Response:
    ids = (org_id, programme_id, claim_id)
    view = await _view(session, user, ids=ids)
    form = await request.form()
    locale, currency = locale_of(request), view.claim.currency
    payload, found = payment_payload(form, currency=currency, locale=locale)
    try:
        data = web_form_errors.validated(
            ClaimPayment, payload, errors=found, locale=locale, currency=currency, aliases=PAYMENT_FIELDS
        )
        await claims.record_payment(session, user, programme_id=programme_id, claim_id=claim_id, data=data)
    except (AppError, PaymentsError, ValueError) as exc:
        await session.rollback()
        errors = web_form_errors.placed(
            errors_of(exc, locale=locale, currency=currency, aliases=PAYMENT_FIELDS), PAYMENT_FIELDS.values()
        )
        return await claim_page(request, session, user, ids=ids, form=form, errors=errors)
    return redirect(f"{_base(*ids)}?notice=paid")
