"""A programme's monthly claims (issue #18): what the programme owes for its vouchers, line by line.

* **Build**: the claim of programme P for month M (a calendar month in China Standard Time) takes every
  redemption of P that is ``settled`` with an amount, settled before the end of M and on no claim yet (so a
  late one is caught up by the next claim). Its lines copy the evidence (parties, service, times, invoice, lab
  report); the redemptions become ``claimed``. One claim per programme and month: building again returns it.
  Numbers are gap-free per year of the month: ``CLM-2026-000001``.
* **Decide**: each line approved or rejected (with a reason). A rejected line frees its budget (redemption
  ``rejected``); in ``advance`` mode the buyer owes that share instead (``ledger.subsidy_rebilled``). With no
  line pending, the claim is ``decided``.
* **Pay**: once decided, the programme's payment of exactly ``approved``. In ``advance`` mode one journal per
  approved line (``ledger.subsidy_collected``, on that line's booking, so its supplier's payout can go ahead);
  ``after_use``: no journal (the programme reimbursed the buyers directly). The claim is ``paid``.

Services take a session and never commit. Who may: members of the programme's (verified) organisation, and
admins; anybody else gets 404.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.bookings.rules import field_error
from marketplace.core import audit
from marketplace.core.errors import Conflict, NotFound, Unprocessable
from marketplace.core.principal import Principal
from marketplace.vouchers.claim_repository import ClaimRepository
from marketplace.vouchers.claim_schemas import ClaimPayment, LineDecision, month_text
from marketplace.vouchers.models import (
    ClaimStatus,
    LineStatus,
    PaymentMode,
    RedemptionStatus,
    VoucherClaim,
    VoucherClaimLine,
    VoucherProgramme,
    VoucherRedemption,
)
from payments import ledger
from payments.repository import PaymentsRepository

CHINA = ZoneInfo("Asia/Shanghai")


class ProgrammeNotFound(NotFound):
    """Programme not found."""

    code = "programme_not_found"


class ClaimNotFound(NotFound):
    """Claim not found."""

    code = "claim_not_found"


class NothingToClaim(Conflict):
    """No settled voucher share of this programme is waiting to be claimed up to the end of that month."""

    code = "nothing_to_claim"


class ClaimNotDecided(Conflict):
    """Decide every line of the claim before recording its payment."""

    code = "claim_not_decided"


class ClaimPaid(Conflict):
    """The claim is paid: it cannot change any more."""

    code = "claim_paid"


class LineDecided(Conflict):
    """This line of the claim is already decided."""

    code = "line_decided"


class AmountMismatch(Unprocessable):
    """The payment must be exactly the claim's approved amount."""

    code = "amount_mismatch"


@dataclass(frozen=True)
class ClaimView:
    claim: VoucherClaim
    programme: VoucherProgramme
    lines: list[VoucherClaimLine]


def now() -> datetime:
    return datetime.now(UTC)


# -- months ---------------------------------------------------------------------------------------------------


def parse_month(text: str) -> date:
    """``"2026-03"`` → 2026-03-01; a 422 naming ``month`` otherwise."""
    try:
        year, month = (int(part) for part in text.split("-"))
        return date(year, month, 1)
    except ValueError:
        raise field_error("month", "must be a month as YYYY-MM, e.g. 2026-03") from None


def next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def previous_month(day: date) -> date:
    return date(day.year - (day.month == 1), (day.month - 2) % 12 + 1, 1)


def month_end(month: date) -> datetime:
    """The instant the month ends in China Standard Time (the next month's first midnight there)."""
    first = next_month(month)
    return datetime(first.year, first.month, first.day, tzinfo=CHINA)


# -- access ---------------------------------------------------------------------------------------------------


async def operated_programme(
    session: AsyncSession, principal: Principal, programme_id: uuid.UUID, *, for_update: bool = False
) -> VoucherProgramme:
    """The programme, if the caller operates it (a member of its verified organisation) or is an admin."""
    repo = ClaimRepository(session)
    programme = await repo.programme(programme_id, for_update=for_update)
    if programme is None:
        raise ProgrammeNotFound()
    if principal.is_platform_admin:
        return programme
    if not principal.can_act_for(programme.org_id) or not await repo.org_verified(programme.org_id):
        raise ProgrammeNotFound()
    return programme


async def _claim(
    session: AsyncSession, programme: VoucherProgramme, claim_id: uuid.UUID, *, for_update: bool = False
) -> VoucherClaim:
    claim = await ClaimRepository(session).claim(programme.id, claim_id, for_update=for_update)
    if claim is None:
        raise ClaimNotFound()
    return claim


# -- build ----------------------------------------------------------------------------------------------------


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date | uuid.UUID):
        return str(value)
    return value


