"""`coldreach promote --stack STACK --to N`: the next stage of the route to phase N,
refused when it would lose data or a stage check fails."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from coldreach import promote, stacks
from coldreach.cli.options import phase_arg
from coldreach.cost import Estimate
from coldreach.errors import UserError
from coldreach.evaluation import evaluate_stack
from coldreach.hints import coldreach
from coldreach.promote import Promotion, Route


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "promote",
        help="move a stack one phase up, stage by stage, refusing anything that would lose data",
        description=(
            "Shows the stages of the route to --to and where STACK stands on it, evaluates "
            "the next stage offline (what would be created, updated, replaced or deleted, "
            "and what the bill does), refuses if a stateful resource would be replaced or "
            "deleted or a stage check fails, and otherwise writes the stage's keys to "
            "Pulumi.<stack>.yaml and prints the rest of the runbook."
        ),
    )
    p.add_argument("--stack", dest="stack_option", help="stack name: Pulumi.<stack>.yaml")
    # Also accepted positionally (`promote dev --to 2`); --stack is how the docs spell it.
    p.add_argument("stack", nargs="?", help=argparse.SUPPRESS)
    p.add_argument("--to", type=phase_arg, required=True, help="the next phase")
    p.add_argument("--dry-run", action="store_true", help="show the assessment, write nothing")
    p.add_argument(
        "--confirm",
        action="append",
        default=[],
        metavar="FACT",
        help="attest a run-time fact a stage needs (shards-verified, held-10, held-50, "
        "celery-drained); the refusal says what to check first",
    )
    p.add_argument(
        "--outputs",
        type=Path,
        metavar="FILE",
        help="the deployed stack's outputs (`pulumi stack output --json`): stages check the "
        "deployment caught up with the stack file",
    )
    p.set_defaults(run=command)


def _stack_name(args: argparse.Namespace) -> str:
    given = {s for s in (args.stack_option, args.stack) if s}
    if len(given) != 1:
        raise UserError("name one stack: --stack STACK (for example --stack dev)")
    return given.pop()


def command(args: argparse.Namespace, out: Console, err: Console) -> int:
    root = stacks.find_root()
    config = stacks.load(root, _stack_name(args))
    stack = config.stack
    if config.phase == args.to and args.to not in promote.ROUTES:
        out.print(f"{stack} is already at phase {args.to}: nothing to do.")
        return 0
    route = promote.route_to(config, args.to)
    confirmed = frozenset(args.confirm)
    outputs = _outputs(args.outputs)
    position = route.position(config, confirmed)
    with err.status(f"Evaluating {stack} at every stage of phase {route.source} -> {args.to}..."):
        walked = promote.walk(root, config, route)
        current = walked[0] if position == 0 else evaluate_stack(stack, root=root)
    render_route(route, position, stack, promote.stage_costs(walked), out)
    if position == len(route.stages):
        out.print(f"{stack} is already at phase {args.to}: nothing to do.")
        return 0
    stage = route.stages[position]
    if not stage.sets:
        out.print(f"[red bold]Refused:[/] stage {escape(stage.name)!r} is a command: {stage.does}.")
        for fact in stage.missing(confirmed):
            out.print(
                f"  - not attested: {fact.name}. Check {escape(fact.how)}; then add "
                f"--confirm {fact.name}",
                soft_wrap=True,
            )
        out.print(f"How, and what to do when it fails: {route.runbook}")
        return 1
    promotion = promote.assess(
        config, route, stage, current, walked[position + 1], outputs, confirmed
    )
    render(promotion, out, err)

    if promotion.refused:
        out.print(
            f"[red bold]Refused:[/] stage {escape(stage.name)!r} would lose data or is not ready."
        )
        for step in promotion.blocked:
            out.print(f"  - {escape(step.reason())}")
        for reason in promotion.refusals:
            out.print(f"  - {escape(reason)}")
        if promotion.blocked:
            out.print("Fix the program (same names, `aliases` for moves) and try again.")
        return 1
    stack_file = root / f"Pulumi.{stack}.yaml"
    if args.dry_run:
        out.print(f"Dry run: {stack_file.name} is unchanged.")
        return 0
    promote.apply(stack_file, stage)
    written = ", ".join(f"cold-reach:{k}: {v}" for k, v in stage.sets.items())
    out.print(f"[green]{stack_file.name}: {escape(written)}.[/] Now, in order:")
    lines = (
        promote.runbook(stack, route.target, config.region or "us-east-1")
        if route.target == 2
        else promote.stage_runbook(stack, stage, promotion.retired_urns)
    )
    for i, line in enumerate(lines, 1):
        out.print(f"  {i}. {escape(line)}", soft_wrap=True, highlight=False)
    out.print(f"What each step does, what to watch and how to roll back: {route.runbook}")
    return 0


def _outputs(path: Path | None) -> dict[str, object]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UserError(f"--outputs {path}: {error}") from None
    if not isinstance(data, dict):
        raise UserError(
            f"--outputs {path}: not the JSON object `pulumi stack output --json` writes"
        )
    return data


def render_route(
    route: Route, position: int, stack: str, costs: list[Estimate], console: Console
) -> None:
    """Every stage with its status and what the month costs after it (costs[0]: the start)."""
    table = Table(title=f"{stack}: phase {route.source} -> {route.target}")
    table.add_column("#", justify="right")
    table.add_column("stage", no_wrap=True)
    table.add_column("status")
    table.add_column("monthly after", justify="right", no_wrap=True)
    table.add_column("what it does", overflow="fold")
    table.add_column("rollback", overflow="fold")
    for i, stage in enumerate(route.stages):
        status = "done" if i < position else ("[bold]next[/]" if i == position else "later")
        after, delta = costs[i + 1].monthly_usd, costs[i + 1].monthly_usd - costs[i].monthly_usd
        table.add_row(
            str(i + 1),
            escape(stage.name),
            status,
            f"${after:,.2f} ({'+' if delta >= 0 else '-'}${abs(delta):,.2f})",
            escape(stage.does),
            escape(stage.rollback),
        )
    console.print(table)
    console.print(f"Monthly cost at the start (phase {route.source}): ${costs[0].monthly_usd:,.2f}")


def render(p: Promotion, console: Console, err: Console) -> None:
    console.print(
        f"[bold]{p.stack}[/]: stage {p.stage.name!r}: "
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
        op = step.op + (" (stateful)" if step.stateful and step.destructive else "")
        table.add_row(
            f"[{colours[step.op]}]{op}[/]",
            escape(step.resource.name),
            escape(step.resource.type),
            escape(", ".join(step.inputs)),
        )
    console.print(table)
    retired = sorted(s.resource.name for s in p.retired)
    if retired:
        console.print("Retired on purpose by this stage: " + escape(", ".join(retired)))
    before = p.cost_before.monthly_usd if p.cost_before else 0.0
    after = p.cost_after.monthly_usd if p.cost_after else 0.0
    sign = "+" if p.cost_delta >= 0 else "-"
    partial = " [yellow](incomplete: see the warning)[/]" if p.unpriced else ""
    console.print(
        f"Monthly cost: ${before:,.2f} -> ${after:,.2f} ({sign}${abs(p.cost_delta):,.2f})"
        f"{partial}; details: "
        + escape(coldreach(f"cost --stack {p.stack} --phase {p.target_phase}")),
        soft_wrap=True,
    )
    if p.unpriced:
        err.print(
            "[yellow]warning:[/] no price for "
            + escape(", ".join(p.unpriced))
            + ": those items count as $0, so the totals and the delta leave them out "
            "(a misspelled instance class or node type looks like this)",
            soft_wrap=True,
        )
