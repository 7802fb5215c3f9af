"""Which input changes make AWS replace a resource (a new one, the old one deleted).

The inputs are curated per type in the registry (policies/resource_types.py),
from the `ForceNew` arguments of the terraform-provider-aws schemas that
pulumi-aws bridges: every stateful type, and the stateless ones a promotion
replaces (a task definition). A stateful resource must never see a change to one
of these in a promotion. `promote` (offline) and the emulator rehearsal
(coldreach/rehearsal.py) both decide replacements here.
"""

from __future__ import annotations

from dataclasses import dataclass

from coldreach import graph
from coldreach.runtime.model import Deployment, Resource, reveal
from policies.resource_types import TYPES

REPLACEMENT_INPUTS: dict[str, tuple[str, ...]] = {
    token: r.replaced_by for token, r in TYPES.items() if r.replaced_by
}


def _value(r: Resource, key: str) -> object:
    """The input at `key`, a dotted path into nested blocks (`brokerNodeGroupInfo.clientSubnets`)
    for one field of a block."""
    head, *rest = key.split(".")
    # Autonamed names are outputs: the engine keeps them for as long as the URN lives.
    value = reveal(r.inputs[head]) if head in r.inputs else reveal(r.outputs.get(head))
    for part in rest:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def forced_replacements(before: Resource, after: Resource) -> tuple[str, ...]:
    keys = REPLACEMENT_INPUTS.get(before.type, ())
    return tuple(k for k in keys if _value(before, k) != _value(after, k))


@dataclass(frozen=True)
class Step:
    op: str
    """create, update, replace or delete."""
    resource: Resource
    inputs: tuple[str, ...] = ()

    @property
    def stateful(self) -> bool:
        return self.resource.type in graph.STATEFUL_TYPES

    @property
    def destructive(self) -> bool:
        return self.op in ("replace", "delete")

    @property
    def blocking(self) -> bool:
        return self.stateful and self.destructive

    def reason(self) -> str:
        r = self.resource
        if self.op == "delete":
            return f"{r.name} ({r.type}) would be deleted: the target phase no longer declares it"
        changed = ", ".join(self.inputs)
        return f"{r.name} ({r.type}) would be replaced: {changed} changed"


def changed_inputs(before: Resource, after: Resource) -> tuple[str, ...]:
    keys = set(before.inputs) | set(after.inputs)
    return tuple(
        sorted(k for k in keys if reveal(before.inputs.get(k)) != reveal(after.inputs.get(k)))
    )


def compare(current: Deployment, target: Deployment) -> list[Step]:
    """What moving from `current` to `target` does to each custom resource, matched by URN."""
    after = {r.urn: r for r in target if r.custom}
    before = {r.urn: r for r in current if r.custom}
    steps: list[Step] = []
    for urn, r in before.items():
        other = after.get(urn)
        if other is None:
            steps.append(Step("delete", r))
            continue
        forced = forced_replacements(r, other)
        if forced:
            steps.append(Step("replace", r, forced))
            continue
        changed = changed_inputs(r, other)
        if changed:
            steps.append(Step("update", other, changed))
    steps += [Step("create", r) for urn, r in after.items() if urn not in before]
    return steps
