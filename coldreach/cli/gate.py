"""`coldreach gate PREVIEW.json`: stop a deploy whose real preview would replace or delete data."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from coldreach import gate, promote, stacks
from coldreach.errors import UserError


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
    p.add_argument(
        "--stack",
        help="the stack previewed (Pulumi.<stack>.yaml): deleting what a done promotion stage "
        "retires by name passes (retireEcs: Redis and its secrets)",
    )
    p.set_defaults(run=command)


def command(args: argparse.Namespace, out: Console, err: Console) -> int:
    retired = frozenset[str]()
    if args.stack:
        retired = promote.retired_by(stacks.load(stacks.find_root(), args.stack))
        if retired:
            out.print("Retired on purpose by the stack file: " + escape(", ".join(sorted(retired))))
    try:
        text = sys.stdin.read() if args.preview == "-" else Path(args.preview).read_text()
        findings = gate.check(json.loads(text), retired)
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
