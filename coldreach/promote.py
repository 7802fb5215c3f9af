"""Moving a stack one phase up (`coldreach promote`), refusing anything that loses data.

A promotion follows a route (phase N -> N+1), which is a list of stages. Each
stage is data: the `cold-reach:*` keys it sets, what it needs before (checks
run here), what shows it worked and how to undo it. Where a stack stands on a
route is read from its config: the first stage whose keys are not all set yet
is the next one.

For the next stage, the stack is evaluated offline twice, as configured and
with the stage's keys set. Every resource is matched by URN: gone means
delete, a changed replacement-forcing input (coldreach/replacement.py) means
replace. A stateful resource that would be deleted or replaced stops the
stage, naming the resource and the input, and so does a failed check.
Otherwise the stage's keys are written to the stack file and its runbook
printed; the real `pulumi preview` and `pulumi up` stay with CI (docs/promotion.md).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from coldreach import cost, stacks
from coldreach.errors import UserError
from coldreach.evaluation import evaluate_stack
from coldreach.hints import coldreach
from coldreach.replacement import Step, compare
from coldreach.runtime import Deployment


@dataclass(frozen=True)
class StageContext:
    """What a stage's checks see: the stack as configured, and as the stage leaves it."""

    config: stacks.StackConfig
    steps: list[Step]
    outputs: Mapping[str, object] = field(default_factory=dict)
    """The deployed stack's outputs when given (`pulumi stack output --json`)."""


Check = Callable[[StageContext], str | None]
"""Returns why the stage may not run now, or None."""


@dataclass(frozen=True)
class Stage:
    name: str
    does: str
    sets: Mapping[str, str]
    """`cold-reach:*` keys (without the prefix) and the values the stage writes."""
    verify: str
    """What shows it worked, after `pulumi up`."""
    rollback: str
    checks: tuple[Check, ...] = ()
    """Preconditions beyond the one every stage has: nothing stateful replaced or deleted."""

    def done(self, config: stacks.StackConfig) -> bool:
        return all(
            config.config.get(f"{config.project}:{key}") == value
            for key, value in self.sets.items()
        )


@dataclass(frozen=True)
class Route:
    source: int
    target: int
    stages: tuple[Stage, ...]
    runbook: str
    """The document an intern follows (a repository path)."""

    def position(self, config: stacks.StackConfig) -> int:
        """Index of the next stage; len(stages) when the route is done."""
        for i, stage in enumerate(self.stages):
            if not stage.done(config):
                return i
        return len(self.stages)


ROUTES: dict[int, Route] = {
    2: Route(
        source=1,
        target=2,
        stages=(
            Stage(
                name="phase 2",
                does=(
                    "NAT, services in private subnets, read replica, Redis and the Celery "
                    "worker, autoscaling; the database, its secret, ECR and S3 untouched"
                ),
                sets={"phase": "2"},
                verify=coldreach("verify --stack STACK") + ", GET /readyz, a test send",
                rollback=(
                    "before `pulumi up`: set the phase back; after: redeploy the recorded image "
                    "(cold-reach:image), never a demotion by hand"
                ),
            ),
        ),
        runbook="docs/promotion.md",
    ),
}
"""Routes by target phase. A later route is one more entry: its stages, checks and runbook."""


@dataclass
class Promotion:
    stack: str
    route: Route
    stage: Stage
    current_phase: int
    steps: list[Step] = field(default_factory=list)
    cost_before: cost.Estimate | None = None
    cost_after: cost.Estimate | None = None
    refusals: list[str] = field(default_factory=list)
    """Failed stage checks, in the stage's words."""

    @property
    def target_phase(self) -> int:
        return self.route.target

    @property
    def blocked(self) -> list[Step]:
        return [s for s in self.steps if s.blocking]

    @property
    def refused(self) -> bool:
        return bool(self.blocked or self.refusals)

    @property
    def cost_delta(self) -> float:
        before = self.cost_before.monthly_usd if self.cost_before else 0.0
        after = self.cost_after.monthly_usd if self.cost_after else 0.0
        return round(after - before, 2)

    @property
    def unpriced(self) -> list[str]:
        """Price keys missing on either side: the delta leaves them out."""
        missing: set[str] = set()
        for estimate in (self.cost_before, self.cost_after):
            if estimate:
                missing.update(estimate.missing_prices)
        return sorted(missing)

    def of(self, op: str) -> list[Step]:
        return [s for s in self.steps if s.op == op]


