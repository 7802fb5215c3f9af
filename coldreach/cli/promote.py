"""`coldreach promote STACK --to N`: one phase up, refused when it would lose data."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from coldreach import promote, stacks
from coldreach.cli.options import phase_arg
from coldreach.promote import Promotion


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "promote",
        help="move a stack one phase up, refusing anything that would lose data",
        description=(
            "Evaluates STACK at its current phase and at --to offline, shows what would be "
            "created, updated, replaced or deleted and what the bill does, refuses if a "
            "stateful resource would be replaced or deleted, and otherwise sets the phase "
            "in Pulumi.<stack>.yaml and prints the runbook."
        ),
    )
    p.add_argument("stack", help="stack name: Pulumi.<stack>.yaml")
    p.add_argument("--to", type=phase_arg, required=True, help="the next phase")
    p.add_argument("--dry-run", action="store_true", help="show the assessment, write nothing")
    p.set_defaults(run=command)


def command(args: argparse.Namespace, out: Console, err: Console) -> int:
    root = stacks.find_root()
    current_phase = promote.current_phase(root, args.stack)
    if args.to == current_phase:
        out.print(f"{args.stack} is already at phase {current_phase}: nothing to do.")
        return 0
    promote.check_step(args.stack, current_phase, args.to)
    with err.status(f"Evaluating {args.stack} at phase {current_phase} and {args.to}..."):
        promotion = promote.evaluate_promotion(root, args.stack, args.to)
    render(promotion, out)

    if promotion.blocked:
        out.print("[red bold]Refused:[/] the promotion would lose data.")
        for step in promotion.blocked:
            out.print(f"  - {escape(step.reason())}")
        out.print("Fix the program (same names, `aliases` for moves) and try again.")
        return 1
    stack_file = root / f"Pulumi.{args.stack}.yaml"
    if args.dry_run:
        out.print(f"Dry run: {stack_file.name} is unchanged.")
        return 0
    promote.set_phase(stack_file, args.to)
    out.print(f"[green]{stack_file.name}: cold-reach:phase set to {args.to}.[/] Now, in order:")
    for i, line in enumerate(promote.runbook(args.stack, args.to), 1):
        out.print(f"  {i}. {escape(line)}", soft_wrap=True)
    out.print("The runbook with what to watch and how to roll back: docs/promotion.md")
    return 0


def render(p: Promotion, console: Console) -> None:
    console.print(
        f"[bold]{p.stack}[/]: phase {p.current_phase} -> {p.target_phase}: "
        f"{len(p.of('create'))} to create, {len(p.of('update'))} to update, "
        f"{len(p.of('replace'))} to replace, {len(p.of('delete'))} to delete"
    )
    table = Table(title="Changes")
    table.add_column("op")
    table.add_column("resource", overflow="fold")
    table.add_column("type", overflow="fold")
    table.add_column("inputs", overflow="fold")
    colours = {"create": "green", "update": "yellow", "replace": "red", "delete": "red"}
    for step in sorted(p.steps, key=lambda s: (s.op, s.resource.name)):
        table.add_row(
            f"[{colours[step.op]}]{step.op}[/]",
            escape(step.resource.name),
            escape(step.resource.type),
            escape(", ".join(step.inputs)),
        )
    console.print(table)
    sign = "+" if p.cost_delta >= 0 else "-"
    console.print(
        f"Monthly cost: ${p.cost_before:,.2f} -> ${p.cost_after:,.2f} "
        f"({sign}${abs(p.cost_delta):,.2f}); details: coldreach cost --stack {p.stack} "
        f"--phase {p.target_phase}"
    )
