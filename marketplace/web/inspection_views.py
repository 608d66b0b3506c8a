"""What the make + verify sections and pages show of a booking: its ordered quality documents and its
inspections (the plan in words, the report, the public verification hash of the report's PDF)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from listings.repository import ListingsPageQueries
from marketplace.bookings.models import Booking
from marketplace.bookings.repository import BookingRepository
from marketplace.inspection.models import OPEN_STATUSES, BookingQualityDocument, Inspection, InspectionReport
from marketplace.inspection.repository import InspectionRepository
from marketplace.web import i18n, inspection_forms
from marketplace.web.core import locale_of
from marketplace.web.form_errors_service import errors_from_url
from marketplace.web.inspection_page_repository import InspectionPageRepository
from marketplace.web.quality_labels import quality_document_label

# A buyer may order an inspection of a machine booking in these states (design: not once settled).
ORDERABLE = ("confirmed", "in_progress", "completed")


@dataclass
class InspectionView:
    """One inspection as the pages show it: the plan in words, the report and its public verification hash."""

    inspection: Inspection
    plan_text: str
    report: InspectionReport | None = None
    verify_hash: str | None = None
    lab_title: str = ""
    overdue: bool = False

    @property
    def open(self) -> bool:
        return self.inspection.status in OPEN_STATUSES


async def inspection_views(
    session: AsyncSession, inspections: list[Inspection], *, locale: str
) -> list[InspectionView]:
    repo = InspectionRepository(session)
    today = datetime.now(UTC).date()
    views: list[InspectionView] = []
    for row in inspections:
        report = await repo.report_of(row.id)
        views.append(
            InspectionView(
                row,
                inspection_forms.plan_words(_Plan.of(row), locale=locale),
                report=report,
                overdue=row.status in OPEN_STATUSES and row.due_date < today,
            )
        )
    pdfs = [v.report.pdf_document_id for v in views if v.report]
    hashes = await InspectionPageRepository(session).verify_hashes(pdfs)
    lab_bookings = [await BookingRepository(session).get(v.inspection.lab_booking_id) for v in views]
    titles = await ListingsPageQueries(session).titles([b.asset_id for b in lab_bookings if b])
    for view, lab in zip(views, lab_bookings, strict=True):
        if view.report and view.report.pdf_document_id:
            view.verify_hash = hashes.get(view.report.pdf_document_id)
        view.lab_title = titles.get(lab.asset_id, "") if lab else ""
    return views


@dataclass(frozen=True)
class _Plan:
    lot_size: int
    inspection_level: str
    aql: str
    code_letter: str
    sample_size: int
    accept_number: int
    reject_number: int

    @classmethod
    def of(cls, row: Inspection) -> _Plan:
        return cls(
            row.lot_size,
            row.inspection_level,
            row.aql,
            row.code_letter,
            row.sample_size,
            row.accept_number,
            row.reject_number,
        )


async def section(session: AsyncSession, booking: Booking, *, locale: str) -> dict[str, Any]:
    """What the booking pages' inspection section shows (``inspection_section.html``): the ordered quality
    documents and every inspection of the produced lot (or, on a lab booking, the one it carries out)."""
    docs: list[BookingQualityDocument] = await InspectionPageRepository(session).quality_documents(booking.id)
    repo = InspectionRepository(session)
    rows = await repo.of_production(booking.id)
    if not rows and (lab := await repo.by_lab_booking(booking.id)) is not None:
        rows = [lab]
    views = await inspection_views(session, rows, locale=locale)
    gettext = i18n.translations(locale).gettext
    return {
        "qdoc_label": lambda kind: quality_document_label(kind, gettext),
        "quality_docs": docs,
        "inspections": views,
        "can_order": booking.kind == "machine" and booking.status in ORDERABLE and not any(v.open for v in views),
    }


def section_errors(request: Request) -> dict[str, str]:
    """The extend form's refusal on the buyer's booking page, keyed by its field's id (``extend-due_date``)."""
    if request.query_params.get("form") != "extend":
        return {}
    return errors_from_url(request.query_params, locale=locale_of(request), prefixes={"extend": "extend-"})
