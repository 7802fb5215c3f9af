from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Error(BaseModel):
    """Every 4xx body: `detail` is a message or a list naming the offending fields."""

    detail: str | list[ErrorDetail] | Any


class Health(BaseModel):
    status: str


class UnsubscribeResult(BaseModel):
    status: str
    client_id: int


class WebhookResult(BaseModel):
    status: str
    updated: int = 0
