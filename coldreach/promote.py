"""Moving a stack one phase up (`coldreach promote`), refusing anything that loses data.

A promotion follows a route (phase N -> N+1), which is a list of stages
(coldreach/stages.py). Each stage is data: the `cold-reach:*` keys it sets,
what it needs before (checks run here, facts the operator attests), what shows
it worked and how to undo it. Where a stack stands on a route is read from its
config: the stage after the last one whose keys are all set is the next one.
The route 2 -> 3 is coldreach/cutover.py.

For the next stage, the stack is evaluated offline twice, as configured and
with the stage's keys set. Every resource is matched by URN: gone means
delete, a changed replacement-forcing input (coldreach/replacement.py) means
replace. A stateful resource that would be deleted or replaced stops the
stage, naming the resource and the input (unless the stage retires it by
name), and so does a failed check.
Otherwise the stage's keys are written to the stack file and its runbook
printed; the real `pulumi preview` and `pulumi up` stay with CI (docs/promotion.md).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from coldreach import cost, cutover, stacks
from coldreach.errors import UserError
from coldreach.evaluation import evaluate_stack
from coldreach.hints import coldreach
from coldreach.replacement import Step, compare
from coldreach.runtime import Deployment
from coldreach.stages import Check, Fact, Route, Stage, StageContext

__all__ = ["Check", "Fact", "Route", "Stage", "StageContext"]


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
    3: cutover.ROUTE,
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
        """Stateful replacements and deletions, but for what the stage retires by name."""
        return [
            s
            for s in self.steps
            if s.blocking and not (s.op == "delete" and s.resource.name in self.stage.retires)
        ]

    @property
    def retired(self) -> list[Step]:
        """Stateful deletions the stage names: allowed, after unprotecting them."""
        return [s for s in self.of("delete") if s.stateful and s not in self.blocked]

    @property
    def retired_urns(self) -> list[str]:
        return sorted(s.resource.urn for s in self.retired)

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


def retired_by(config: stacks.StackConfig) -> frozenset[str]:
    """Stateful resources the stack file's done stages retire on purpose (for the deploy gate)."""
    return frozenset(
        name
        for route in ROUTES.values()
        for stage in route.stages
        if stage.done(config)
        for name in stage.retires
    )


def overrides_for(config: stacks.StackConfig, stage: Stage) -> dict[str, str]:
    return {f"{config.project}:{key}": value for key, value in stage.sets.items()}


def assess(
    config: stacks.StackConfig,
    route: Route,
    stage: Stage,
    current: Deployment,
    after: Deployment,
    outputs: Mapping[str, object] | None = None,
    confirmed: frozenset[str] = frozenset(),
) -> Promotion:
    steps = compare(current, after)
    context = StageContext(config, steps, outputs or {}, confirmed)
    refusals = [reason for check in stage.checks if (reason := check(context))]
    refusals += [
        f"not attested: {fact.name}. Check {fact.how}; then add --confirm {fact.name}"
        for fact in stage.missing(confirmed)
    ]
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
    confirmed: frozenset[str] = frozenset(),
) -> Promotion:
    """Evaluates the stack as configured and with `stage` applied, and compares them."""
    current = evaluate_stack(config.stack, root=root)
    after = evaluate_stack(config.stack, root=root, overrides=overrides_for(config, stage))
    return assess(config, route, stage, current, after, outputs, confirmed)


def walk(root: Path, config: stacks.StackConfig, route: Route) -> list[Deployment]:
    """The stack at the route's start, then after each stage, in order (a command stage leaves
    it as the stage before did). Stages already done are evaluated again, so every stage's
    cost shows; the stack file's own values count only where no stage sets the key."""
    start = route.start(config)
    after: list[Deployment] = [evaluate_stack(config.stack, root=root, overrides=start)]
    for i, stage in enumerate(route.stages):
        if not stage.sets:
            after.append(after[-1])
            continue
        overrides = route.overrides_through(config, i)
        after.append(evaluate_stack(config.stack, root=root, overrides=overrides))
    return after


def stage_costs(deployments: list[Deployment]) -> list[cost.Estimate]:
    return [cost.estimate_for(d) for d in deployments]


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


def stage_runbook(stack: str, stage: Stage, retired_urns: Sequence[str] = ()) -> list[str]:
    """After a later route's stage is written: review, merge, let the deploy workflow apply,
    then check and hold (docs/promotion-3.md). What a stage retires is protected, and Pulumi
    refuses to delete a protected resource, preview included: it is unprotected in the state
    right before the merge (a deploy in between protects it again; then repeat)."""
    full = qualified_stack(stack)
    branch = f"promote-{stack}-" + re.sub(r"[^a-z0-9]+", "-", stage.name.lower()).strip("-")
    lines = [
        f"git switch -c {branch} && git commit -m 'Promote {stack}: {stage.name}' "
        f"Pulumi.{stack}.yaml && git push -u origin {branch}",
        f"open the pull request; read its preview of {stack} (pulumi preview with the policy "
        "pack, run by CI): only what this stage names is deleted",
    ]
    if retired_urns:
        urns = " ".join(f"'{urn}'" for urn in retired_urns)
        lines.append(f'pulumi state unprotect --stack "{full}" --yes {urns}')
    return [
        *lines,
        f"merge; the deploy workflow runs preview, gate, pulumi up and verify for {stack}",
        f"watch: {stage.watch}",
        f"then: {stage.verify.replace('STACK', full)}",
        f'pulumi stack output --json --stack "{full}" > outputs.json   # for the next stage\'s '
        "--outputs",
    ]