def route_to(config: stacks.StackConfig, target: int) -> Route:
    """The route to `target` from where the stack is; refuses skipping or going down."""
    current = config.phase
    route = ROUTES.get(target)
    if route is None or not (route.source == current or route.target == current):
        if target <= current:
            raise UserError(
                f"{config.stack} is at phase {current}: going down is not a promotion "
                "and is done by hand (docs/promotion.md, Rolling back)"
            )
        if target != current + 1:
            raise UserError(
                f"{config.stack} is at phase {current}: promote one phase at a time "
                f"(--to {current + 1})"
            )
        raise UserError(f"no promotion route to phase {target} yet")
    return route


def overrides_for(config: stacks.StackConfig, stage: Stage) -> dict[str, str]:
    return {f"{config.project}:{key}": value for key, value in stage.sets.items()}


def assess(
    config: stacks.StackConfig,
    route: Route,
    stage: Stage,
    current: Deployment,
    after: Deployment,
    outputs: Mapping[str, object] | None = None,
) -> Promotion:
    steps = compare(current, after)
    context = StageContext(config, steps, outputs or {})
    refusals = [reason for check in stage.checks if (reason := check(context))]
    return Promotion(
        stack=config.stack,
        route=route,
        stage=stage,
        current_phase=config.phase,
        steps=steps,
        cost_before=cost.estimate_for(current),
        cost_after=cost.estimate_for(after),
        refusals=refusals,
    )


def evaluate_stage(
    root: Path,
    config: stacks.StackConfig,
    route: Route,
    stage: Stage,
    outputs: Mapping[str, object] | None = None,
) -> Promotion:
    """Evaluates the stack as configured and with `stage` applied, and compares them."""
    current = evaluate_stack(config.stack, root=root)
    after = evaluate_stack(config.stack, root=root, overrides=overrides_for(config, stage))
    return assess(config, route, stage, current, after, outputs)


def set_config(path: Path, key: str, value: str) -> None:
    """Rewrites only the `cold-reach:<key>` line of a stack file, keeping comments and order."""
    line = re.compile(rf"^(\s*)cold-reach:{re.escape(key)}:.*$", re.MULTILINE)
    text = path.read_text()
    if line.search(text):
        text = line.sub(lambda m: f"{m.group(1)}cold-reach:{key}: {value}", text, count=1)
    elif re.search(r"^config:\s*$", text, re.MULTILINE):
        text = re.sub(
            r"^config:\s*$", f"config:\n  cold-reach:{key}: {value}", text, count=1, flags=re.M
        )
    else:
        text = text.rstrip("\n") + f"\nconfig:\n  cold-reach:{key}: {value}\n"
    # Write beside and rename: an interrupted promotion never leaves half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    Path(tmp).replace(path)


def set_phase(path: Path, phase: int) -> None:
    set_config(path, "phase", str(phase))


def apply(path: Path, stage: Stage) -> None:
    for key, value in stage.sets.items():
        set_config(path, key, value)


def qualified_stack(stack: str) -> str:
    """The stack as the Pulumi CLI and the deploy workflow name it (org/project/stack)."""
    return f"$PULUMI_ORG/cold-reach/{stack}"


def runbook(stack: str, phase: int, region: str = "us-east-1") -> list[str]:
    """The rest of the procedure after the stack file changed, in order (docs/promotion.md).
    The laptop records, snapshots and opens the pull request; the deploy workflow applies."""
    full = qualified_stack(stack)
    branch = f"promote-{stack}-phase-{phase}"
    return [
        f'IMAGE=$(pulumi stack output image --stack "{full}"); echo "$IMAGE"'
        "   # the image running now, for a rollback",
        f"git switch -c {branch} && git commit -m 'Promote {stack} to phase {phase}' "
        f"Pulumi.{stack}.yaml && git push -u origin {branch}",
        f"open the pull request with $IMAGE in its description; read its preview of {stack} "
        "(pulumi preview with the policy pack, run by CI): no stateful replace or delete",
        f'SNAP={stack}-before-phase-{phase}-$(date -u +%Y%m%d%H%M); echo "$SNAP"'
        "   # right before merging; add it to the description",
        f"aws rds create-db-snapshot --region {region} --db-instance-identifier "
        f'"$(pulumi stack output db_identifier --stack "{full}")" '
        '--db-snapshot-identifier "$SNAP"',
        f'aws rds wait db-snapshot-available --region {region} --db-snapshot-identifier "$SNAP"',
        f"merge; the deploy workflow runs preview, gate, pulumi up and verify for {stack}",
        f'curl -fsS "$(pulumi stack output url --stack "{full}")/readyz"',
        coldreach(f"verify --stack {full}"),
    ]
