"""What every emulator handler works with: the call it gets, and the conversions from
engine inputs to AWS API arguments."""

from __future__ import annotations

from typing import Any

from coldreach.runtime.model import Resource, reveal

Outputs = dict[str, Any]


class UnsupportedResource(Exception):
    """The program declared a resource type the moto backend cannot create."""

    def __init__(self, type_: str, name: str) -> None:
        super().__init__(
            f"the moto backend cannot create {type_} ({name!r}): no handler in "
            "coldreach/runtime/emulator/. Use the echo backend (`uv run coldreach plan`) for it, "
            "or add a handler"
        )
        self.type = type_


class NotHeld(Exception):
    """Raised by a handler when moto cannot hold this particular resource: the backend then
    renders it (echo ids and outputs) and lists it as rendered, not deployed."""


class UnsupportedChange(Exception):
    """A promotion would change a resource in a way the emulator cannot apply."""

    def __init__(self, type_: str, name: str, what: str) -> None:
        super().__init__(
            f"the moto backend cannot {what} {type_} ({name!r}) in a rehearsal: no "
            "updater or deleter in coldreach/runtime/emulator/ for it; add one"
        )
        self.type = type_


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

    def changed_from(self, old: Resource) -> set[str]:
        """The inputs whose value differs from what `old` was deployed with."""
        keys = set(self.inputs) | set(old.inputs)
        return {k for k in keys if self.inputs.get(k) != reveal(old.inputs.get(k))}

    def refuse_other_changes(self, old: Resource, handled: set[str]) -> None:
        other = self.changed_from(old) - handled - {"tagsAll"}
        if other:
            raise UnsupportedChange(self.type, self.name, f"update {', '.join(sorted(other))} of")


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
