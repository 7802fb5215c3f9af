"""The `coldreach` command: offline plan of a stack (more subcommands join as they land)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape

from coldreach import plan, stacks
from coldreach.runtime import ProgramError


def _phase(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"phase must be 1, 2 or 3, not {text!r}") from None
    if value not in (1, 2, 3):
        raise argparse.ArgumentTypeError(f"phase must be 1, 2 or 3, not {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coldreach",
        description="Cold Reach infrastructure tools (offline: no AWS account, no Pulumi CLI).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "plan",
        help="evaluate the program for a stack and show what it declares",
        description=(
            "Runs the Pulumi program for STACK under the offline runtime (echo backend) "
            "and prints the resource tree, counts by type and the stack outputs."
        ),
    )
    p.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    p.add_argument("--phase", type=_phase, help="evaluate at this phase, not the configured one")
    p.add_argument("--json", action="store_true", help="print one JSON document instead")
    return parser


def _plan(args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.json:
        deployment = plan.run_program(args.stack, args.phase)
        print(json.dumps(plan.to_json(deployment), indent=2, sort_keys=False))
        return 0
    with err.status(f"Evaluating stack {args.stack} offline..."):
        deployment = plan.run_program(args.stack, args.phase)
    plan.render(deployment, out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out, err = Console(emoji=False), Console(stderr=True, emoji=False)
    try:
        if args.command == "plan":
            return _plan(args, out, err)
    except (stacks.StackError, ProgramError) as error:
        err.print(f"[red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
