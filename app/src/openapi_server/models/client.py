from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, model_validator

from ..addresses import ascii_address
from ._text import single_line


def _deliverable(value: str) -> str:
    ascii_address(value)  # SES takes ASCII mailboxes only; the domain may be Unicode
    return value


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(single_line)]
Email = Annotated[EmailStr, Field(max_length=320), AfterValidator(_deliverable)]
ClientStatus = Literal["active", "unsubscribed", "bounced", "complained"]


class ClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    email: Email
    company: Name | None = None


class ClientUpdate(BaseModel):
    """Fields to change; omitted fields stay as they are. `company` may be set to null."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    email: Email | None = None
    company: Name | None = None

    @model_validator(mode="after")
    def _required_not_null(self) -> ClientUpdate:
        for name in ("name", "email"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} may be omitted but not null")
        return self


class Client(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    email: str
    company: str | None
    status: ClientStatus
    created_at: datetime
    updated_at: datetime


class ClientList(BaseModel):
    items: list[Client]
    total: int
    limit: int
    offset: int
