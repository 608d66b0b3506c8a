"""Request and response shapes of message threads, drawings, the NDA and the notification-centre counters."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from marketplace.core.text import TEXT_PATTERN, Line

MAX_BODY = 5000
MAX_DOCUMENTS = 20

Body = Annotated[str, StringConstraints(pattern=TEXT_PATTERN, min_length=1, max_length=MAX_BODY)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MessageIn(Strict):
    body: Body = Field(description="1 to 5000 characters; line breaks and tabs are kept")
    document_ids: list[uuid.UUID] = Field(
        default_factory=list, max_length=MAX_DOCUMENTS, description="Uploaded documents to attach"
    )
    supplier_org_id: uuid.UUID | None = Field(
        default=None, description="Request threads: the supplier organisation (required when the buyer writes)"
    )


class DocumentRef(BaseModel):
    id: uuid.UUID
    name: str
    size: int
    content_type: str
    sha256: str


class MessageOut(BaseModel):
    id: uuid.UUID
    thread_id: uuid.UUID
    author_side: Literal["buyer", "supplier", "platform"] = Field(
        description="platform: the dispute team; a buyer's identity is not shown to the factory in request threads"
    )
    author_org_id: uuid.UUID | None = Field(
        description="Null for the platform, and for the buyer as the factory sees it"
    )
    author_user_id: uuid.UUID | None
    body: str
    created_at: datetime
    documents: list[DocumentRef]


class MessagePage(BaseModel):
    items: list[MessageOut] = Field(description="Newest first")
    next_cursor: str | None = None
    thread_id: uuid.UUID | None = Field(description="Null until the first message opens the thread")


class ThreadOut(BaseModel):
    id: uuid.UUID
    kind: Literal["request", "booking"]
    request_id: uuid.UUID | None
    booking_id: uuid.UUID | None
    buyer_org_id: uuid.UUID | None
    buyer_name: str | None = Field(
        description="Null for the factory's side of a request thread (buyers stay anonymous)"
    )
    supplier_org_id: uuid.UUID
    supplier_name: str
    last_message_at: datetime
    unread: int


class ThreadPage(BaseModel):
    items: list[ThreadOut]
    next_cursor: str | None = None


class ReadOut(BaseModel):
    unread: int


class DrawingsIn(Strict):
    document_ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_DOCUMENTS)


class DrawingsOut(BaseModel):
    request_id: uuid.UUID
    nda_required: bool
    items: list[DocumentRef]


class NdaOut(BaseModel):
    version: str
    text_en: str
    text_zh: str


class NdaAcceptIn(Strict):
    version: Annotated[Line, StringConstraints(min_length=1, max_length=20)]


class NdaAcceptanceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    request_id: uuid.UUID
    org_id: uuid.UUID
    user_id: uuid.UUID | None
    version: str
    accepted_at: datetime


class UnreadCountOut(BaseModel):
    unread: int


class MarkedReadOut(BaseModel):
    marked_read: int
