"""The lab's report (issue #17): measured values in, conformity and the lot's verdict computed, the payout gated.

The lab never types a verdict. Each unit conforms when every characteristic lies within its tolerance
(``nominal + lower_tol <= value <= nominal + upper_tol``, bounds inclusive, exact ``Decimal`` arithmetic,
length converted between mm, µm and in); the lot is accepted when the nonconforming units are at most Ac and
rejected from Re (``sampling.lot_verdict``). In the same transaction:

* the inspection becomes ``reported`` (verdict, ``gates_payment``);
* the lab booking is completed as the lab (started first if still confirmed), so it settles through its own
  dispute window: the lab is paid whatever the verdict;
* the signed report is attached to both bookings (buyer, factory, lab and admins can read it);
* a report that gates the payment settles a completed production booking on an accepted lot
  (``system_act("confirm")``; not completed yet: its normal settlement goes through later) or disputes it on a
  rejected one (``system_act("dispute")``, the report as evidence; not completed yet: the gate holds the money
  and the dispute opens when it completes, see ``gate.py``);
* a report that cannot gate (required accreditation not covered) leaves the decision to the buyer for one
  dispute window, after which the automatic settlement resumes (``bookings.settle_one`` is enqueued for then);
* the bilingual PDF is rendered after commit (job ``inspection.render_report``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from listings.repository import ListingsRepository
from marketplace.bookings import actions
from marketplace.bookings.models import Booking, BookingStatus
from marketplace.bookings.repository import BookingRepository
from marketplace.bookings.rules import Deps, field_error, get_for
from marketplace.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from marketplace.core.jobs import enqueue
from marketplace.core.principal import Principal
from marketplace.documents import service as documents
from marketplace.inspection import accreditation, report_notices
from marketplace.inspection.models import Inspection, InspectionReport, InspectionStatus, Verdict
from marketplace.inspection.report_repository import ReportRepository
from marketplace.inspection.report_schemas import MeasurementOut, ReportIn, ReportOut, UnitIn, UnitOut
from marketplace.inspection.repository import InspectionRepository
from marketplace.inspection.sampling import SamplingPlan, lot_verdict
from marketplace.notifications.service import notify_org
from marketplace.orgs.models import Organisation

# Length units and their size in millimetres; any other unit must be the plan's own.
LENGTH_MM: dict[str, Decimal] = {
    "mm": Decimal(1),
    "µm": Decimal("0.001"),  # MICRO SIGN
    "μm": Decimal("0.001"),  # GREEK SMALL LETTER MU
    "um": Decimal("0.001"),
    "in": Decimal("25.4"),
}


class InspectionNotReceived(Conflict):
    code = "inspection_not_received"

    def __init__(self, status: str) -> None:
        super().__init__(
            f"The samples must be received before the report (the inspection is {status}).",
            extra={"inspection_status": status},
        )


class LabBookingNotConfirmed(Conflict):
    code = "lab_booking_not_confirmed"

    def __init__(self, status: str) -> None:
        super().__init__(
            f"The lab booking must be accepted before its report (it is {status}).", extra={"current_status": status}
        )


class ReportExists(Conflict):
    code = "report_exists"

    def __init__(self) -> None:
        super().__init__("This inspection already has its report.", extra={"inspection_status": "reported"})


# -- the computation (pure) -----------------------------------------------------------------------------


def convert(value: Decimal, *, from_unit: str, to_unit: str) -> Decimal | None:
    """``value`` in ``to_unit``; None when the units are not convertible (different, and not both lengths)."""
    if from_unit == to_unit:
        return value
    if from_unit in LENGTH_MM and to_unit in LENGTH_MM:
        return value * LENGTH_MM[from_unit] / LENGTH_MM[to_unit]
    return None


def conforms(value: Decimal, characteristic: dict[str, Any]) -> bool:
    nominal = Decimal(str(characteristic["nominal"]))
    lower = nominal + Decimal(str(characteristic["lower_tol"]))
    upper = nominal + Decimal(str(characteristic["upper_tol"]))
    return lower <= value <= upper


def assess_units(
    characteristics: list[dict[str, Any]], units: list[UnitIn], *, sample_size: int
) -> list[dict[str, Any]]:
    """Each unit as stored (values as sent) with its conformity and failed characteristics; 422 naming what is
    wrong: the number of units, a characteristic unknown, missing or measured twice, a unit not convertible."""
    if len(units) != sample_size:
        raise field_error("units", f"the plan's sample is {sample_size} units; {len(units)} were sent.")
    plan = {c["name"]: c for c in characteristics}
    out: list[dict[str, Any]] = []
    for index, unit in enumerate(units):
        seen: set[str] = set()
        measurements: list[dict[str, Any]] = []
        failed: list[str] = []
        for m_index, m in enumerate(unit.measurements):
            where = f"units.{index}.measurements.{m_index}"
            char = plan.get(m.characteristic)
            if char is None:
                raise field_error(
                    f"{where}.characteristic", f"'{m.characteristic}' is not a characteristic of the plan."
                )
            if m.characteristic in seen:
                raise field_error(f"{where}.characteristic", f"'{m.characteristic}' is measured twice in this unit.")
            seen.add(m.characteristic)
            value = convert(m.value, from_unit=m.unit, to_unit=char["unit"])
            if value is None:
                raise field_error(
                    f"{where}.unit",
                    f"'{m.characteristic}' is specified in {char['unit']}; {m.unit} cannot be converted.",
                )
            ok = conforms(value, char)
            if not ok:
                failed.append(m.characteristic)
            measurements.append({"name": m.characteristic, "value": str(m.value), "unit": m.unit, "conforming": ok})
        missing = [name for name in plan if name not in seen]
        if missing:
            raise field_error(f"units.{index}.measurements", f"not measured: {', '.join(missing)}.")
        out.append(
            {
                "unit": index + 1,
                "serial": unit.serial,
                "measurements": measurements,
                "conforming": not failed,
                "failed": failed,
            }
        )
    return out


def plan_of(inspection: Inspection) -> SamplingPlan:
    return SamplingPlan(
        code_letter=inspection.code_letter,
        sample_size=inspection.sample_size,
        accept=inspection.accept_number,
        reject=inspection.reject_number,
        lot_size=inspection.lot_size,
        inspection_level=inspection.inspection_level,
        aql=Decimal(inspection.aql),
    )


def verdict_of(inspection: Inspection, nonconforming: int) -> Verdict:
    return Verdict.accepted if lot_verdict(plan_of(inspection), nonconforming) == "accept" else Verdict.rejected


# -- submitting ---------------------------------------------------------------------------------------------

_REPORTABLE = (BookingStatus.confirmed, BookingStatus.in_progress, BookingStatus.completed)


async def _lab_inspection(session: AsyncSession, principal: Principal, lab_booking_id: uuid.UUID) -> Inspection:
    lab_booking, role = await get_for(session=session, principal=principal, booking_id=lab_booking_id)
    if role != "supplier":
        raise Forbidden("Only the lab that carries out the inspection can submit its report.")
    if not principal.has_scope("bookings:write"):
        raise Forbidden("This API key lacks the 'bookings:write' scope.")
    inspection = await InspectionRepository(session).by_lab_booking(lab_booking_id, for_update=True)
    if inspection is None:
        raise NotFound("This booking carries no inspection.")
    if inspection.status == InspectionStatus.reported:
        raise ReportExists()
    if inspection.status != InspectionStatus.received:
        raise InspectionNotReceived(inspection.status)
    if lab_booking.status not in _REPORTABLE:  # the lab is paid through this booking: it must be a firm one
        raise LabBookingNotConfirmed(lab_booking.status)
    return inspection


async def submit(
    session: AsyncSession, *, principal: Principal, lab_booking_id: uuid.UUID, body: ReportIn, deps: Deps
) -> tuple[InspectionReport, Inspection]:
    """The lab's report on a received sample lot, with every effect described in the module docstring."""
    inspection = await _lab_inspection(session, principal, lab_booking_id)
    now = datetime.now(UTC)
    if body.tested_on > now.date():
        raise field_error("tested_on", "cannot be in the future.")
    if inspection.received_at is not None and body.tested_on < inspection.received_at.date():
        raise field_error("tested_on", f"cannot be before the samples were received ({inspection.received_at.date()}).")
    units = assess_units(inspection.characteristics, body.units, sample_size=inspection.sample_size)
    nonconforming = sum(1 for u in units if not u["conforming"])
    verdict = verdict_of(inspection, nonconforming)
    status, certificate_id = await accreditation.check(
        session, lab_org_id=inspection.lab_org_id, test_standard=body.test_standard, on=body.tested_on
    )
    gates = status == "covered" or not inspection.require_accreditation
    for booking_id in (inspection.lab_booking_id, inspection.production_booking_id):
        await documents.attach_for_org(
            session,
            org_id=inspection.lab_org_id,
            document_id=body.signed_document_id,
            target_kind="booking",
            target_id=booking_id,
        )
    report = await ReportRepository(session).add(
        InspectionReport(
            inspection_id=inspection.id,
            lab_booking_id=inspection.lab_booking_id,
            tested_on=body.tested_on,
            test_standard=body.test_standard,
            instrument=body.instrument,
            operator=body.operator,
            signed_document_id=body.signed_document_id,
            units=units,
            nonconforming=nonconforming,
            verdict=verdict,
            accreditation=status,
            certificate_id=certificate_id,
            gates_payment=gates,
            created_by=principal.user_id,
            created_at=now,
        )
    )
    inspection.status = InspectionStatus.reported
    inspection.verdict = verdict
    inspection.gates_payment = gates
    inspection.updated_at = now
    await session.flush()
    await _complete_lab_booking(session, principal=principal, inspection=inspection, deps=deps)
    await _gate_production(session, inspection=inspection, report=report, deps=deps)
    await enqueue(session, "inspection.render_report", str(report.id))
    return report, inspection


