"""Platform-admin pages: organisation verification, moderation queue, flags, disputes, audit log."""

from __future__ import annotations

import uuid
from typing import Annotated, cast
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from listings import service as listings
from listings.errors import ListingsError
from marketplace.admin import moderation
from marketplace.admin.moderation import MODERATION_ACTIONS, ModerationAction
from marketplace.admin.repository import AuditRepository
from marketplace.bookings import service as bookings
from marketplace.bookings.repository import BookingPageQueries, BookingRepository
from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError
from marketplace.core.principal import Principal
from marketplace.core.text import Line, Text
from marketplace.orgs import service as orgs
from marketplace.orgs.repository import OrgRepository
from marketplace.orgs.schemas import VerificationDecision
from marketplace.web import account_2fa, i18n
from marketplace.web.core import (
    N_,
    CsrfChecked,
    FieldError,
    SignedIn,
    WebError,
    field_errors,
    locale_of,
    parse_money_input,
    redirect,
    render,
)
from payments import ledger

# In production an admin without two-factor sign-in is refused every page here (see account_2fa.py).
router = APIRouter(prefix="/admin", include_in_schema=False, dependencies=[Depends(account_2fa.admin_two_factor_gate)])


def _admin(user: Principal) -> Principal:
    if not user.is_platform_admin:
        raise WebError(403, "admin")
    return user


async def _refused(session: SessionDep, exc: Exception) -> Response:
    """Back to the overview with the refusal shown."""
    await session.rollback()  # the failed service call may have flushed part of its work
    return redirect(f"/admin?error={quote(field_errors(exc).popitem()[1])}")


@router.get("", response_class=HTMLResponse)
async def overview(
    request: Request, session: SessionDep, user: SignedIn, notice: Text | None = None, error: Text | None = None
) -> HTMLResponse:
    _admin(user)
    pending_orgs = await orgs.list_orgs_for_admin(session, "pending", after=None, limit=100)
    assets, flags = await listings.moderation_queue(session)
    disputes = await BookingPageQueries(session).disputed(100)
    entries = await AuditRepository(session).entries(limit=30)
    # Only the names the page shows: the listings' owners and both sides of each dispute.
    org_names = await OrgRepository(session).names(
        [a.org_id for a in assets] + [o for b in disputes for o in (b.buyer_org_id, b.supplier_org_id)]
    )
    trial = await ledger.trial_balance(session)
    return render(
        request,
        "admin/overview.html",
        {
            "pending_orgs": pending_orgs,
            "assets": assets,
            "flags": flags,
            "disputes": disputes,
            "audit": entries,
            "org_names": org_names,
            "notice": notice,
            "error": error,
            "trial": trial,
        },
        user=user,
    )


@router.post("/orgs/{org_id}/verify")
async def verify_org(
    org_id: uuid.UUID,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
    decision: Annotated[Line, Form()],
    reason: Annotated[Text, Form()] = "",
) -> Response:
    _admin(user)
    try:
        data = VerificationDecision(decision=decision, reason=reason or "-")  # type: ignore[arg-type]
        await orgs.decide_verification(session, user, org_id=org_id, data=data)
    except (AppError, ValueError) as exc:
        return await _refused(session, exc)
    return redirect("/admin?notice=saved")


@router.post("/assets/{asset_id}/{action}")
async def moderate(
    asset_id: uuid.UUID,
    action: Line,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
    reason: Annotated[Text, Form()] = "",
) -> Response:
    _admin(user)
    if action not in MODERATION_ACTIONS:
        raise WebError(404, "not_found")
    try:
        await moderation.moderate_asset(
            session=session,
            principal=user,
            asset_id=asset_id,
            action=cast(ModerationAction, action),  # checked against MODERATION_ACTIONS above
            reason=reason or None,
        )
    except (ListingsError, AppError) as exc:
        return await _refused(session, exc)
    return redirect("/admin?notice=saved")


@router.post("/flags/{flag_id}/resolve")
async def resolve_flag(
    flag_id: uuid.UUID,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
    resolution: Annotated[Text, Form()] = "",
) -> Response:
    _admin(user)
    try:
        await moderation.resolve_flag(session=session, principal=user, flag_id=flag_id, resolution=resolution)
    except ListingsError as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        return redirect(f"/admin?error={quote(str(exc.detail))}")
    return redirect("/admin?notice=saved")


@router.post("/bookings/{booking_id}/resolve")
async def resolve_dispute(
    request: Request,
    booking_id: uuid.UUID,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
    refund_amount: Annotated[Line, Form()],
    note: Annotated[Text, Form()] = "",
) -> Response:
    _admin(user)
    try:
        disputed = await BookingRepository(session).get(booking_id)
        if disputed is None:
            raise WebError(404, "not_found")
        refund = parse_money_input(refund_amount, disputed.currency, field="refund_amount", locale=locale_of(request))
        if refund is None:
            raise FieldError("refund_amount", i18n.translations(locale_of(request)).gettext(N_("Enter the refund.")))
        await bookings.act(
            session=session,
            principal=user,
            booking_id=booking_id,
            action="resolve",
            deps=request.app.state.booking_deps,
            reason=note or "-",
            refund_amount=refund,
        )
    except (AppError, ValueError) as exc:
        return await _refused(session, exc)
    return redirect("/admin?notice=saved")
