"""Platform-admin pages: organisation verification, moderation queue, flags, disputes, audit log."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import col

from listings import service as listings
from listings.errors import ListingsError
from marketplace.bookings import service as bookings
from marketplace.bookings.models import Booking
from marketplace.core import audit
from marketplace.core.audit import AuditLog
from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError
from marketplace.core.principal import Principal
from marketplace.core.text import Line, Text
from marketplace.orgs import service as orgs
from marketplace.orgs.models import Organisation
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


@router.get("", response_class=HTMLResponse)
async def overview(
    request: Request, session: SessionDep, user: SignedIn, notice: Text | None = None, error: Text | None = None
) -> HTMLResponse:
    _admin(user)
    pending_orgs = await orgs.list_orgs_for_admin(session, "pending", after=None, limit=100)
    assets, flags = await listings.moderation_queue(session)
    disputes = (
        (
            await session.execute(
                sa.select(Booking).where(col(Booking.status) == "disputed").order_by(col(Booking.updated_at)).limit(100)
            )
        )
        .scalars()
        .all()
    )
    entries = (await session.execute(sa.select(AuditLog).order_by(col(AuditLog.id).desc()).limit(30))).scalars().all()
    org_names = {o.id: o.name for o in (await session.execute(sa.select(Organisation))).scalars()}
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
        await orgs.decide_verification(session, user, org_id, data)
    except (AppError, ValueError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        return redirect(f"/admin?error={quote(field_errors(exc).popitem()[1])}")
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
    if action not in ("approve", "reject", "suspend", "reinstate"):
        raise WebError(404, "not_found")
    try:
        before, asset = await listings.admin_transition(session, user.user_id, asset_id, action, reason or None)
        await audit.record(
            session,
            actor_user_id=user.user_id,
            action=f"asset.{action}",
            target_type="asset",
            target_id=asset.id,
            before={"status": before},
            after={"status": asset.status},
            reason=reason or None,
        )
    except (ListingsError, AppError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        return redirect(f"/admin?error={quote(field_errors(exc).popitem()[1])}")
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
        item = await listings.resolve_flag(session, flag_id, resolution or "resolved")
        await audit.record(
            session,
            actor_user_id=user.user_id,
            action="flag.resolved",
            target_type="listing_flag",
            target_id=item.id,
            after={"status": "resolved"},
            reason=resolution or None,
        )
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
        disputed = await session.get(Booking, booking_id)
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
        await session.rollback()  # the failed service call may have flushed part of its work
        return redirect(f"/admin?error={quote(field_errors(exc).popitem()[1])}")
    return redirect("/admin?notice=saved")
