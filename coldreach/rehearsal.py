"""A promotion rehearsed in the embedded emulator (`coldreach local rehearse`).

Phase N is deployed into moto; then each stage of the route to N+1
(coldreach/promote.py) is applied as an update of what is deployed, the way
`pulumi up` applies a changed program to its state: every registration is
matched by URN with the resource deployed before; a new URN is created, a
changed replacement-forcing input (the table `promote` uses,
coldreach/replacement.py) creates a replacement and deletes the old resource
once the program has run, other changed inputs are applied in place through
the service's update API, an unchanged resource keeps its id and outputs, and
a URN the program no longer declares is deleted. As in `pulumi up`, a protected
resource that would be replaced or deleted stops the update, naming it; so does
a change the emulator has no updater or deleter for, never silently.

Before the update, every stateful resource is recorded with its identity and
data (coldreach/verify/kept.py); afterwards `verify --kept` compares. A stage
that retires stateful resources by name (2 -> 3: Redis and its secrets) has
them unprotected first, as its runbook does in the state; they leave the
baseline. A stage that is a command (a shard migration, a queue drained) has
nothing the emulator could show and is listed as not rehearsed, with what an
operator checks instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from coldreach import promote, stacks
from coldreach.evaluation import evaluate_stack
from coldreach.local import deploy
from coldreach.replacement import Step, changed_inputs, forced_replacements
from coldreach.runtime import Deployment, Resource
from coldreach.runtime.emulator import DELETERS, UPDATERS, MotoBackend, UnsupportedChange
from coldreach.runtime.emulator.call import Call
from coldreach.verify import Aws
from coldreach.verify.kept import capture
from policies.resource_types import STATEFUL


class Protected(Exception):
    """`pulumi up` stops before replacing or deleting a protected resource; so does this."""

    def __init__(self, step: Step) -> None:
        r = step.resource
        super().__init__(
            f"{r.name} ({r.type}) is protected: `pulumi up` would stop rather than "
            f"{step.op} it; {step.reason()}"
        )
        self.step = step


class UpdateBackend:
    """Applies one more evaluation of the program to what `deployed` holds in moto."""

    def __init__(
        self, moto: MotoBackend, deployed: Deployment, unprotected: frozenset[str] = frozenset()
    ) -> None:
        self.moto = moto
        self.unprotected = unprotected
        """Names unprotected in the state before this update (what the stage retires)."""
        self.before = {r.urn: r for r in deployed if r.custom}
        self.order = [r.urn for r in deployed if r.custom]
        self.steps: list[Step] = []
        self._seen: set[str] = set()
        self._replaced: list[Resource] = []
        self._lock = threading.Lock()  # the program registers from several threads

    def create(
        self, urn: str, type_: str, name: str, inputs: dict[str, Any], custom: bool
    ) -> tuple[str | None, dict[str, Any]]:
        if not custom:
            return None, {}
        old = self.before.get(urn)
        with self._lock:
            self._seen.add(urn)
        if old is None:
            id_, outputs = self.moto.create(urn, type_, name, inputs, custom)
            self._record(Step("create", _resource(urn, type_, name, id_, inputs, outputs)))
            return id_, outputs
        # Names the provider generated are outputs: the engine keeps them while the URN lives.
        proposed = _resource(urn, type_, name, old.id, inputs, old.outputs)
        forced = forced_replacements(old, proposed)
        if forced and old.protect:
            raise Protected(Step("replace", old, forced))
        if forced:
            # Created first, the old one deleted after the run (Pulumi's default order); a
            # replacement gets a new generated name, as the provider's random suffix does.
            id_, outputs = self.moto.create(f"{urn}#replacement", type_, name, inputs, custom)
            with self._lock:
                self._replaced.append(old)
            self._record(Step("replace", old, forced))
            return id_, outputs
        changed = changed_inputs(old, proposed)
        if not changed:
            return old.id, old.outputs
        updater = UPDATERS.get(type_)
        if updater is None:
            raise UnsupportedChange(type_, name, f"update {', '.join(changed)} of")
        call = Call(urn, type_, name, inputs)
        extra = updater(self.moto, call, old)
        outputs = {**old.outputs, **call.outputs, **extra}
        self._record(Step("update", proposed, changed))
        return old.id, outputs

    def invoke(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        return self.moto.invoke(token, args)

    def finish(self) -> None:
        """Deletes the replaced resources and those the program no longer declares,
        dependents first (the reverse of the order they were created in)."""
        gone = [self.before[urn] for urn in reversed(self.order) if urn not in self._seen]
        for old in gone:
            if old.protect and old.name not in self.unprotected:
                raise Protected(Step("delete", old))
        for old in gone:
            self._record(Step("delete", old))
        # Every deleter looked up first: a stage the emulator cannot finish deletes nothing.
        for old in [*self._replaced, *gone]:
            if old.type not in DELETERS:
                raise UnsupportedChange(old.type, old.name, "delete")
        for old in [*self._replaced, *gone]:
            DELETERS[old.type](self.moto, old)

    def _record(self, step: Step) -> None:
        with self._lock:
            self.steps.append(step)


def _resource(
    urn: str,
    type_: str,
    name: str,
    id_: str | None,
    inputs: dict[str, Any],
    outputs: dict[str, Any],
) -> Resource:
    return Resource(urn, type_, name, id_, None, True, False, inputs, outputs)


@dataclass
class StageRun:
    stage: promote.Stage
    steps: list[Step]
    deployment: Deployment


@dataclass
class Rehearsal:
    stack: str
    route: promote.Route
    before: Deployment
    baseline: dict[str, Any]
    stages: list[StageRun] = field(default_factory=list)
    not_rehearsed: list[tuple[promote.Stage, str]] = field(default_factory=list)
    """Stages the emulator could not run, each with why and what to check instead."""
    retired: set[str] = field(default_factory=set)
    """URNs stages deleted on purpose, by name."""

    @property
    def after(self) -> Deployment:
        return self.stages[-1].deployment if self.stages else self.before

    def stateful_ids(self) -> list[tuple[Resource, str | None]]:
        """Each stateful resource deployed before, with its id after (None: gone)."""
        after = {r.urn: r.id for r in self.after if r.custom}
        return [(r, after.get(r.urn)) for r in self.before if r.type in STATEFUL]

    @property
    def changed_ids(self) -> list[tuple[Resource, str | None]]:
        """Stateful ids that changed or went, but for what a stage retired by name."""
        return [
            (r, now)
            for r, now in self.stateful_ids()
            if now != r.id and not (now is None and r.urn in self.retired)
        ]

    def kept_baseline(self) -> dict[str, Any]:
        """The baseline `verify --kept` checks: the retired resources are gone on purpose."""
        resources = [e for e in self.baseline["resources"] if e["urn"] not in self.retired]
        return {**self.baseline, "resources": resources}


def route_for(stack: str, source: int | None = None) -> tuple[stacks.StackConfig, promote.Route]:
    """The stack's config and the route from `source` (default: its phase) to the next phase;
    a user error when there is none, before anything starts."""
    config = stacks.load(stacks.find_root(), stack)
    start = source or config.phase
    return config, promote.route_to(config.with_phase(start), start + 1)


def rehearse(
    stack: str,
    moto: MotoBackend,
    aws: Aws,
    source: int | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> Rehearsal:
    """Deploys `stack` at `source` (default: its configured phase) into the moto account
    `moto` speaks to, records the baseline through `aws`, then applies every stage of the
    route to the next phase as an update."""
    config, route = route_for(stack, source)
    source = route.source
    say = on_stage or (lambda _message: None)
    say(f"deploying {stack} at phase {source}")
    before = deploy(stack, moto, source)
    baseline = capture(before, aws)
    result = Rehearsal(stack, route, before, baseline)
    overrides: dict[str, str] = {}
    current = before
    for stage in route.stages:
        if not stage.sets:
            how = "; ".join(fact.how for fact in stage.needs)
            say(f"not rehearsed: {stage.name!r} is a command the emulator cannot run")
            why = f"a command; the emulator holds no rows and no queue. In a real promotion: {how}"
            result.not_rehearsed.append((stage, why))
            continue
        say(f"applying stage {stage.name!r} as an update")
        overrides.update(promote.overrides_for(config, stage))
        update = UpdateBackend(moto, current, stage.retires)
        try:
            current_after = evaluate_stack(stack, source, backend=update, overrides=dict(overrides))
            update.finish()
        except UnsupportedChange as error:
            if not stage.retires:
                raise
            # Retiring deletes what moto has no deleter for: stop here and say so.
            say(f"not rehearsed: {stage.name!r}: {error}")
            why = f"{error}. Nothing was deleted; the pull request's real preview shows the stage"
            result.not_rehearsed.append((stage, why))
            break
        current = current_after
        result.retired |= {
            s.resource.urn
            for s in update.steps
            if s.op == "delete" and s.resource.name in stage.retires
        }
        result.stages.append(StageRun(stage, update.steps, current))
    return result