async def _complete_lab_booking(
    session: AsyncSession, *, principal: Principal, inspection: Inspection, deps: Deps
) -> None:
    """The lab's own booking is done: started (as the lab; by the system before check-in opens) and completed."""
    lab_booking = await BookingRepository(session).get(inspection.lab_booking_id, for_update=True)
    if lab_booking is None:  # inspections.lab_booking_id is ON DELETE RESTRICT
        raise NotFound("Booking not found.")
    reason = "inspection report submitted"
    if lab_booking.status == BookingStatus.confirmed:
        try:
            await actions.act(
                session=session, principal=principal, booking_id=lab_booking.id, action="start", deps=deps
            )
        except Conflict:  # check-in not open yet: the report proves the work started
            await actions.system_act(session=session, booking=lab_booking, action="start", deps=deps, reason=reason)
    if lab_booking.status == BookingStatus.in_progress:
        await actions.act(
            session=session,
            principal=principal,
            booking_id=lab_booking.id,
            action="complete",
            deps=deps,
            reason=reason,
            result_reference=f"inspection report {inspection.id}",
        )


async def _gate_production(
    session: AsyncSession, *, inspection: Inspection, report: InspectionReport, deps: Deps
) -> None:
    production = await BookingRepository(session).get(inspection.production_booking_id, for_update=True)
    if production is None:  # ON DELETE RESTRICT
        raise NotFound("Booking not found.")
    data = await _notice_data(session, production, inspection=inspection, report=report, deps=deps)
    completed = production.status == BookingStatus.completed
    if not report.gates_payment:
        # The buyer decides; the automatic settlement resumes one dispute window after the report (gate.py).
        await enqueue(
            session,
            "bookings.settle_one",
            str(production.id),
            delay_seconds=deps.settings.dispute_window_hours * 3600 + 1,
        )
        await notify_org(session, production.buyer_org_id, kind="inspection.not_gating", data=data)
        await notify_org(session, production.supplier_org_id, kind="inspection.reported", data=data)
        return
    if report.verdict == Verdict.accepted:
        if completed:
            await actions.system_act(
                session=session,
                booking=production,
                action="confirm",
                deps=deps,
                reason=ACCEPTED_REASON,
            )
        kind = "inspection.accepted"
    else:
        if completed:
            await actions.system_act(
                session=session, booking=production, action="dispute", deps=deps, reason=REJECTED_REASON
            )
        kind = "inspection.rejected"
    for org_id in (production.buyer_org_id, production.supplier_org_id):
        await notify_org(session, org_id, kind=kind, data=data)


