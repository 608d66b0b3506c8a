"""Routes of a programme's monthly claims and statistics (issue #18). See docs/vouchers.md ("Claims").

Operators of the programme (members of its verified organisation) and admins; anybody else gets 404.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response, status

from marketplace.auth.deps import CurrentPrincipal
from marketplace.core.csv_export import csv_response
from marketplace.core.db import SessionDep
from marketplace.core.errors import error_responses
from marketplace.vouchers import claim_pdf, claims, stats
from marketplace.vouchers.claim_repository import ClaimRepository
from marketplace.vouchers.claim_schemas import (
    ClaimCreate,
    ClaimLineOut,
    ClaimOut,
    ClaimPayment,
    ClaimSummary,
    LineDecision,
    StatisticsOut,
    month_text,
)
from marketplace.vouchers.models import LineStatus, VoucherClaim

router = APIRouter(tags=["vouchers"])
_CLAIM = "/programmes/{programme_id}/claims/{claim_id}"
Responses = dict[int | str, dict[str, Any]]
_EXISTING: Responses = {200: {"model": ClaimOut, "description": "The claim of that month existed already"}}
_CSV: Responses = {200: {"content": {"text/csv": {}}, "description": "The claim as CSV"}}
_PDF: Responses = {200: {"content": {"application/pdf": {}}, "description": "The claim as PDF"}}


def claim_summary(claim: VoucherClaim, lines_count: int | None = None) -> ClaimSummary:
    return ClaimSummary(
        id=claim.id,
        number=claim.number,
        programme_id=claim.programme_id,
        month=month_text(claim.month),
        currency=claim.currency,
        total=claim.total,
        approved=claim.approved,
        status=claim.status,  # type: ignore[arg-type]
        payment_reference=claim.payment_reference,
        paid_at=claim.paid_at,
        created_at=claim.created_at,
        lines_count=lines_count,
    )


def claim_out(view: claims.ClaimView) -> ClaimOut:
    summary = claim_summary(view.claim, len(view.lines))
    return ClaimOut(
        **summary.model_dump(),
        programme_name=view.programme.name,
        payment_mode=view.programme.payment_mode,
        pending=sum(1 for line in view.lines if line.status == LineStatus.pending),
        rejected=sum(line.amount for line in view.lines if line.status == LineStatus.rejected),
        lines=[
            ClaimLineOut(
                id=line.id,
                booking_id=line.booking_id,
                redemption_id=line.redemption_id,
                amount=line.amount,
                status=line.status,
                reason=line.reason,
                decided_at=line.decided_at,
                evidence=line.evidence,
            )
            for line in view.lines
        ],
    )


@router.post(
    "/programmes/{programme_id}/claims",
    status_code=status.HTTP_201_CREATED,
    response_model=ClaimOut,
    responses=_EXISTING | error_responses(401, 403, 404, 409, 422),
    summary="Build the programme's claim of a month (201), or get the one already built (200)",
    description="Lines: the programme's settled voucher shares, settled before the end of the month (China "
    "Standard Time) and on no claim yet. The month must have ended (422 naming `month`). Nothing to claim: "
    "409 `nothing_to_claim`. The scheduled task builds last month's claims by itself.",
)
async def build_claim(
    programme_id: uuid.UUID, body: ClaimCreate, response: Response, session: SessionDep, principal: CurrentPrincipal
) -> ClaimOut:
    claim, created = await claims.build_claim(session, principal, programme_id=programme_id, month=body.month)
    if not created:
        response.status_code = status.HTTP_200_OK
    view = await claims.claim_view(session, principal, programme_id=programme_id, claim_id=claim.id)
    return claim_out(view)


@router.get(
    "/programmes/{programme_id}/claims",
    response_model=list[ClaimSummary],
    responses=error_responses(401, 404, 422),
    summary="The programme's claims, newest month first",
)
async def list_claims(programme_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> list[ClaimSummary]:
    return [claim_summary(c) for c in await claims.list_claims(session, principal, programme_id=programme_id)]


# The .csv and .pdf routes come before the plain one: "{claim_id}" would otherwise match "<id>.csv".
@router.get(
    _CLAIM + ".csv",
    response_class=Response,
    responses=_CSV | error_responses(401, 404, 422),
    summary="The claim as CSV (UTF-8 with BOM, amounts in major units beside the currency)",
)
async def claim_csv(
    programme_id: uuid.UUID, claim_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    view = await claims.claim_view(session, principal, programme_id=programme_id, claim_id=claim_id)
    return csv_response(claim_pdf.csv_rows(view), filename=f"{view.claim.number}.csv")


@router.get(
    _CLAIM + ".pdf",
    response_class=Response,
    responses=_PDF | error_responses(401, 404, 422),
    summary="The claim as a bilingual PDF (中文 / English) with each line's evidence",
)
async def claim_document(
    programme_id: uuid.UUID, claim_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    view = await claims.claim_view(session, principal, programme_id=programme_id, claim_id=claim_id)
    operator = await ClaimRepository(session).org(view.programme.org_id)
    body = await claim_pdf.claim_pdf(view, operator=operator)
    return Response(
        body,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{view.claim.number}.pdf"',
            "Cache-Control": "no-store",
        },
    )


@router.get(
    _CLAIM,
    response_model=ClaimOut,
    responses=error_responses(401, 404, 422),
    summary="One claim with its lines and their evidence",
)
async def get_claim(
    programme_id: uuid.UUID, claim_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> ClaimOut:
    return claim_out(await claims.claim_view(session, principal, programme_id=programme_id, claim_id=claim_id))


@router.post(
    _CLAIM + "/lines/{line_id}/decision",
    response_model=ClaimOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Approve or reject one line of the claim (a reason is required to reject)",
    description="A rejected line frees its budget; when the programme pays in advance the buyer owes that share "
    "instead (posted to the buyer's receivable). With no line pending the claim is `decided`. 409 `line_decided` "
    "for a line already decided, `claim_paid` once the claim is paid.",
)
async def decide_line(
    programme_id: uuid.UUID,
    claim_id: uuid.UUID,
    line_id: uuid.UUID,
    body: LineDecision,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> ClaimOut:
    view = await claims.decide_line(
        session, principal, programme_id=programme_id, claim_id=claim_id, line_id=line_id, data=body
    )
    return claim_out(view)


@router.post(
    _CLAIM + "/payment",
    response_model=ClaimOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Record the programme's payment of a decided claim",
    description="`amount` must equal the claim's `approved` (422 `amount_mismatch`); only once every line is "
    "decided (409 `claim_not_decided`); once (409 `claim_paid`). In advance mode each approved line's booking "
    "is credited with the programme's money, so its supplier can be paid out.",
)
async def record_payment(
    programme_id: uuid.UUID, claim_id: uuid.UUID, body: ClaimPayment, session: SessionDep, principal: CurrentPrincipal
) -> ClaimOut:
    view = await claims.record_payment(session, principal, programme_id=programme_id, claim_id=claim_id, data=body)
    return claim_out(view)


@router.get(
    "/programmes/{programme_id}/statistics",
    response_model=StatisticsOut,
    responses=error_responses(401, 404, 422),
    summary="The programme's budget, use, payments, firms served, and breakdowns by kind, family and month",
)
async def statistics(programme_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> StatisticsOut:
    return await stats.statistics(session, principal, programme_id=programme_id)
