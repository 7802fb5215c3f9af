from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict

from ._text import header_text, multi_line

EmailStatusValue = Literal["queued", "sending", "sent", "failed", "suppressed"]


class EmailSendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: Annotated[int, Strict(), Field(ge=1, le=2**31 - 1)]
    subject: Annotated[str, Field(min_length=1, max_length=500), AfterValidator(header_text)]
    body: Annotated[str, Field(min_length=1, max_length=100_000), AfterValidator(multi_line)]


class EmailAccepted(BaseModel):
    id: int
    status: EmailStatusValue


class EmailStatus(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    client_id: int
    status: EmailStatusValue
    attempts: int
    provider_message_id: str | None
    needs_reconciliation: bool = Field(
        description="True when a send may or may not have left; it is never retried blindly"
    )
    last_error: str | None
    created_at: datetime
    updated_at: datetime
