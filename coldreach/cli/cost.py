"""`coldreach cost`: the monthly bill of one stack, per resource."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from coldreach import cost
from coldreach.cli.options import stack_options
from coldreach.evaluation import evaluate_stack


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "cost",
        help="monthly cost of a stack, per resource",
        description="Prices the resources the program declares for STACK (us-east-1, on-demand).",
    )
    stack_options(p, "price")
    p.set_defaults(run=command)


def command(args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.json:
        estimate = cost.estimate_for(evaluate_stack(args.stack, args.phase))
        print(json.dumps(estimate.to_json(), indent=2))
        warn(estimate, err)
        return 0
    with err.status(f"Evaluating stack {args.stack} offline..."):
        result = cost.estimate_for(evaluate_stack(args.stack, args.phase))
    render(result, out)
    warn(result, err)
    return 0


def warn(estimate: cost.Estimate, err: Console) -> None:
    if estimate.warning:
        err.print(f"[yellow]warning:[/] {escape(estimate.warning)}", soft_wrap=True)


def render(estimate: cost.Estimate, console: Console, detailed: bool = True) -> None:
    table = Table(
        title=f"Monthly cost of {estimate.stack}, phase {estimate.phase} (us-east-1, on-demand)",
        show_footer=True,
    )
    table.add_column("resource", footer="total")
    table.add_column("item")
    table.add_column("quantity", justify="right")
    table.add_column("USD / month", justify="right", footer=f"{estimate.monthly_usd:,.2f}")
    rows = estimate.items if detailed else []
    for i in rows:
        marks = ("*" if i.usage_based else "") + ("~" if i.low_confidence else "")
        price = "no price" if i.unit_usd is None else f"{i.monthly_usd:,.2f}{marks}"
        table.add_row(i.resource, i.what, f"{i.quantity:,.1f} {i.unit}", price)
    console.print(table)
    console.print(
        "* usage-based (assumption in coldreach/data/prices.yaml, override with "
        f"{cost.ASSUMPTIONS_KEY}); ~ low-confidence price, verify before relying on it"
        + ("; no price: counted as $0, see the warning" if estimate.missing_prices else "")
    )
    for warning in estimate.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
