"""The `coldreach` command: parse, call the core, render. Each subcommand is a module here.

A command module defines `add_command(subparsers)`, which registers its parser
and sets `run=<function(args, out, err) -> exit code>` as the parser default.
The work itself lives in the core modules of `coldreach` (evaluation, cost,
policy_eval, promote, rehearsal, gate, local, verify), which never import this package.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from rich.console import Console
from rich.markup import escape

from coldreach import stacks
from coldreach.cli import cost, gate, local, plan, promote, verify
from coldreach.errors import UserError
from coldreach.runtime import ProgramError

COMMANDS: list[ModuleType] = [plan, cost, promote, gate, verify, local]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coldreach",
        description="Cold Reach infrastructure tools (offline: no AWS account, no Pulumi CLI).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.add_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out, err = Console(emoji=False), Console(stderr=True, emoji=False)
    try:
        return int(args.run(args, out, err))
    except (stacks.StackError, ProgramError, UserError) as error:
        err.print(f"[red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
