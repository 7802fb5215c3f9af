"""How a `cold-reach:*` key is declared, read and documented.

A key is declared once (infra/config/keys.py) with its type, default, what is
allowed, the phases it acts in and a description. Reading, the README's key
table and the unknown-key check all come from those declarations.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PROJECT = "cold-reach"
ALL_PHASES = (1, 2, 3)


class ConfigError(Exception):
    """A stack configuration value is missing or not allowed."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        super().__init__(f"{qualified(key)} = {value!r} is not allowed: {allowed}")


class UnknownKeyError(ConfigError):
    """A `cold-reach:*` key that no declaration knows (a typo would otherwise pass silently)."""

    def __init__(self, key: str, suggestion: str | None) -> None:
        hint = f"did you mean {qualified(suggestion)}?" if suggestion else "see the README's table"
        Exception.__init__(self, f"{qualified(key)} is not a known key: {hint}")
        self.key, self.value, self.allowed = key, None, hint


def qualified(key: str) -> str:
    return key if ":" in key else f"{PROJECT}:{key}"


# --- value types ----------------------------------------------------------------


class Invalid(ValueError):
    """Raised by a value type: the raw value is not allowed (the message says what is)."""


@dataclass(frozen=True)
class Integer:
    minimum: int = 1
    maximum: int | None = None
    type_name = "integer"

    @property
    def allowed(self) -> str:
        upper = f" and <= {self.maximum}" if self.maximum is not None else ""
        return f"a whole number >= {self.minimum}{upper}"

    def read(self, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise Invalid("a whole number") from None
        if value < self.minimum or (self.maximum is not None and value > self.maximum):
            raise Invalid(self.allowed, value)
        return value


@dataclass(frozen=True)
class OneOf:
    """A whole number from a fixed list (e.g. log retention days)."""

    values: tuple[int, ...]
    label: str = "one of"
    type_name = "integer"

    @property
    def allowed(self) -> str:
        return f"{self.label} {self.values}"

    def read(self, raw: str) -> int:
        value = Integer(minimum=-(2**31)).read(raw)
        if value not in self.values:
            raise Invalid(self.allowed, value)
        return value


@dataclass(frozen=True)
class Flag:
    type_name = "boolean"
    allowed = "true or false"

    def read(self, raw: str) -> bool:
        text = raw.strip().lower()
        if text in ("true", "yes", "1"):
            return True
        if text in ("false", "no", "0"):
            return False
        raise Invalid(self.allowed)


@dataclass(frozen=True)
class Text:
    pattern: str
    allowed: str
    type_name = "string"

    def read(self, raw: str) -> str:
        if not re.match(self.pattern, raw):
            raise Invalid(self.allowed)
        return raw


@dataclass(frozen=True)
class AnyText:
    allowed: str
    type_name = "string"

    def read(self, raw: str) -> str:
        return raw


@dataclass(frozen=True)
class Cidr:
    smallest: int
    largest: int
    type_name = "string"

    @property
    def allowed(self) -> str:
        return f"an IPv4 network from /{self.smallest} to /{self.largest}"

    def read(self, raw: str) -> str:
        try:
            net = ipaddress.ip_network(raw, strict=True)
        except ValueError:
            raise Invalid("an IPv4 network in CIDR form, e.g. 10.40.0.0/16") from None
        if net.version != 4 or not self.smallest <= net.prefixlen <= self.largest:
            raise Invalid(f"{self.allowed} (room for 4 subnets)")
        return str(net)


@dataclass(frozen=True)
class JsonObject:
    allowed: str
    type_name = "object"

    def read(self, raw: str) -> dict[str, Any]:
        try:
            value = json.loads(raw)
        except ValueError:
            raise Invalid(self.allowed) from None
        if not isinstance(value, dict):
            raise Invalid(self.allowed)
        return value


ValueType = Integer | OneOf | Flag | Text | AnyText | Cidr | JsonObject


# --- declarations ---------------------------------------------------------------


@dataclass(frozen=True)
class Derived:
    """A default computed from the stack name and the keys read before this one."""

    compute: Callable[[str, Mapping[str, Any]], Any]
    text: str
    """How the default reads in the docs, e.g. "true on the prod stack"."""


@dataclass(frozen=True)
class Key:
    name: str
    """Without the project prefix, as in `Pulumi.<stack>.yaml`: `dbInstanceClass`."""
    group: str
    """Which part of the settings it fills: `database`, `service:web`, ..."""
    field: str
    """The settings attribute it sets within its group."""
    type: ValueType
    default: Any
    """A value, None for "not set", or a `Derived` default."""
    description: str
    phases: tuple[int, ...] = ALL_PHASES
    """The phases in which the key changes anything."""

    def default_for(self, stack: str, read: Mapping[str, Any]) -> Any:
        if isinstance(self.default, Derived):
            return self.default.compute(stack, read)
        return self.default

    @property
    def default_text(self) -> str:
        if isinstance(self.default, Derived):
            return self.default.text
        if self.default is None:
            return "not set"
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        return str(self.default)


@dataclass
class Schema:
    keys: Sequence[Key]
    by_name: dict[str, Key] = field(init=False)

    def __post_init__(self) -> None:
        self.by_name = {k.name: k for k in self.keys}
        if len(self.by_name) != len(self.keys):
            raise ValueError("a config key is declared twice")

    def read(self, stack: str, get: Callable[[str], str | None]) -> dict[str, Any]:
        """Every key's value (set or default), in declaration order, by key name."""
        values: dict[str, Any] = {}
        for key in self.keys:
            raw = get(key.name)
            if raw is None or str(raw) == "":
                values[key.name] = key.default_for(stack, values)
                continue
            try:
                values[key.name] = key.type.read(str(raw))
            except Invalid as err:
                allowed = err.args[0]
                shown = err.args[1] if len(err.args) > 1 else raw
                raise ConfigError(key.name, shown, allowed) from None
        return values

    def check_known(self, names: Sequence[str]) -> None:
        """Refuses a `cold-reach:*` key no declaration knows, suggesting the nearest one."""
        lowered = {k.lower(): k for k in self.by_name}
        for name in names:
            if name in self.by_name:
                continue
            close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
            raise UnknownKeyError(name, lowered[close[0]] if close else None)

    def ignored_in(self, phase: int, names: Sequence[str]) -> list[str]:
        """Keys set on the stack that change nothing in this phase."""
        return [n for n in names if n in self.by_name and phase not in self.by_name[n].phases]

    def markdown(self) -> str:
        """The README's table of keys, grouped as declared."""
        lines = [
            "| Key | Type | Default | Phases | Allowed | What it does |",
            "|---|---|---|---|---|---|",
        ]
        for key in self.keys:
            phases = ", ".join(str(p) for p in key.phases)
            lines.append(
                f"| `{key.name}` | {key.type.type_name} | {key.default_text} | {phases} "
                f"| {key.type.allowed} | {key.description} |"
            )
        return "\n".join(lines) + "\n"
