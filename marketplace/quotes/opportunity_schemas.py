"""Request and response shapes of the job board (opportunities) and of quote requests (invitations)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from marketplace.core.text import Text
from marketplace.requests.schemas import RequestFacts, SlotOut


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InvitationIn(Strict):
    asset_id: uuid.UUID = Field(description="A listing among the request's matches (GET /requests/{id}/matches)")


class DeclineIn(Strict):
    reason: Text = Field(
        min_length=1, max_length=1000, description="Why the factory does not quote (the buyer sees it)"
    )


class InvitationOut(BaseModel):
    id: uuid.UUID
    request_id: uuid.UUID
    supplier_org_id: uuid.UUID
    asset_id: uuid.UUID | None
    rank: int | None = Field(description="Position of the listing in the request's ranked matches when invited")
    status: str = Field(description="invited, quoted, declined, lapsed or withdrawn (the request closed)")
    invited_at: datetime
    respond_by: datetime
    via: str = Field(description="buyer (asked by the buyer) or cascade (asked by the auto-cascade)")
    reason: str | None = None
    answered_at: datetime | None = None


class InvitationList(BaseModel):
    items: list[InvitationOut]


class FitOut(BaseModel):
    asset_id: uuid.UUID
    title: str
    slot: SlotOut = Field(description="The listing's earliest feasible slot (a lab's drop-off and completion day)")
    distance_km: float | None = Field(description="Rounded to 10 km; null when the request gives no location")


class MyInvitationOut(BaseModel):
    id: uuid.UUID
    status: str
    respond_by: datetime


class EnvelopeOut(BaseModel):
    x: float
    y: float
    z: float


class OpportunityOut(RequestFacts):
    """An open request as a factory sees it: what is asked, never who asks."""

    request_id: uuid.UUID
    part_envelope_mm: EnvelopeOut | None
    listings: list[FitOut] = Field(description="My published listings that can serve it")
    invited: bool
    invitation: MyInvitationOut | None = None
    quoted: bool = Field(description="My organisation has already quoted")


class OpportunityPage(BaseModel):
    items: list[OpportunityOut]
    next_cursor: str | None = None
