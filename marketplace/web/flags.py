"""Reporting a listing ("flag"): a signed-in person of another organisation picks a reason, may add words, and
the report joins the admins' flag list. The same service as ``POST /api/v1/assets/{id}/flags``; the form is
also rate-limited per person. :func:`reason_label` names a flag's reason code in the viewer's language."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from listings import service as listings
from listings.errors import AlreadyFlagged, ListingsError, OwnListing
from listings.flagging import FLAG_REASONS, FlagIn
from listings.models import Asset
from listings.repository import ListingsRepository
from marketplace.core.db import SessionDep
from marketplace.core.errors import RateLimited
from marketplace.core.principal import Principal
from marketplace.web import i18n
from marketplace.web.core import N_, CsrfChecked, SignedIn, WebError, locale_of, redirect, render

router = APIRouter(include_in_schema=False)

REASON_LABELS = {
    "misleading_description": N_("Misleading description"),
    "wrong_capacity_or_price": N_("Wrong capacity or price"),
    "not_a_real_company": N_("Not a real company"),
    "prohibited_item": N_("Prohibited item or service"),
    "other": N_("Other"),
}
_CHOOSE_REASON = N_("Choose a reason.")
_DESCRIBE = N_("Describe what is wrong with this listing.")
_TOO_LONG = N_("At most %(n)s characters.")
_OWN = N_("You cannot report a listing of your own organisation.")
_RATE = N_("Too many reports. Please wait %(seconds)s seconds and try again.")
MAX_DETAILS = 1000


def reason_label(code: str, locale: str) -> str:
    """A flag's reason code (the ``reason_code`` column) in the viewer's language."""
    return i18n.translations(locale).gettext(REASON_LABELS.get(code, REASON_LABELS["other"]))


async def _reportable(session: SessionDep, user: Principal, asset_id: uuid.UUID) -> Asset:
    """A listing this person may see and report: never one of their own organisation (404 like unknown)."""
    try:
        asset = await listings.visible_asset(session, user, asset_id)
    except ListingsError:
        raise WebError(404, "not_found") from None
    if asset.org_id in user.org_ids:
        raise WebError(404, "not_found")
    return asset


def _page(request: Request, user: Principal, *, ctx: dict[str, Any], status: int = 200) -> HTMLResponse:
    locale = locale_of(request)
    gettext = i18n.translations(locale).gettext
    reasons = [(code, gettext(REASON_LABELS[code])) for code in FLAG_REASONS]
    base = {"reasons": reasons, "errors": {}, "form": {}, "already": False, "max_details": MAX_DETAILS}
    return render(request, "public/flag.html", {**base, **ctx}, status=status, user=user)


@router.get("/listings/{asset_id}/flag", response_class=HTMLResponse)
async def flag_page(request: Request, asset_id: uuid.UUID, session: SessionDep, user: SignedIn) -> HTMLResponse:
    asset = await _reportable(session, user, asset_id)
    already = user.user_id is not None and await ListingsRepository(session).open_flag_of(asset.id, user.user_id)
    return _page(request, user, ctx={"asset": asset, "already": bool(already)})


def _form_errors(exc: ValidationError, locale: str) -> dict[str, str]:
    gettext = i18n.translations(locale).gettext
    errors: dict[str, str] = {}
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        if loc and loc[0] == "reason_code":
            errors.setdefault("reason_code", gettext(_CHOOSE_REASON))
        elif err.get("type") == "string_too_long":
            errors.setdefault("reason", gettext(_TOO_LONG) % {"n": MAX_DETAILS})
        else:
            errors.setdefault("reason", gettext(_DESCRIBE))
    return errors


@router.post("/listings/{asset_id}/flag", response_class=HTMLResponse)
async def flag_listing(
    request: Request, asset_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    asset = await _reportable(session, user, asset_id)
    locale = locale_of(request)
    gettext = i18n.translations(locale).gettext
    raw = await request.form()
    form = {"reason_code": str(raw.get("reason_code") or ""), "reason": str(raw.get("reason") or "")}
    if not form["reason_code"]:
        errors = {"reason_code": gettext(_CHOOSE_REASON)}
        return _page(request, user, ctx={"asset": asset, "errors": errors, "form": form}, status=422)
    try:
        data = FlagIn.model_validate({"reason_code": form["reason_code"], "reason": form["reason"] or None})
        await request.app.state.auth_rate_limiter.hit("listing_flag", f"user:{user.user_id}")
        await listings.flag(session, user, asset.id, reason_code=data.code, reason=data.details)
    except ValidationError as exc:
        errors = _form_errors(exc, locale)
        return _page(request, user, ctx={"asset": asset, "errors": errors, "form": form}, status=422)
    except RateLimited as exc:
        message = gettext(_RATE) % {"seconds": exc.extra.get("retry_after", 1)}
        page = _page(request, user, ctx={"asset": asset, "errors": {"_": message}, "form": form}, status=429)
        page.headers["Retry-After"] = str(exc.extra.get("retry_after", 1))
        return page
    except AlreadyFlagged:  # refused before anything was written: nothing to roll back
        return _page(request, user, ctx={"asset": asset, "already": True}, status=409)
    except OwnListing:  # _reportable already refused it; the service is the last word
        return _page(request, user, ctx={"asset": asset, "errors": {"_": gettext(_OWN)}}, status=403)
    return redirect(f"/listings/{asset.id}?reported=1")