# Fixed texts (the timeline and the dispute queue translate them: marketplace.web.labels.SYSTEM_REASONS); the
# details are in the report itself, which the dispute links to.
ACCEPTED_REASON = "lot accepted by the inspection report"
REJECTED_REASON = "lot rejected by the inspection report"


async def _notice_data(
    session: AsyncSession, production: Booking, *, inspection: Inspection, report: InspectionReport, deps: Deps
) -> dict[str, Any]:
    lab = await session.get(Organisation, inspection.lab_org_id)
    asset = await ListingsRepository(session).get_asset(production.asset_id)
    decide_by = report.created_at + timedelta(hours=deps.settings.dispute_window_hours)
    return {
        "booking_id": str(production.id),
        "lab_booking_id": str(inspection.lab_booking_id),
        "inspection_id": str(inspection.id),
        "report_id": str(report.id),
        "title": asset.title if asset else "",
        "lab": lab.name if lab else "",
        "sample_size": inspection.sample_size,
        "accept_number": inspection.accept_number,
        "reject_number": inspection.reject_number,
        "nonconforming": report.nonconforming,
        "verdict": report.verdict,
        "accreditation": report.accreditation,
        "accreditation_en": report_notices.ACCREDITATION_WHY[report.accreditation][0],
        "accreditation_zh": report_notices.ACCREDITATION_WHY[report.accreditation][1],
        "decide_by": f"{decide_by:%Y-%m-%d %H:%M} UTC",
    }


