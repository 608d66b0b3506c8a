"""Response shapes of the document store."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict


class DocumentOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    name: str
    size: int
    content_type: str
    sha256: str
    created_at: datetime


class LinkOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str
    expires_at: datetime
