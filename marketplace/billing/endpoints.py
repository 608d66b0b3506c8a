"""Payments HTTP API: a booking's payment, invoices (JSON or printable HTML), admin bank-transfer
records, the trial balance, organisation statements, commission overrides, Stripe onboarding, the
Stripe webhook and the reconciliation report. Admin actions are audited."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.auth.deps import AdminPrincipal, CurrentPrincipal
from marketplace.billing import service
from marketplace.bookings import service as bookings
from marketplace.core.db import SessionDep
from marketplace.core.errors import BadRequest, Conflict, Forbidden, NotFound, error_responses
from marketplace.core.pagination import CursorParam, LimitParam, decode_cursor, encode_cursor
from marketplace.core.settings import Settings
from marketplace.core.text import Line
from payments import invoices, ledger, money, stripe_gateway, webhooks
from payments.invoice_html import render_html
from payments.invoices import InvoiceGateway
from payments.repository import PaymentsRepository
from payments.schemas import (
    BankTransferIn,
    BankTransferOut,
    CommissionIn,
    CommissionOut,
    InvoiceOut,
    OnboardingLink,
    PaymentOut,
    ReconciliationOut,
    StatementOut,
    TrialBalanceOut,
    WebhookAck,
)
from payments.stripe_gateway import StripeGateway

router = APIRouter(tags=["payments"])


def _deps(request: Request) -> bookings.Deps:
    built: bookings.Deps = request.app.state.booking_deps
    return built


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _invoice_gateway(request: Request) -> InvoiceGateway:
    gateway = _deps(request).payments
    # Bank-transfer records apply to invoices even while Stripe is the gateway for new bookings.
    return gateway if isinstance(gateway, InvoiceGateway) else InvoiceGateway()


def _stripe(request: Request) -> StripeGateway:
    gateway = _deps(request).payments
    if not isinstance(gateway, StripeGateway):
        raise Conflict("Stripe is not configured (set MARKETPLACE_STRIPE_SECRET_KEY).")
    return gateway


# -- a booking's payment -------------------------------------------------------------------------------


@router.get(
    "/bookings/{booking_id}/payment",
    response_model=PaymentOut,
    responses=error_responses(401, 403, 404, 422),
    summary="How a booking is paid: invoice or card, status, amount due (buyer, supplier, admin)",
)
async def booking_payment(booking_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> PaymentOut:
    booking, role = await bookings.get_for(session=session, principal=principal, booking_id=booking_id)
    if booking.payment_method == "stripe":
        view = await stripe_gateway.view(session, booking.id, amount=booking.amount, currency=booking.currency)
    else:
        view = await invoices.view(session, booking.id, amount=booking.amount, currency=booking.currency)
    return PaymentOut(
        method="stripe" if view.method == "stripe" else "invoice",
        status=view.status,
        amount_due=view.amount_due,
        currency=view.currency,
        invoice_id=view.invoice_id,
        payment_intent_id=view.payment_intent_id,
        # Only the buyer confirms the card hold.
        client_secret=view.client_secret if role == "buyer" else None,
    )


@router.post(
    "/bookings/{booking_id}/payment/refresh",
    response_model=PaymentOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Card bookings: re-check the PaymentIntent; a hold in place makes the booking a request",
)
async def refresh_payment(
    booking_id: uuid.UUID, request: Request, session: SessionDep, principal: CurrentPrincipal
) -> PaymentOut:
    booking, role = await bookings.get_for(session=session, principal=principal, booking_id=booking_id, for_update=True)
    if role not in ("buyer", "admin"):
        raise Forbidden("Only the buyer refreshes the payment.")
    if booking.payment_method == "stripe":
        await service.refresh_card_payment(
            session=session, booking=booking, gateway=_stripe(request), deps=_deps(request)
        )
    return await booking_payment(booking_id, session, principal)


# -- invoices ----------------------------------------------------------------------------------------


async def _invoice_for(session: SessionDep, principal: CurrentPrincipal, invoice_id: uuid.UUID) -> Any:
    invoice = await PaymentsRepository(session).invoice(invoice_id)
    if invoice is None or not (
        principal.is_platform_admin
        or principal.can_act_for(invoice.buyer_org_id)
        or principal.can_act_for(invoice.supplier_org_id)
    ):
        raise NotFound("Invoice not found.")
    if not principal.is_platform_admin and not (
        principal.has_scope("payments:read") or principal.has_scope("bookings:read")
    ):
        raise Forbidden("This API key lacks the 'payments:read' scope.")
    return invoice


@router.get(
    "/invoices/{invoice_id}",
    response_model=InvoiceOut,
    responses={
        **error_responses(401, 403, 404, 422),
        200: {"content": {"application/json": {}, "text/html": {}}, "description": "The invoice"},
    },
    summary="An invoice as JSON, or printable HTML with `Accept: text/html`",
)
async def get_invoice(
    invoice_id: uuid.UUID, request: Request, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    invoice = await _invoice_for(session, principal, invoice_id)
    doc = await invoices.invoice_document(session, invoice)
    accept = request.headers.get("accept", "")
    if "text/html" in accept and "application/json" not in accept.split(",")[0]:
        return HTMLResponse(render_html(doc), media_type="text/html; charset=utf-8")
    return JSONResponse(InvoiceOut.model_validate(doc).model_dump(mode="json"))


_ADMIN_ERRORS = error_responses(401, 403, 404, 409, 422)


def _bank_transfer_endpoint(
    direction: service.Direction,
) -> Callable[..., Awaitable[BankTransferOut]]:
    """The one handler the three bank-transfer records share, bound to its direction."""

    async def endpoint(
        invoice_id: uuid.UUID, *, data: BankTransferIn, request: Request, session: SessionDep, admin: AdminPrincipal
    ) -> BankTransferOut:
        transfer = await service.record_bank_transfer(
            session=session,
            admin=admin,
            gateway=_invoice_gateway(request),
            invoice_id=invoice_id,
            direction=direction,
            amount=data.amount,
            reference=data.reference,
        )
        return BankTransferOut.model_validate(transfer)

    return endpoint


# (path segment, handler name: the operation id derives from it, direction, summary)
_BANK_TRANSFER_ROUTES: tuple[tuple[str, str, service.Direction, str], ...] = (
    ("payments", "record_payment", "in", "Record a bank transfer received from the buyer (audited)"),
    ("payouts", "record_payout", "payout", "Record a payout sent to the supplier (audited)"),
    ("refunds", "record_refund", "refund", "Record a refund sent back to the buyer for a credit note (audited)"),
)
for _segment, _name, _direction, _summary in _BANK_TRANSFER_ROUTES:
    router.add_api_route(
        f"/admin/invoices/{{invoice_id}}/{_segment}",
        _bank_transfer_endpoint(_direction),
        methods=["POST"],
        name=_name,
        status_code=status.HTTP_201_CREATED,
        response_model=BankTransferOut,
        responses=_ADMIN_ERRORS,
        tags=["admin"],
        summary=_summary,
    )


# -- ledger ------------------------------------------------------------------------------------------


@router.get(
    "/admin/ledger/trial-balance",
    response_model=TrialBalanceOut,
    responses=error_responses(401, 403),
    tags=["admin"],
    summary="Debits and credits per currency and account; balanced is always true",
)
async def trial_balance(session: SessionDep, admin: AdminPrincipal) -> TrialBalanceOut:
    return TrialBalanceOut.model_validate(await ledger.trial_balance(session))


StatementAccount = Annotated[
    Literal["buyer_receivable", "supplier_payable", "refunds_payable"] | None,
    Query(description="Only this account's lines (the balances always cover every account)"),
]


def _statement_reader(org_id: uuid.UUID, principal: CurrentPrincipal) -> None:
    """Members of the organisation (API keys with ``payments:read``) and platform admins; anyone else 404."""
    if not (principal.can_act_for(org_id) or principal.is_platform_admin):
        raise NotFound("Organisation not found.")
    if not principal.is_platform_admin and not principal.has_scope("payments:read"):
        raise Forbidden("This API key lacks the 'payments:read' scope.")


@router.get(
    "/orgs/{org_id}/statement",
    response_model=StatementOut,
    responses=error_responses(400, 401, 403, 404, 422),
    tags=["organisations"],
    summary="The organisation's own ledger lines (receivable, payable, refunds owed), newest first and paged, "
    "and its balances over all lines",
)
async def statement(
    org_id: uuid.UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
    account: StatementAccount = None,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> StatementOut:
    _statement_reader(org_id, principal)
    after = None
    if (values := decode_cursor(cursor)) is not None:
        if len(values) != 1 or not isinstance(values[0], int) or isinstance(values[0], bool):
            raise BadRequest("Malformed cursor.")
        after = values[0]
    lines = await ledger.statement_lines(session, org_id=org_id, limit=limit + 1, after_id=after, account=account)
    next_cursor = encode_cursor([lines[limit - 1]["line_id"]]) if len(lines) > limit else None
    return StatementOut.model_validate(
        {
            "org_id": org_id,
            "balances": await ledger.statement_balances(session, org_id=org_id),
            "items": lines[:limit],
            "next_cursor": next_cursor,
        }
    )


STATEMENT_CSV_HEADER = (
    "Date (UTC)",
    "Entry",
    "Account",
    "Currency",
    "Debit",
    "Credit",
    "Balance",
    "Booking",
    "Invoice",
    "Journal",
    "Memo",
)
_CSV_BATCH = 2000


def _csv_text(value: str) -> str:
    """A text cell a spreadsheet shows as text, never runs as a formula (=, +, -, @ at the start)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _csv_line(values: Sequence[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue()


async def statement_csv_rows(
    maker: async_sessionmaker[AsyncSession], org_id: uuid.UUID, account: str | None
) -> AsyncIterator[str]:
    """The whole statement, oldest line first, as CSV text chunks: a UTF-8 byte-order mark (Excel), the
    header, then per line the debit or credit in major units of its currency and the account's running
    balance. Each batch of lines is read in its own short transaction, so a slow download holds no
    database connection; lines are immutable and keyed by their increasing id, so no line is skipped or
    repeated."""
    yield "\ufeff" + _csv_line(STATEMENT_CSV_HEADER)
    running: dict[tuple[str, str], int] = {}
    after: int | None = None
    while True:
        async with maker() as session:
            lines = await ledger.statement_lines(
                session, org_id=org_id, limit=_CSV_BATCH, after_id=after, newest_first=False, account=account
            )
        if not lines:
            return
        chunk = []
        for line in lines:
            key = (line["account"], line["currency"])
            running[key] = running.get(key, 0) + line["amount"]
            amount, currency = int(line["amount"]), str(line["currency"])
            chunk.append(
                _csv_line(
                    [
                        line["created_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                        line["kind"],
                        line["account"],
                        currency,
                        money.input_value(amount, currency) if amount > 0 else "",
                        money.input_value(-amount, currency) if amount < 0 else "",
                        money.input_value(running[key], currency),
                        line["booking_id"] or "",
                        line["invoice_id"] or "",
                        line["journal_id"],
                        _csv_text(line["memo"] or ""),
                    ]
                )
            )
        yield "".join(chunk)
        after = lines[-1]["line_id"]


@router.get(
    "/orgs/{org_id}/statement.csv",
    responses={
        **error_responses(401, 403, 404, 422),
        200: {"content": {"text/csv": {}}, "description": "Every line of the statement as CSV (UTF-8 with BOM)"},
    },
    response_class=StreamingResponse,
    tags=["organisations"],
    summary="The organisation's whole statement as CSV for spreadsheets: oldest first, amounts in major units "
    "of each line's currency, running balance per account",
)
async def statement_csv(
    org_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    account: StatementAccount = None,
) -> StreamingResponse:
    _statement_reader(org_id, principal)
    return StreamingResponse(
        statement_csv_rows(request.app.state.sessionmaker, org_id, account),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="statement-{org_id}.csv"'},
    )


# -- commission ----------------------------------------------------------------------------------------


@router.put(
    "/admin/orgs/{org_id}/commission",
    response_model=CommissionOut,
    responses=error_responses(401, 403, 404, 422),
    tags=["admin"],
    summary="Set (or remove, with null) an organisation's commission rate for new bookings (audited)",
)
async def set_commission(
    org_id: uuid.UUID, data: CommissionIn, request: Request, session: SessionDep, admin: AdminPrincipal
) -> CommissionOut:
    effective = await service.set_commission(
        session=session,
        admin=admin,
        org_id=org_id,
        rate_bp=data.rate_bp,
        reason=data.reason,
        default_rate_bp=_settings(request).commission_rate_bp,
    )
    return CommissionOut(org_id=org_id, rate_bp=data.rate_bp, effective_rate_bp=effective)


# -- Stripe ------------------------------------------------------------------------------------------


@router.post(
    "/orgs/{org_id}/payments/stripe-account",
    response_model=OnboardingLink,
    responses=error_responses(401, 403, 404, 409, 422),
    tags=["organisations"],
    summary="Start (or continue) Stripe Express onboarding: answers the onboarding link (owners)",
)
async def stripe_onboarding(
    org_id: uuid.UUID, request: Request, session: SessionDep, principal: CurrentPrincipal
) -> OnboardingLink:
    if not (principal.can_act_for(org_id) or principal.is_platform_admin):
        raise NotFound("Organisation not found.")
    if not (principal.is_owner(org_id) or principal.is_platform_admin):
        raise Forbidden("Only an owner of the organisation sets up payouts.")
    principal.require_verified_email()  # payouts are a money matter
    gateway = _stripe(request)
    return OnboardingLink(url=await gateway.onboarding_link(session, org_id))


@router.get("/orgs/{org_id}/payments/stripe-account/{step}", include_in_schema=False)
async def stripe_onboarding_landing(org_id: uuid.UUID, step: Annotated[Line, Path(max_length=20)]) -> HTMLResponse:
    text = (
        "Stripe onboarding submitted; card bookings open once Stripe enables charges and payouts."
        if step == "return"
        else "The onboarding link expired; request a new one from the marketplace."
    )
    return HTMLResponse(f'<!DOCTYPE html><meta charset="utf-8"><p>{text}</p>')


@router.post(
    "/payments/stripe/webhook",
    response_model=WebhookAck,
    responses=error_responses(400, 404),
    tags=["payments"],
    summary="Stripe events: verified on the raw body, stored once, processed by a worker",
)
async def stripe_webhook(request: Request, session: SessionDep) -> WebhookAck:
    settings = _settings(request)
    if not settings.stripe_webhook_secret:
        raise NotFound("Stripe webhooks are not configured.")
    payload = await request.body()
    event = webhooks.verify(
        payload,
        request.headers.get("stripe-signature"),
        secret=settings.stripe_webhook_secret,
        tolerance=settings.stripe_webhook_tolerance_seconds,
    )
    new = await service.receive_stripe_event(session=session, event=event)
    return WebhookAck(received=True, duplicate=not new)


@router.get(
    "/admin/payments/reconciliation",
    response_model=ReconciliationOut,
    responses=error_responses(401, 403, 409),
    tags=["admin"],
    summary="Ledger versus Stripe balance transactions, per currency and category",
)
async def reconciliation(request: Request, session: SessionDep, admin: AdminPrincipal) -> ReconciliationOut:
    return ReconciliationOut.model_validate(await _stripe(request).reconcile(session))
