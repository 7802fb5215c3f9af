"""The policy pack's rules, run over an offline deployment (what `coldreach plan` captured).

Each captured resource becomes the argument the engine would pass: its
camelCase inputs as props (secrets revealed, as the engine does for
analyzers), its `protect` in opts; stack rules get every resource as a
`PolicyResource` with its parent, dependencies and property dependencies.
The capture records which resources each one depends on but not through which
property, so property dependencies are rebuilt here: a property depends on the
resources whose id or ARN appears in its value. Then every rule runs at the
level the stack's policies/config/<stack>.json gives it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)

from coldreach.runtime.model import Deployment, Resource, reveal
from policies import catalog, stack_config
from policies.model import Rule, walk_strings

ORDER = {"mandatory": 0, "advisory": 1}


@dataclass(frozen=True)
class Violation:
    policy: str
    rule: str
    urn: str | None
    resource: str | None
    message: str
    enforcement: str
    severity: str

    @property
    def mandatory(self) -> bool:
        return self.enforcement == EnforcementLevel.MANDATORY.value

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _options(r: Resource) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=r.protect,
        ignore_changes=list(r.ignore_changes),
        delete_before_replace=r.delete_before_replace,
        aliases=list(r.aliases),
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=r.parent,
    )


def id_index(resources: list[Resource]) -> dict[str, str]:
    """id or ARN -> URN, for every custom resource."""
    index: dict[str, str] = {}
    for r in resources:
        if not r.custom:
            continue
        if r.id:
            index[r.id] = r.urn
        arn = r.out("arn")
        if isinstance(arn, str) and arn:
            index[arn] = r.urn
    return index


def property_dependencies(r: Resource, index: Mapping[str, str]) -> dict[str, list[str]]:
    """For each input, the URNs of the resources whose id or ARN it holds."""
    allowed = set(r.dependencies)
    found: dict[str, list[str]] = {}
    for key, value in r.inputs.items():
        urns: list[str] = []
        for text in walk_strings(reveal(value)):
            urn = index.get(text)
            if urn and urn != r.urn and urn not in urns and (not allowed or urn in allowed):
                urns.append(urn)
        if urns:
            found[key] = urns
    return found


def policy_resources(deployment: Deployment) -> list[PolicyResource]:
    """The deployment as the engine hands it to stack policies, in URN order.

    The program registers resources from several threads, so the capture's order
    varies between runs; sorting keeps the findings' order (and `plan --json`) stable.
    """
    index = id_index(deployment.resources)
    by_urn: dict[str, PolicyResource] = {}
    for r in sorted(deployment.resources, key=lambda r: r.urn):
        by_urn[r.urn] = PolicyResource(
            r.type, reveal(r.inputs), r.urn, r.name, _options(r), None, None, [], {}
        )
    for r in deployment.resources:
        pr = by_urn[r.urn]
        pr.parent = by_urn.get(r.parent) if r.parent else None
        pr.dependencies = [by_urn[u] for u in r.dependencies if u in by_urn]
        pr.property_dependencies = {
            key: [by_urn[u] for u in urns] for key, urns in property_dependencies(r, index).items()
        }
    return list(by_urn.values())


def _run(
    rule: Rule, level: EnforcementLevel, config: dict[str, Any], resources: list[PolicyResource]
) -> list[Violation]:
    found: list[Violation] = []
    names = {r.urn: r.name for r in resources}

    def reporter(default_urn: str | None):
        def report(message: str, urn: str | None = None) -> None:
            at = urn or default_urn
            found.append(
                Violation(
                    policy=rule.name,
                    rule=rule.id,
                    urn=at,
                    resource=names.get(at) if at else None,
                    message=message,
                    enforcement=level.value,
                    severity=rule.severity.value,
                )
            )

        return report

    if rule.is_stack_rule:
        rule.validate_stack(StackValidationArgs(resources, config), reporter(None))
        return found
    for r in resources:
        if r.resource_type not in rule.types:
            continue
        args = ResourceValidationArgs(r.resource_type, r.props, r.urn, r.name, r.opts, None, config)
        rule.validate_resource(args, reporter(r.urn))
    return found


def evaluate(
    deployment: Deployment, stack: str | None = None, config: Mapping[str, Any] | None = None
) -> list[Violation]:
    """Every violation of the pack in `deployment`, at the levels of `stack`'s config file
    (or of `config`, a dict in the same format). Mandatory findings come first."""
    settings = dict(config) if config is not None else stack_config.load(stack or deployment.stack)
    resources = policy_resources(deployment)
    found: list[Violation] = []
    for rule in catalog.rules():
        level = stack_config.level(rule, settings)
        if level == EnforcementLevel.DISABLED:
            continue
        if level == EnforcementLevel.REMEDIATE:
            level = EnforcementLevel.MANDATORY
        found += _run(rule, level, stack_config.properties(rule, settings), resources)
    return sorted(found, key=lambda v: ORDER.get(v.enforcement, 2))


def summary(violations: list[Violation]) -> dict[str, int]:
    return {
        "rules": len(catalog.rules()),
        "mandatory": sum(v.mandatory for v in violations),
        "advisory": sum(not v.mandatory for v in violations),
    }
