"""`coldreach plan`: the offline preview of one stack (resource tree, outputs, cost, findings)."""

from __future__ import annotations

import argparse
import json
from collections import Counter

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from coldreach import cost, plan_document, policy_eval
from coldreach.cli.options import stack_options
from coldreach.evaluation import evaluate_stack, phase_of
from coldreach.hints import coldreach
from coldreach.runtime import Deployment
from coldreach.runtime.model import mask


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
        deployment = evaluate_stack(args.stack, args.phase)
        print(json.dumps(plan_document.build(deployment), indent=2))
        return 0
    with err.status(f"Evaluating stack {args.stack} offline..."):
        deployment = evaluate_stack(args.stack, args.phase)
    render(deployment, out)
    return 0


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

    estimate = cost.estimate_for(deployment)
    console.print(
        f"Monthly cost: [bold]${estimate.monthly_usd:,.2f}[/] (us-east-1, on-demand; "
        "per resource: " + escape(coldreach(f"cost --stack {deployment.stack}")) + ")",
        soft_wrap=True,
    )
    if estimate.warning:
        console.print(f"[yellow]warning:[/] {escape(estimate.warning)}", soft_wrap=True)
    for warning in estimate.warnings:
        console.print(f"[yellow]cost warning[/]: {escape(warning)}", soft_wrap=True)
    render_policy(deployment, console)


def render_policy(deployment: Deployment, console: Console) -> None:
    """The pack's findings as a table, mandatory first."""
    violations = policy_eval.evaluate(deployment)
    counts = policy_eval.summary(violations)
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