def _party(row: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {
        "id": _iso(row[f"{prefix}_id"]),
        "name": row[f"{prefix}_legal_name"] or row[f"{prefix}_name"],
        "uscc": row[f"{prefix}_uscc"],
    }


def evidence_of(row: dict[str, Any], redemption: VoucherRedemption) -> dict[str, Any]:
    """The JSON a claim line keeps: what the programme checks before it pays."""
    report = None
    if row["report_id"] is not None:
        report = {
            "id": _iso(row["report_id"]),
            "verdict": row["report_verdict"],
            "tested_on": _iso(row["report_tested_on"]),
            "test_standard": row["report_standard"],
            "verify_hash": row["report_hash"],
        }
    return {
        "booking_id": _iso(row["booking_id"]),
        "supplier": _party(row, "supplier"),
        "buyer": _party(row, "buyer"),
        "service": {
            "title": row["service_title"],
            "kind": row["service_kind"],
            "process_codes": list(row["process_codes"] or []),
        },
        "booked_at": _iso(row["booked_at"]),
        "completed_at": _iso(row["completed_at"]),
        "settled_at": _iso(redemption.settled_at or row["settled_at"]),
        "currency": row["currency"],
        "booking_amount": int(row["amount"]),
        "kept_amount": int(row["amount"]) - int(row["refund_amount"]),
        "voucher_share_booked": redemption.booked_amount,
        "invoice_number": row["invoice_number"],
        "lab_report": report,
        "result_reference": row["result_reference"],
    }


async def _build(
    session: AsyncSession, programme_id: uuid.UUID, month: date, *, actor: Principal | None
) -> tuple[VoucherClaim | None, bool]:
    """The claim of ``programme_id`` for ``month``: (existing, False), (new, True) or (None, False) if nothing
    is to be claimed. The programme row is locked: builds of one programme never overlap."""
    repo = ClaimRepository(session)
    programme = await repo.programme(programme_id, for_update=True)
    if programme is None:
        raise ProgrammeNotFound()
    existing = await repo.claim_for_month(programme.id, month)
    if existing is not None:
        return existing, False
    redemptions = await repo.claimable(programme.id, month_end(month))
    if not redemptions:
        return None, False
    series = f"CLM-{month.year}"
    seq = await PaymentsRepository(session).next_number(series)
    number = f"{series}-{seq:06d}" if seq < 1_000_000 else f"{series}-{seq}"
    claim = await repo.add(
        VoucherClaim(
            number=number,
            programme_id=programme.id,
            month=month,
            currency=programme.currency,
            total=sum(r.amount for r in redemptions),
        )
    )
    evidence = await repo.evidence([r.booking_id for r in redemptions])
    for redemption in redemptions:
        session.add(
            VoucherClaimLine(
                claim_id=claim.id,
                redemption_id=redemption.id,
                booking_id=redemption.booking_id,
                amount=redemption.amount,
                evidence=evidence_of(evidence[redemption.booking_id], redemption),
            )
        )
        redemption.status = RedemptionStatus.claimed
    await audit.record(
        session,
        actor_user_id=actor.user_id if actor else None,
        actor_api_key_id=actor.api_key_id if actor else None,
        action="voucher_claim.build",
        target_type="voucher_claim",
        target_id=claim.id,
        after={"number": claim.number, "month": month_text(month), "total": claim.total, "lines": len(redemptions)},
    )
    await session.flush()
    return claim, True


async def build_claim(
    session: AsyncSession, principal: Principal, *, programme_id: uuid.UUID, month: str
) -> tuple[VoucherClaim, bool]:
    """Build (or find) the programme's claim for ``month`` ("YYYY-MM", ended). Returns (claim, created);
    409 ``nothing_to_claim`` when there is no claim and nothing to put on one."""
    first = parse_month(month)
    if month_end(first) > now():
        raise field_error("month", "must be a month that has ended (China Standard Time)")
    await operated_programme(session, principal, programme_id)
    principal.require_verified_email()
    claim, created = await _build(session, programme_id, first, actor=principal)
    if claim is None:
        raise NothingToClaim()
    return claim, created


async def build_due_claims(session: AsyncSession, *, today: date) -> dict[str, int]:
    """The task: build the previous month's claim (of ``today``, a China date) of every active or closed
    programme that has claimable lines. Idempotent: an existing claim is left as it is."""
    month = previous_month(today)
    built = 0
    for programme_id in await ClaimRepository(session).programmes_with_claimable(month_end(month)):
        _, created = await _build(session, programme_id, month, actor=None)
        built += created
    return {"claims_built": built}


# -- read -----------------------------------------------------------------------------------------------------


async def list_claims(session: AsyncSession, principal: Principal, *, programme_id: uuid.UUID) -> list[VoucherClaim]:
    """The programme's claims, newest month first."""
    programme = await operated_programme(session, principal, programme_id)
    return await ClaimRepository(session).claims(programme.id)


async def claim_view(
    session: AsyncSession, principal: Principal, *, programme_id: uuid.UUID, claim_id: uuid.UUID
) -> ClaimView:
    programme = await operated_programme(session, principal, programme_id)
    claim = await _claim(session, programme, claim_id)
    return ClaimView(claim=claim, programme=programme, lines=await ClaimRepository(session).lines(claim.id))


# -- decide and pay -------------------------------------------------------------------------------------------


async def decide_line(
    session: AsyncSession,
    principal: Principal,
    *,
    programme_id: uuid.UUID,
    claim_id: uuid.UUID,
    line_id: uuid.UUID,
    data: LineDecision,
) -> ClaimView:
    """Approve or reject one line (a reason is required to reject); returns the claim as it is now."""
    programme = await operated_programme(session, principal, programme_id)
    principal.require_verified_email()
    repo = ClaimRepository(session)
    claim = await _claim(session, programme, claim_id, for_update=True)
    line = await repo.line(claim.id, line_id)
    if line is None:
        raise NotFound("Claim line not found.")
    if claim.status == ClaimStatus.paid:
        raise ClaimPaid()
    if line.status != LineStatus.pending:
        raise LineDecided()
    reason = (data.reason or "").strip() or None
    if data.decision == "reject" and reason is None:
        raise field_error("reason", "is required to reject a line")
    line.decided_by, line.decided_at, line.reason = principal.user_id, now(), reason
    after = {"line_id": str(line.id), "booking_id": str(line.booking_id), "amount": line.amount}
    if data.decision == "approve":
        line.status = LineStatus.approved
        claim.approved += line.amount
        await audit.record(
            session,
            actor_user_id=principal.user_id,
            actor_api_key_id=principal.api_key_id,
            action="voucher_claim.approve_line",
            target_type="voucher_claim",
            target_id=claim.id,
            after=after,
        )
    else:
        line.status = LineStatus.rejected
        await _reject(session, programme, line)
        await audit.record(
            session,
            actor_user_id=principal.user_id,
            actor_api_key_id=principal.api_key_id,
            action="voucher_claim.reject_line",
            target_type="voucher_claim",
            target_id=claim.id,
            after=after,
            reason=reason,
        )
    await session.flush()
    if await repo.pending_lines(claim.id) == 0:
        claim.status = ClaimStatus.decided
        await session.flush()
    return ClaimView(claim=claim, programme=programme, lines=await repo.lines(claim.id))


async def _reject(session: AsyncSession, programme: VoucherProgramme, line: VoucherClaimLine) -> None:
    """The budget is freed; in advance mode the buyer now owes the share the programme will not pay."""
    redemption = await ClaimRepository(session).redemption(line.redemption_id, for_update=True)
    if redemption is None:  # a foreign key: never
        raise NotFound("Redemption not found.")
    redemption.status = RedemptionStatus.rejected
    if redemption.payment_mode == PaymentMode.advance:
        await ledger.post(
            session,
            key=f"voucher-claim-line:{line.id}:rejected",
            kind="voucher_rebilled",
            booking_id=line.booking_id,
            lines=ledger.subsidy_rebilled(
                redemption.buyer_org_id, programme.org_id, programme.currency, amount=line.amount
            ),
            memo=f"Voucher claim line rejected: {line.reason or ''}",
        )


async def record_payment(
    session: AsyncSession, principal: Principal, *, programme_id: uuid.UUID, claim_id: uuid.UUID, data: ClaimPayment
) -> ClaimView:
    """The programme paid the decided claim: exactly ``approved``. Refused twice (409 ``claim_paid``)."""
    programme = await operated_programme(session, principal, programme_id)
    principal.require_verified_email()
    repo = ClaimRepository(session)
    claim = await _claim(session, programme, claim_id, for_update=True)
    if claim.status == ClaimStatus.paid:
        raise ClaimPaid()
    if claim.status != ClaimStatus.decided:
        raise ClaimNotDecided()
    if data.amount != claim.approved:
        message = f"must equal the claim's approved amount ({claim.approved} minor units of {claim.currency})"
        raise AmountMismatch(f"amount: {message}", extra={"fields": [{"field": "amount", "message": message}]})
    lines = await repo.lines(claim.id)
    modes = await repo.payment_modes([line.redemption_id for line in lines])
    for line in lines:
        # advance: the programme owes the platform (its receivable); after_use: it paid the buyers directly.
        if line.status == LineStatus.approved and modes[line.redemption_id] == PaymentMode.advance:
            await ledger.post(
                session,
                key=f"voucher-claim-line:{line.id}:paid",
                kind="voucher_claim_paid",
                booking_id=line.booking_id,
                lines=ledger.subsidy_collected(programme.org_id, programme.currency, line.amount),
                memo=f"Voucher claim {claim.number} paid: {data.reference}",
            )
    claim.status, claim.payment_reference, claim.paid_at, claim.paid_by = (
        ClaimStatus.paid,
        data.reference,
        now(),
        principal.user_id,
    )
    await audit.record(
        session,
        actor_user_id=principal.user_id,
        actor_api_key_id=principal.api_key_id,
        action="voucher_claim.pay",
        target_type="voucher_claim",
        target_id=claim.id,
        after={"number": claim.number, "amount": data.amount, "reference": data.reference},
    )
    await session.flush()
    return ClaimView(claim=claim, programme=programme, lines=lines)
