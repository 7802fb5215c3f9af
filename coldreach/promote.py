"""Moving a stack one phase up (`coldreach promote`), refusing anything that loses data.

Both phases are evaluated offline. Every resource of the current phase is
matched by URN in the target: gone means delete, a changed replacement-forcing
input (coldreach/replacement.py) means replace. A stateful resource that would
be deleted or replaced stops the promotion, naming the resource and the input.
Otherwise the stack file's phase is set and the runbook printed; the real
`pulumi preview` and `pulumi up` stay with the person promoting.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from coldreach import cost, stacks
from coldreach.errors import UserError
from coldreach.evaluation import evaluate_stack
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
        cost_before=cost.estimate_for(current).monthly_usd,
        cost_after=cost.estimate_for(target).monthly_usd,
    )


def current_phase(root: Path, stack: str) -> int:
    config = stacks.load(root, stack)
    return int(config.config.get(f"{config.project}:phase", "1"))


def check_step(stack: str, current: int, target: int) -> None:
    """Refuses anything but one phase up."""
    if target != current + 1:
        raise UserError(
            f"{stack} is at phase {current}: promote one phase at a time "
            f"(--to {current + 1}); going down is not a promotion and is done by hand"
        )


def evaluate_promotion(root: Path, stack: str, target: int) -> Promotion:
    """Evaluates `stack` at its current phase and at `target`, and compares them."""
    current = evaluate_stack(stack, root=root)
    after = evaluate_stack(stack, target, root=root)
    return assess(stack, current, after)


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
