"""The buyer's innovation vouchers (issue #18): the organisation's vouchers with their programme's terms, what is
used and left this year, and the active programmes it may apply to (an application form each; a refusal, such
as a buyer registered outside the programme's region, is shown beside the programme it concerns). Members of the
buyer organisation (or a platform admin) only; anyone else gets a 404."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError
from marketplace.core.principal import Principal
from marketplace.orgs.models import Organisation
from marketplace.vouchers import service as vouchers
from marketplace.vouchers.schemas import VoucherRequest
from marketplace.web import i18n, voucher_labels, voucher_views
from marketplace.web.core import CsrfChecked, SignedIn, WebError, form_errors, locale_of, member_org, redirect, render
from marketplace.web.labels import N_

router = APIRouter(include_in_schema=False)

# Confirmations after an application (?notice=...; only these codes are shown).
NOTICES = {
    "applied": N_("Your application has been sent. The programme will decide on it."),
    "granted": N_("Your voucher has been granted. You can use it on the booking form."),
}


async def _page(
    request: Request,
    session: SessionDep,
    user: Principal,
    *,
    org: Organisation,
    errors: dict[str, str] | None = None,
    form: Any = None,
) -> HTMLResponse:
    """The vouchers page; ``errors`` by programme id (the application that was refused), answered with 422."""
    locale = locale_of(request)
    gettext = i18n.translations(locale).gettext
    held = await vouchers.org_vouchers(session, user, org_id=org.id)
    taken = {v.voucher.programme_id for v in held}
    programmes = [p for p in await vouchers.list_programmes(session, active_only=True) if p.id not in taken]
    notice = request.query_params.get("notice", "")
    return render(
        request,
        "vouchers/buyer.html",
        {
            "org": org,
            "held": held,
            "programmes": programmes,
            "errors": errors or {},
            "form": form or {},
            "notice": gettext(NOTICES[notice]) if notice in NOTICES else None,
            "percent": voucher_views.percent,
            "mode_words": lambda mode: voucher_views.mode_words(mode, gettext),
            "service_words": lambda p: voucher_views.service_words(
                p, gettext=gettext, tname=lambda code: code and _family(code, locale)
            ),
            **voucher_labels.helpers(gettext),
        },
        status=422 if errors else 200,
        user=user,
    )


def _family(code: str, locale: str) -> str:
    from listings.taxonomy import get_taxonomy

    tax = get_taxonomy()
    return tax.name(code, locale) if tax.is_process(code) else code


@router.get("/buyer/{org_id}/vouchers", response_class=HTMLResponse)
async def buyer_vouchers(request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn) -> HTMLResponse:
    org = await member_org(session, user, org_id, role="buyer")
    return await _page(request, session, user, org=org)


@router.post("/buyer/{org_id}/vouchers/{programme_id}/apply", response_class=HTMLResponse)
async def apply(
    request: Request,
    org_id: uuid.UUID,
    programme_id: uuid.UUID,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
) -> Response:
    """Apply for the programme's voucher (granted at once when the programme grants eligible buyers itself)."""
    await member_org(session, user, org_id, role="buyer")
    form = await request.form()
    note = str(form.get("note") or "").strip() or None
    locale = locale_of(request)
    try:
        data = VoucherRequest(buyer_org_id=org_id, note=note)
        voucher = await vouchers.request_voucher(session, user, programme_id=programme_id, data=data)
    except (AppError, ValidationError, ValueError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        if isinstance(exc, AppError) and exc.status_code == 404:
            raise WebError(404, "not_found") from None
        if voucher_views.is_voucher_error(exc):
            message = voucher_views.voucher_error(exc, locale=locale)
        else:
            message = " ".join(form_errors(exc, locale=locale).values())
        org = await member_org(session, user, org_id, role="buyer")  # reloaded: the rollback expired it
        return await _page(
            request, session, user, org=org, errors={str(programme_id): message}, form={str(programme_id): note or ""}
        )
    return redirect(f"/buyer/{org_id}/vouchers?notice={'granted' if voucher.status == 'granted' else 'applied'}")
