"""`coldreach plan`: the offline preview of one stack (resource tree, outputs, notes)."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from coldreach import stacks
from coldreach.runtime import Backend, Deployment, EchoBackend, evaluate
from coldreach.runtime.model import mask
from policies import offline as policy


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


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "plan",
        help="evaluate the program for a stack and show what it declares",
        description=(
            "Runs the Pulumi program for STACK under the offline runtime (echo backend) "
            "and prints the resource tree, counts by type and the stack outputs."
        ),
    )
    stack_options(p, "evaluate")
    p.set_defaults(run=command)


def command(args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.json:
        deployment = run_program(args.stack, args.phase)
        print(json.dumps(to_json(deployment), indent=2))
        return 0
    with err.status(f"Evaluating stack {args.stack} offline..."):
        deployment = run_program(args.stack, args.phase)
    render(deployment, out)
    return 0


def run_program(
    stack: str,
    phase: int | None = None,
    *,
    root: Path | None = None,
    backend: Backend | None = None,
    overrides: dict[str, str] | None = None,
) -> Deployment:
    """Evaluates the program for `stack` (optionally at another phase or with extra config).

    `overrides` take fully qualified keys (`cold-reach:dbInstanceClass`). Raises
    `stacks.StackError` for a missing stack file and `ProgramError` for a value
    the program refuses.
    """
    from infra.program import main

    cfg = stacks.load(root or stacks.find_root(), stack).with_phase(phase)
    config = {**cfg.config, **(overrides or {})}
    region = config.get("aws:region") or "us-east-1"
    return evaluate(
        main,
        project=cfg.project,
        stack=stack,
        config=config,
        secret_keys=cfg.secret_keys,
        backend=backend or EchoBackend(region=region),
    )


def phase_of(deployment: Deployment) -> int:
    return int(deployment.output("phase"))


def to_json(deployment: Deployment) -> dict[str, Any]:
    """The `plan --json` document (contract in DESIGN.md)."""
    from coldreach import cost

    doc = deployment.to_json()
    estimate = cost.estimate_stack(deployment.stack, deployment=deployment)
    return {
        "stack": doc["stack"],
        "phase": phase_of(deployment),
        "resources": doc["resources"],
        "outputs": doc["outputs"],
        "notes": [{"severity": s, "message": m} for s, m in deployment.messages],
        "cost": {
            "monthly_usd": estimate.monthly_usd,
            "by_resource": estimate.by_resource(),
            "missing_prices": estimate.missing_prices,
        },
        "policy": policy_json(deployment),
    }


def render(deployment: Deployment, console: Console) -> None:
    """Human output: the tree grouped by component, then counts by type, outputs, notes."""
    phase = phase_of(deployment)
    root = Tree(f"[bold]{deployment.project}[/] stack [bold]{deployment.stack}[/], phase {phase}")
    nodes: dict[str | None, Tree] = {}
    for r in deployment.resources:
        parent = nodes.get(r.parent, root)
        label = f"[cyan]{escape(r.name)}[/] [dim]{escape(r.type)}[/]"
        if r.custom and r.id:
            label += f" [green]{escape(r.id)}[/]"
        if r.protect:
            label += " [yellow]protected[/]"
        nodes[r.urn] = parent.add(label)
    console.print(root)

    counts = Counter(r.type for r in deployment.resources if r.custom)
    table = Table(title="Resources by type", show_footer=True)
    table.add_column("type", footer="total")
    table.add_column("count", justify="right", footer=str(sum(counts.values())))
    for type_, n in sorted(counts.items()):
        table.add_row(type_, str(n))
    console.print(table)

    outputs = Table(title="Stack outputs")
    outputs.add_column("output")
    outputs.add_column("value", overflow="fold")
    for key, value in mask(deployment.outputs).items():
        outputs.add_row(key, escape(value if isinstance(value, str) else json.dumps(value)))
    console.print(outputs)
    for severity, message in deployment.messages:
        console.print(f"[yellow]{severity}[/]: {message}")

    from coldreach import cost

    estimate = cost.estimate_stack(deployment.stack, deployment=deployment)
    console.print(
        f"Monthly cost: [bold]${estimate.monthly_usd:,.2f}[/] (us-east-1, on-demand; "
        f"per resource: coldreach cost --stack {deployment.stack})"
    )
    render_policy(deployment, console)


def policy_json(deployment: Deployment) -> dict[str, Any]:
    """The pack's findings at the stack's levels (policies/config/<stack>.json), with counts."""
    violations = policy.evaluate(deployment)
    return {**policy.summary(violations), "violations": [v.to_json() for v in violations]}


def render_policy(deployment: Deployment, console: Console) -> None:
    """The pack's findings as a table, mandatory first."""
    violations = policy.evaluate(deployment)
    counts = policy.summary(violations)
    title = (
        f"Policy findings: {counts['rules']} rules, "
        f"{counts['mandatory']} mandatory, {counts['advisory']} advisory"
    )
    if not violations:
        console.print(f"[green]{title}[/]")
        return
    table = Table(title=title)
    for column in ("level", "rule", "resource", "message"):
        table.add_column(column, overflow="fold")
    for v in violations:
        level = "[red]mandatory[/]" if v.mandatory else "[yellow]advisory[/]"
        table.add_row(level, v.rule, escape(v.resource or "(stack)"), escape(v.message))
    console.print(table)
