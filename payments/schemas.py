"""Pydantic in/out shapes of the payments API (table models are never returned directly)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# The text rule for the strings this package accepts, the same patterns as the shell's marketplace/core/text.py
# (which this package may not import): Line = one line, no control character; Text = may keep \t \n \r.
Line = Annotated[str, StringConstraints(pattern=r"^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]*$")]
Text = Annotated[str, StringConstraints(pattern=r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$")]


class PaymentOut(BaseModel):
    method: Literal["invoice", "stripe"]
    status: str
    amount_due: int
    currency: str
    invoice_id: uuid.UUID | None
    payment_intent_id: str | None
    client_secret: str | None


class BankTransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int = Field(gt=0, le=10**13, description="Minor units")
    reference: Line = Field(min_length=1, max_length=200, description="The bank's transaction reference")


class BankTransferOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    invoice_id: uuid.UUID
    direction: str
    amount: int
    reference: str
    created_at: datetime


class Party(BaseModel):
    id: uuid.UUID
    name: str | None
    legal_name: str | None
    uscc: str | None


class CreditNoteOut(BaseModel):
    number: str
    amount: int
    reason: str
    created_at: datetime


class TransferLine(BaseModel):
    direction: str
    amount: int
    reference: str
    created_at: datetime


class VoucherPayer(BaseModel):
    id: uuid.UUID
    name: str | None


class InvoiceOut(BaseModel):
    id: uuid.UUID
    number: str
    booking_id: uuid.UUID
    status: str
    document_status: str
    currency: str
    issued_at: datetime
    due_date: date
    overdue: bool
    buyer: Party
    supplier: Party
    line_items: list[dict[str, Any]]
    subtotal: int
    tax_rate_bp: int
    tax: int
    total: int
    amount_due: int
    voucher_share: int = Field(
        default=0, description="What an innovation voucher paid in advance covers of what is kept (issue #18)"
    )
    buyer_share: int = Field(default=0, description="total - credit notes - voucher_share: the buyer's part")
    voucher_payer: VoucherPayer | None = Field(default=None, description="The voucher programme's organisation")
    amount_received: int
    credit_notes: list[CreditNoteOut]
    transfers: list[TransferLine]


class AccountLine(BaseModel):
    account: str
    type: str
    debits: int
    credits: int
    balance: int


class CurrencyBalance(BaseModel):
    debits: int
    credits: int
    accounts: list[AccountLine]


class TrialBalanceOut(BaseModel):
    balanced: bool
    currencies: dict[str, CurrencyBalance]


class StatementLine(BaseModel):
    line_id: int = Field(description="The line's number in the ledger (increasing)")
    journal_id: uuid.UUID
    kind: str
    booking_id: uuid.UUID | None
    invoice_id: uuid.UUID | None
    account: str
    currency: str
    amount: int = Field(description="Minor units of the currency; positive = debit, negative = credit")
    created_at: datetime
    memo: str


class StatementOut(BaseModel):
    """One page of an organisation's ledger lines, newest first, and its balances over ALL its lines."""

    org_id: uuid.UUID
    balances: dict[str, dict[str, int]] = Field(
        description="currency -> account -> balance (debits - credits, minor units) over all lines"
    )
    items: list[StatementLine]
    next_cursor: str | None = None


class CommissionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rate_bp: int | None = Field(ge=0, le=10_000, description="Basis points; null removes the override")
    reason: Text | None = Field(default=None, max_length=2000)


class CommissionOut(BaseModel):
    org_id: uuid.UUID
    rate_bp: int | None
    effective_rate_bp: int


class OnboardingLink(BaseModel):
    url: str


class WebhookAck(BaseModel):
    received: bool
    duplicate: bool


class ReconciliationOut(BaseModel):
    matched: bool
    currencies: dict[str, Any]
