"""The send record: key `client_id`, value `{"message_id", "client_id"}` as JSON, trace headers.

The key keeps one client's messages on one partition. The record carries the client id
so a consumer finds the message's shard without a lookup. Anything that does not decode
to that shape is a poison record: it goes to the dead-letter topic, never blocks the
partition.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..db import MAX_ID

VERSION = 1

Headers = list[tuple[str, str | bytes | None]]


class PoisonRecord(ValueError):
    """A record the consumer cannot act on; the message says why."""


@dataclass(frozen=True)
class SendRecord:
    message_id: int
    client_id: int

    @property
    def key(self) -> bytes:
        return str(self.client_id).encode()

    def value(self) -> bytes:
        return json.dumps(
            {"v": VERSION, "message_id": self.message_id, "client_id": self.client_id},
            separators=(",", ":"),
        ).encode()


def _id(data: dict[str, object], name: str) -> int:
    value = data.get(name)
    if type(value) is not int or not 1 <= value <= MAX_ID:
        raise PoisonRecord(f"{name} must be an integer between 1 and {MAX_ID}, got {value!r}")
    return value


def decode(value: bytes | None) -> SendRecord:
    if not value:
        raise PoisonRecord("empty record value")
    try:
        data = json.loads(value)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PoisonRecord(f"value is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PoisonRecord("value is not a JSON object")
    if data.get("v", VERSION) != VERSION:
        raise PoisonRecord(f"unknown record version {data.get('v')!r}")
    return SendRecord(message_id=_id(data, "message_id"), client_id=_id(data, "client_id"))


def carrier_of(
    headers: Sequence[tuple[str, str | bytes | None]] | Mapping[str, str | bytes | None] | None,
) -> dict[str, str]:
    """A W3C propagation carrier from a record's headers (undecodable ones skipped)."""
    items = headers.items() if isinstance(headers, Mapping) else headers or []
    carrier: dict[str, str] = {}
    for name, raw in items:
        if isinstance(raw, str):
            carrier[name] = raw
        elif isinstance(raw, bytes):
            try:
                carrier[name] = raw.decode()
            except UnicodeDecodeError:
                continue
    return carrier
