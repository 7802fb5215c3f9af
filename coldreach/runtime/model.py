"""What an offline run produces: the resources the program declared, and its outputs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pulumi import FileArchive
from pulumi.runtime.rpc import _special_secret_sig, _special_sig_key

SECRET_MARK = "[secret]"
ARCHIVE = "archive"


def is_archive(value: Any) -> bool:
    """A file archive input as `normalize` records it: `{"archive": <path>}`."""
    return isinstance(value, dict) and set(value) == {ARCHIVE}


def secret(value: Any) -> dict[str, Any]:
    """Wraps a value the way the engine marks secrets on the wire."""
    return {_special_sig_key: _special_secret_sig, "value": value}


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(_special_sig_key) == _special_secret_sig


def normalize(value: Any) -> Any:
    """Whole floats back to ints: the wire format has only doubles, so 5432 arrives as 5432.0.
    A file archive (a Lambda function's code) becomes `{"archive": <path>}`, as JSON."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, FileArchive):
        return {ARCHIVE: value.path}
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    return value


def reveal(value: Any) -> Any:
    """The value with every secret wrapper removed (for assertions and backends)."""
    if is_secret(value):
        return reveal(value["value"])
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


def mask(value: Any) -> Any:
    """The value with every secret replaced by `[secret]` (for anything printed)."""
    if is_secret(value):
        return SECRET_MARK
    if isinstance(value, dict):
        return {k: mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


@dataclass
class Resource:
    """One registration, as the engine saw it. Inputs keep secret wrappers; see `reveal`."""

    urn: str
    type: str
    name: str
    id: str | None
    parent: str | None
    custom: bool
    protect: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    dependencies: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    delete_before_replace: bool = False
    ignore_changes: list[str] = field(default_factory=list)

    def get(self, key: str, default: Any = None) -> Any:
        """A plain (revealed) input value."""
        return reveal(self.inputs.get(key, default))

    def out(self, key: str, default: Any = None) -> Any:
        """A plain (revealed) output value, e.g. an ARN the backend assigned."""
        return reveal(self.outputs.get(key, default))

    def to_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "id": self.id,
            "parent": self.parent,
            "protect": self.protect,
            # What the engine orders this resource after: explicit `depends_on` and every
            # resource an input came from (the SDK sends both, components expanded).
            "dependsOn": sorted(set(self.dependencies)),
            "inputs": mask(self.inputs),
        }


@dataclass
class Deployment:
    """The result of evaluating the program once for one stack and phase."""

    stack: str
    project: str
    resources: list[Resource]
    outputs: dict[str, Any]
    messages: list[tuple[str, str]] = field(default_factory=list)
    """(severity, text) logged by the program, e.g. a skipped optional feature."""

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources)

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def by_urn(self, urn: str) -> Resource:
        for r in self.resources:
            if r.urn == urn:
                return r
        raise KeyError(urn)

    def by_id(self, id_: str) -> Resource:
        """The resource with this physical id; inputs refer to each other this way."""
        if id_:
            for r in self.resources:
                if r.id == id_:
                    return r
        raise KeyError(id_)

    def resolve(self, ref: str) -> Resource:
        """The resource an input refers to: by id, or by ARN where the API takes ARNs
        (a task definition, a role, a log group)."""
        try:
            return self.by_id(ref)
        except KeyError:
            for r in self.resources:
                if r.outputs.get("arn") == ref:
                    return r
        raise KeyError(ref)

    def named(self, name: str) -> Resource:
        for r in self.resources:
            if r.name == name:
                return r
        raise KeyError(name)

    def output(self, key: str) -> Any:
        return reveal(self.outputs[key])

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            # Registration order depends on how outputs resolve; URN order does not.
            "resources": [r.to_json() for r in sorted(self.resources, key=lambda r: r.urn)],
            "outputs": mask(self.outputs),
        }
