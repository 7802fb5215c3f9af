"""What every emulator handler works with: the call it gets, and the conversions from
engine inputs to AWS API arguments."""

from __future__ import annotations

from typing import Any

from coldreach.runtime.model import reveal

Outputs = dict[str, Any]


class UnsupportedResource(Exception):
    """The program declared a resource type the moto backend cannot create."""

    def __init__(self, type_: str, name: str) -> None:
        super().__init__(
            f"the moto backend cannot create {type_} ({name!r}): no handler in "
            "coldreach/runtime/emulator/. Use the echo backend (coldreach plan) for it, "
            "or add a handler"
        )
        self.type = type_


class NotHeld(Exception):
    """Raised by a handler when moto cannot hold this particular resource: the backend then
    renders it (echo ids and outputs) and lists it as rendered, not deployed."""


class Call:
    """One registration: its names, its plain inputs and the outputs being built."""

    def __init__(self, urn: str, type_: str, name: str, inputs: dict[str, Any]) -> None:
        self.urn = urn
        self.type = type_
        self.name = name
        self.raw = inputs
        self.inputs: dict[str, Any] = reveal(inputs)
        self.outputs: Outputs = dict(inputs)

    def get(self, key: str, default: Any = None) -> Any:
        value = self.inputs.get(key)
        return default if value is None else value


def aws_tags(tags: dict[str, str] | None, key: str = "Key", value: str = "Value") -> list[dict]:
    return [{key: k, value: v} for k, v in (tags or {}).items()]


def tag_spec(resource: str, tags: dict[str, str] | None) -> list[dict[str, Any]]:
    return [{"ResourceType": resource, "Tags": aws_tags(tags)}] if tags else []


def drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def pascal(value: Any, renames: dict[str, str] | None = None) -> Any:
    """camelCase engine keys to the PascalCase of the AWS APIs (`targetValue` -> `TargetValue`),
    at every level; `renames` maps the keys whose AWS spelling differs."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            key = (renames or {}).get(k) or (k[:1].upper() + k[1:])
            out[key] = pascal(v, renames)
        return out
    if isinstance(value, list):
        return [pascal(v, renames) for v in value]
    return value