# -- reading ------------------------------------------------------------------------------------------------


async def _readable(session: AsyncSession, principal: Principal, inspection: Inspection | None) -> Inspection:
    """The inspection if the caller is its buyer, factory or lab (or an admin); 404 alike otherwise."""
    if inspection is None:
        raise NotFound("Report not found.")
    parties = (inspection.buyer_org_id, inspection.supplier_org_id, inspection.lab_org_id)
    if not (principal.is_platform_admin or any(principal.can_act_for(o) for o in parties)):
        raise NotFound("Report not found.")
    if not principal.is_platform_admin and not principal.has_scope("bookings:read"):
        raise Forbidden("This API key lacks the 'bookings:read' scope.")
    return inspection


async def read(
    session: AsyncSession,
    *,
    principal: Principal,
    lab_booking_id: uuid.UUID | None = None,
    inspection_id: uuid.UUID | None = None,
) -> ReportOut:
    """The report of an inspection, found by its lab booking or by its own id."""
    repo = InspectionRepository(session)
    if lab_booking_id is not None:
        found = await repo.by_lab_booking(lab_booking_id)
    elif inspection_id is not None:
        found = await repo.get(inspection_id)
    else:
        raise Unprocessable("Name the lab booking or the inspection.")
    inspection = await _readable(session, principal, found)
    report = await repo.report_of(inspection.id)
    if report is None:
        raise NotFound("The lab has not reported yet.")
    return report_out(report, inspection)


def report_out(report: InspectionReport, inspection: Inspection) -> ReportOut:
    return ReportOut(
        id=report.id,
        inspection_id=inspection.id,
        lab_booking_id=report.lab_booking_id,
        production_booking_id=inspection.production_booking_id,
        tested_on=report.tested_on,
        test_standard=report.test_standard,
        instrument=report.instrument,
        operator=report.operator,
        signed_document_id=report.signed_document_id,
        sample_size=inspection.sample_size,
        accept_number=inspection.accept_number,
        reject_number=inspection.reject_number,
        units=[
            UnitOut(
                index=u["unit"],
                serial=u.get("serial"),
                measurements=[
                    MeasurementOut(
                        characteristic=m["name"], value=m["value"], unit=m["unit"], conforming=m["conforming"]
                    )
                    for m in u["measurements"]
                ],
                conforming=u["conforming"],
                failed=u["failed"],
            )
            for u in report.units
        ],
        nonconforming=report.nonconforming,
        verdict=report.verdict,
        accreditation=report.accreditation,
        certificate_id=report.certificate_id,
        require_accreditation=inspection.require_accreditation,
        gates_payment=report.gates_payment,
        pdf_document_id=report.pdf_document_id,
        created_at=report.created_at,
    )
