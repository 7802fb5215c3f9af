"""`coldreach promote STACK --to N`: move a stack one phase up, refusing anything that loses data.

Both phases are evaluated offline. Every resource of the current phase is
matched by URN in the target: gone means delete, a changed replacement-forcing
input (coldreach/replacement.py) means replace. A stateful resource that would
be deleted or replaced stops the promotion, naming the resource and the input.
Otherwise the stack file's phase is set and the runbook printed; the real
`pulumi preview` and `pulumi up` stay with the person promoting.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from coldreach import cost, stacks
from coldreach.plan import run_program
from coldreach.replacement import Step, compare
from coldreach.runtime import Deployment


@dataclass
class Promotion:
    stack: str
    current_phase: int
    target_phase: int
    steps: list[Step] = field(default_factory=list)
    cost_before: float = 0.0
    cost_after: float = 0.0

    @property
    def blocked(self) -> list[Step]:
        return [s for s in self.steps if s.blocking]

    @property
    def cost_delta(self) -> float:
        return round(self.cost_after - self.cost_before, 2)

    def of(self, op: str) -> list[Step]:
        return [s for s in self.steps if s.op == op]


def assess(stack: str, current: Deployment, target: Deployment) -> Promotion:
    return Promotion(
        stack=stack,
        current_phase=int(current.output("phase")),
        target_phase=int(target.output("phase")),
        steps=compare(current, target),
        cost_before=cost.estimate_stack(stack, deployment=current).monthly_usd,
        cost_after=cost.estimate_stack(stack, deployment=target).monthly_usd,
    )


_PHASE_LINE = re.compile(r"^(\s*)cold-reach:phase:.*$", re.MULTILINE)


def set_phase(path: Path, phase: int) -> None:
    """Rewrites only the phase line of a stack file, keeping comments and order."""
    text = path.read_text()
    if _PHASE_LINE.search(text):
        text = _PHASE_LINE.sub(lambda m: f"{m.group(1)}cold-reach:phase: {phase}", text, count=1)
    elif re.search(r"^config:\s*$", text, re.MULTILINE):
        text = re.sub(
            r"^config:\s*$", f"config:\n  cold-reach:phase: {phase}", text, count=1, flags=re.M
        )
    else:
        text = text.rstrip("\n") + f"\nconfig:\n  cold-reach:phase: {phase}\n"
    # Write beside and rename: an interrupted promotion never leaves half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    Path(tmp).replace(path)


def runbook(stack: str, phase: int) -> list[str]:
    return [
        f"pulumi preview --diff --stack {stack}",
        f"pulumi preview --json --stack {stack} > preview.json && coldreach gate preview.json",
        "aws rds create-db-snapshot --db-instance-identifier "
        f'"$(pulumi stack output db_identifier --stack {stack})" '
        f"--db-snapshot-identifier {stack}-before-phase-{phase}-$(date +%Y%m%d%H%M)",
        f"pulumi up --stack {stack}",
        f"coldreach verify --stack {stack}",
    ]


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


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from coldreach.plan import phase_arg

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
    from coldreach.cli import UserError

    root = stacks.find_root()
    config = stacks.load(root, args.stack)
    current_phase = int(config.config.get(f"{config.project}:phase", "1"))
    if args.to == current_phase:
        out.print(f"{args.stack} is already at phase {current_phase}: nothing to do.")
        return 0
    if args.to != current_phase + 1:
        raise UserError(
            f"{args.stack} is at phase {current_phase}: promote one phase at a time "
            f"(--to {current_phase + 1}); going down is not a promotion and is done by hand"
        )
    with err.status(f"Evaluating {args.stack} at phase {current_phase} and {args.to}..."):
        current = run_program(args.stack, root=root)
        target = run_program(args.stack, args.to, root=root)
        promotion = assess(args.stack, current, target)
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
    set_phase(stack_file, args.to)
    out.print(f"[green]{stack_file.name}: cold-reach:phase set to {args.to}.[/] Now, in order:")
    for i, line in enumerate(runbook(args.stack, args.to), 1):
        out.print(f"  {i}. {escape(line)}", soft_wrap=True)
    out.print("The runbook with what to watch and how to roll back: docs/promotion.md")
    return 0
