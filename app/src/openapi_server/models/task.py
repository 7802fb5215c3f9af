from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    model_validator,
)

from ._text import single_line

Title = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(single_line)]
ClientId = Annotated[int, Strict(), Field(ge=1, le=2**31 - 1)]


def _reasonable(value: datetime | None) -> datetime | None:
    if value is not None and not 1970 <= value.year <= 9998:
        raise ValueError("must be between 1970 and 9998")
    return value.astimezone(UTC) if value is not None else None


def _text_only(value: object) -> object:
    # An RFC 3339 string, never a number of seconds (which pydantic would otherwise take).
    if value is not None and not isinstance(value, str | datetime):
        raise ValueError("must be an RFC 3339 date-time string")
    return value


DueAt = Annotated[AwareDatetime | None, BeforeValidator(_text_only), AfterValidator(_reasonable)]


class TaskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: ClientId
    title: Title
    due_at: DueAt = Field(default=None, description="RFC 3339 date-time with a UTC offset")


class TaskUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    due_at: DueAt = None
    done: Annotated[bool, Strict()] | None = None

    @model_validator(mode="after")
    def _required_not_null(self) -> TaskUpdate:
        for name in ("title", "done"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} may be omitted but not null")
        return self


class Task(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    client_id: int
    title: str
    due_at: datetime | None
    done: bool
    created_at: datetime
    updated_at: datetime


class TaskList(BaseModel):
    items: list[Task]
    total: int
    limit: int
    offset: int
