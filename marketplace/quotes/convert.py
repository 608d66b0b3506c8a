"""Quotes as the API (and the web pages) show them."""

from __future__ import annotations

from typing import Any

from marketplace.quotes.models import QuoteStatus, QuoteVersion
from marketplace.quotes.schemas import MilestoneOut, QuoteOut, QuoteVersionOut
from marketplace.quotes.service import QuoteView


def quote_out(view: QuoteView) -> QuoteOut:
    """The quote as its reader may see it: a supplier sees the buyer organisation only once it is accepted."""
    q = view.quote
    hide_buyer = view.role == "supplier" and q.status != QuoteStatus.accepted
    latest = view.versions[-1] if view.versions else None
    return QuoteOut(
        id=q.id,
        request_id=q.request_id,
        asset_id=q.asset_id,
        supplier_org_id=q.supplier_org_id,
        buyer_org_id=None if hide_buyer else q.buyer_org_id,
        kind=q.kind,
        currency=q.currency,
        status=q.status,
        version=q.version,
        latest_by=q.latest_by,
        amount=latest.amount if latest else 0,
        valid_until=q.valid_until,
        milestones=_milestones(latest.milestones) if latest else None,
        decline_reason=q.decline_reason,
        your_role=view.role,
        created_at=q.created_at,
        updated_at=q.updated_at,
        versions=[version_out(v) for v in view.versions],
    )


def version_out(v: QuoteVersion) -> QuoteVersionOut:
    """One version of a quote's terms, as the API and the web pages show it."""
    return QuoteVersionOut(
        number=v.number,
        party=v.party,
        amount=v.amount,
        start=v.start_at,
        end=v.end_at,
        drop_off_date=v.drop_off_date,
        samples=v.samples,
        valid_until=v.valid_until,
        note=v.note,
        milestones=_milestones(v.milestones),
        created_at=v.created_at,
    )


def _milestones(items: list[dict[str, Any]] | None) -> list[MilestoneOut] | None:
    return [MilestoneOut(label=m["label"], percent=m["percent"]) for m in items] if items else None
