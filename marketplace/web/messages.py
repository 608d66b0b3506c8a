"""Message threads in the web app: one per request and factory, one per booking. Messages oldest to newest
with their author organisation, time and files; a form with the text and an optional file (stored in the
document store and attached to the message). Only the two organisations see a thread; anyone else gets 404.
Also the download of a file the signed-in person may read."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError
from marketplace.core.principal import Principal
from marketplace.core.text import Line
from marketplace.web import i18n
from marketplace.web.core import CsrfChecked, SignedIn, WebError, form_errors, locale_of, member_org, redirect, render
from marketplace.web.negotiation_views import REFUSALS, page_helpers, refusal, refusal_text
from marketplace.web.negotiation_wiring import ThreadRef, download, post_message, thread_messages

router = APIRouter(include_in_schema=False)
FAILURES = (AppError, ValidationError, ValueError)


async def _show(
    request: Request,
    session: SessionDep,
    user: Principal,
    *,
    ref: ThreadRef,
    form: Any = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    await member_org(session, user, ref.org_id, role=ref.role)
    try:
        messages = await thread_messages(session, user, ref)
    except AppError:
        raise WebError(404, "not_found") from None
    gettext = i18n.translations(locale_of(request)).gettext
    ctx = {
        "heading": gettext(ref.heading),
        "back_url": ref.back_url,
        "back_label": gettext(ref.back_label),
        "messages": messages,
        "post_url": request.url.path,
        "can_post": True,
        "form": form or {},
        "errors": errors or {},
        "error": refusal_text(request, request.query_params.get("error")),
    }
    status = 200 if errors is None else 422
    return render(request, "messages/thread.html", {**ctx, **page_helpers(request)}, status=status, user=user)


async def _post(request: Request, session: SessionDep, user: Principal, *, ref: ThreadRef) -> Response:
    await member_org(session, user, ref.org_id, role=ref.role)
    form = await request.form()
    try:
        await post_message(request, session, user, ref=ref, body=str(form.get("body") or ""), upload=form.get("file"))
    except AppError as exc:
        await session.rollback()
        if exc.status_code == 404:
            raise WebError(404, "not_found") from None
        return await _show(request, session, user, ref=ref, form=form, errors=_body_errors(request, exc))
    except (ValidationError, ValueError) as exc:
        await session.rollback()
        return await _show(request, session, user, ref=ref, form=form, errors=_body_errors(request, exc))
    return redirect(f"{request.url.path}#message-form")


def _body_errors(request: Request, exc: Exception) -> dict[str, str]:
    """The message's errors: about the file next to the file field, anything else next to the text."""
    code = getattr(exc, "code", None)
    if code in ("payload_too_large", "unsupported_media_type"):
        return {"file": refusal(request, exc)}
    errors = {"_": refusal(request, exc)} if code in REFUSALS else form_errors(exc, locale=locale_of(request))
    return {("body" if k in ("body", "_") else k): v for k, v in errors.items()}


def _buyer_request_ref(org_id: uuid.UUID, request_id: uuid.UUID, supplier_org_id: uuid.UUID) -> ThreadRef:
    return ThreadRef.buyer_request(org_id, request_id, supplier_org_id)


def _factory_request_ref(org_id: uuid.UUID, request_id: uuid.UUID) -> ThreadRef:
    return ThreadRef.factory_request(org_id, request_id)


def _booking_ref(side: Line, org_id: uuid.UUID, booking_id: uuid.UUID) -> ThreadRef:
    return ThreadRef.booking(side, org_id, booking_id)


# The thread a URL names (its path parameters), one dependency per kind of thread.
BuyerRequestRef = Annotated[ThreadRef, Depends(_buyer_request_ref)]
FactoryRequestRef = Annotated[ThreadRef, Depends(_factory_request_ref)]
BookingRef = Annotated[ThreadRef, Depends(_booking_ref)]


@router.get("/buyer/{org_id}/threads/request/{request_id}/{supplier_org_id}", response_class=HTMLResponse)
async def buyer_request_thread(
    request: Request, ref: BuyerRequestRef, session: SessionDep, user: SignedIn
) -> HTMLResponse:
    return await _show(request, session, user, ref=ref)


@router.post("/buyer/{org_id}/threads/request/{request_id}/{supplier_org_id}")
async def buyer_request_post(
    request: Request, ref: BuyerRequestRef, session: SessionDep, user: SignedIn, _c: CsrfChecked
) -> Response:
    return await _post(request, session, user, ref=ref)


@router.get("/factory/{org_id}/threads/request/{request_id}", response_class=HTMLResponse)
async def factory_request_thread(
    request: Request, ref: FactoryRequestRef, session: SessionDep, user: SignedIn
) -> HTMLResponse:
    return await _show(request, session, user, ref=ref)


@router.post("/factory/{org_id}/threads/request/{request_id}")
async def factory_request_post(
    request: Request, ref: FactoryRequestRef, session: SessionDep, user: SignedIn, _c: CsrfChecked
) -> Response:
    return await _post(request, session, user, ref=ref)


@router.get("/{side}/{org_id}/threads/booking/{booking_id}", response_class=HTMLResponse)
async def booking_thread(request: Request, ref: BookingRef, session: SessionDep, user: SignedIn) -> HTMLResponse:
    return await _show(request, session, user, ref=ref)


@router.post("/{side}/{org_id}/threads/booking/{booking_id}")
async def booking_post(
    request: Request, ref: BookingRef, session: SessionDep, user: SignedIn, _c: CsrfChecked
) -> Response:
    return await _post(request, session, user, ref=ref)


@router.get("/files/{document_id}")
async def file(request: Request, document_id: uuid.UUID, session: SessionDep, user: SignedIn) -> Response:
    """A file the signed-in person may read (the document store checks and logs it); 404 for anyone else."""
    try:
        return await download(request, session, user, document_id=document_id)
    except AppError:
        raise WebError(404, "not_found") from None
