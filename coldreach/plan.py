"""`coldreach plan`: the offline preview of one stack (resource tree, outputs, notes)."""

from __future__ import annotations

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
    doc = deployment.to_json()
    return {
        "stack": doc["stack"],
        "phase": phase_of(deployment),
        "resources": doc["resources"],
        "outputs": doc["outputs"],
        "notes": [{"severity": s, "message": m} for s, m in deployment.messages],
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
