"""Stops a deploy whose real preview would replace or delete data (`coldreach gate`).

Reads the output of `pulumi preview --json` (top level `steps`, each with `op`,
`urn` and, for replacements, `replaceReasons`). In that output a replacement
shows as `replace` (`create-replacement` / `delete-replaced` only with
--show-replacement-steps); all of them, and `delete`, fail the gate when the
resource's type is stateful. The one exception is a plain `delete` of a resource
a done promotion stage retires by name (the cutover's Redis once the stack file
says retireEcs; `coldreach gate --stack`): that stage's preconditions were
checked by `coldreach promote` before the stack file could say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coldreach import graph

DESTRUCTIVE_OPS = frozenset({"replace", "delete", "delete-replaced", "create-replacement"})


@dataclass(frozen=True)
class Finding:
    urn: str
    type: str
    op: str
    reasons: tuple[str, ...]

    def describe(self) -> str:
        why = f" (replace reasons: {', '.join(self.reasons)})" if self.reasons else ""
        return f"{self.op}: {self.urn}{why}"


def type_of(urn: str) -> str:
    """The resource type in a URN: the last segment of its qualified type chain."""
    parts = urn.split("::")
    if len(parts) < 4:
        raise ValueError(f"not a Pulumi URN: {urn!r}")
    return parts[2].split("$")[-1]


def name_of(urn: str) -> str:
    return urn.split("::")[-1]


def check(preview: dict[str, Any], retired: frozenset[str] = frozenset()) -> list[Finding]:
    steps = preview.get("steps")
    if not isinstance(steps, list):
        raise ValueError("no 'steps' list: is this the output of `pulumi preview --json`?")
    findings: list[Finding] = []
    for step in steps:
        op = str(step.get("op", ""))
        urn = str(step.get("urn", ""))
        if op not in DESTRUCTIVE_OPS:
            continue
        kind = type_of(urn)
        if op == "delete" and name_of(urn) in retired:
            continue
        if kind in graph.STATEFUL_TYPES:
            reasons = tuple(str(r) for r in step.get("replaceReasons") or ())
            findings.append(Finding(urn, kind, op, reasons))
    return findings
