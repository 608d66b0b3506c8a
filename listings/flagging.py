"""Reports ("flags") on a listing: the reasons a reporter chooses from, and the API shapes.

A flag keeps the chosen reason in ``reason_code`` (one of :data:`FLAG_REASONS`) and the reporter's own words in
``reason``. A flag sent with words only (the API before reason codes) is an ``other`` flag; pages translate the
code, never show it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from listings.schemas import Strict, Text

FlagReason = Literal[
    "misleading_description", "wrong_capacity_or_price", "not_a_real_company", "prohibited_item", "other"
]
FLAG_REASONS: tuple[str, ...] = get_args(FlagReason)


class FlagIn(Strict):
    """Report a listing: a reason code and/or the reporter's words. Without a code (``other`` included) the
    words are required, so every flag says what is wrong."""

    reason_code: FlagReason | None = None
    reason: Text | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _needs_words_without_code(self) -> FlagIn:
        if self.reason is not None:
            self.reason = self.reason.strip() or None
        if self.reason is None and self.reason_code in (None, "other"):
            raise ValueError("reason: describe what is wrong with this listing")
        return self

    @property
    def code(self) -> str:
        """The reason code to store: ``other`` for words without a code."""
        return self.reason_code or "other"

    @property
    def details(self) -> str:
        """The reporter's words to store (empty when the code says it all)."""
        return self.reason or ""


class FlagOut(BaseModel):
    """A flag as the API shows it: ``reason_code`` the chosen reason (``other`` for words only), ``reason`` the
    reporter's words."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    asset_id: uuid.UUID
    reason_code: FlagReason
    reason: str
    status: str
    resolution: str | None
    created_at: datetime
