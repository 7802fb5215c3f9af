"""Arguments more than one command takes."""

from __future__ import annotations

import argparse


def phase_arg(text: str) -> int:
    """argparse type for --phase."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"phase must be 1, 2 or 3, not {text!r}") from None
    if value not in (1, 2, 3):
        raise argparse.ArgumentTypeError(f"phase must be 1, 2 or 3, not {value}")
    return value


def stack_options(p: argparse.ArgumentParser, verb: str) -> None:
    """--stack, --phase and --json, as `plan` and `cost` take them."""
    p.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    p.add_argument("--phase", type=phase_arg, help=f"{verb} this phase, not the configured one")
    p.add_argument("--json", action="store_true", help="print one JSON document instead")
