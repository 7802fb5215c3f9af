"""`coldreach gate PREVIEW.json`: stop a deploy whose real preview would replace or delete data.

Reads the output of `pulumi preview --json` (top level `steps`, each with `op`,
`urn` and, for replacements, `replaceReasons`). In that output a replacement
shows as `replace` (`create-replacement` / `delete-replaced` only with
--show-replacement-steps); all of them, and `delete`, fail the gate when the
resource's type is stateful.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

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


def check(preview: dict[str, Any]) -> list[Finding]:
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
        if kind in graph.STATEFUL_TYPES:
            reasons = tuple(str(r) for r in step.get("replaceReasons") or ())
            findings.append(Finding(urn, kind, op, reasons))
    return findings


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "gate",
        help="fail when a `pulumi preview --json` would replace or delete a stateful resource",
        description=(
            "Reads `pulumi preview --json` output (a file, or - for standard input) and exits 1 "
            "when any step would replace or delete a stateful resource (RDS, ElastiCache, MSK, "
            "EKS, ECR, S3, Secrets Manager), printing the replace reasons."
        ),
    )
    p.add_argument("preview", help="the JSON file, or - for standard input")
    p.set_defaults(run=command)


def command(args: argparse.Namespace, out: Console, err: Console) -> int:
    from coldreach.cli import UserError

    try:
        text = sys.stdin.read() if args.preview == "-" else Path(args.preview).read_text()
        findings = check(json.loads(text))
    except FileNotFoundError:
        raise UserError(f"no such file: {args.preview}") from None
    except (json.JSONDecodeError, ValueError) as error:
        raise UserError(f"{args.preview}: {error}") from None
    if not findings:
        out.print("[green]gate passed:[/] no stateful resource is replaced or deleted.")
        return 0
    out.print(f"[red bold]gate failed:[/] {len(findings)} stateful resource(s) would lose data:")
    for finding in findings:
        out.print(f"  - {escape(finding.describe())}", soft_wrap=True)
    return 1
