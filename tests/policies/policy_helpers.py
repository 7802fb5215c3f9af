"""Builds the arguments the engine passes to a policy, by hand, and calls the policy.

Never import policies/__main__.py: building the PolicyPack starts a server.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies import catalog
from policies.model import policy_of

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-aaaa-bbbb-cccc-1234567890ab"
"""A certificate ARN in the shape the program accepts (prod must set one before deploying)."""

MISSING = object()
"""Marks a property to delete in `changed`: the property-missing case."""


def changed(base: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of `base` with keys set, or deleted where the value is MISSING."""
    props = copy.deepcopy(dict(base))
    for key, value in changes.items():
        if value is MISSING:
            props.pop(key, None)
        else:
            props[key] = value
    return props


def options(protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], False, [], PolicyCustomTimeouts(0, 0, 0), [])


def check_resource(
    name: str,
    resource_type: str,
    props: Mapping[str, Any],
    *,
    protect: bool = True,
    config: Mapping[str, Any] | None = None,
) -> list[str]:
    """The messages the policy named `name` reports for one resource."""
    policy = policy_of(catalog.rule(name))
    assert isinstance(policy, ResourceValidationPolicy)
    urn = f"urn:pulumi:test::cold-reach::{resource_type}::example"
    args = ResourceValidationArgs(
        resource_type, props, urn, "example", options(protect), None, dict(config or {})
    )
    found: list[str] = []
    policy.validate(args, lambda message, urn=None: found.append(message))
    return found


class Graph:
    """A hand-made stack: resources by name, references by name (property dependencies)."""

    def __init__(self) -> None:
        self.resources: dict[str, PolicyResource] = {}
        self._deps: dict[str, dict[str, list[str]]] = {}

    def add(
        self, resource_type: str, name: str, props: Mapping[str, Any] | None = None, **refs: Any
    ) -> Graph:
        """Adds a resource; each keyword names the resources a property refers to."""
        urn = f"urn:pulumi:test::cold-reach::{resource_type}::{name}"
        self.resources[name] = PolicyResource(
            resource_type, dict(props or {}), urn, name, options(), None, None, [], {}
        )
        self._deps[name] = {k: [v] if isinstance(v, str) else list(v) for k, v in refs.items()}
        return self

    def remove(self, name: str) -> Graph:
        del self.resources[name]
        del self._deps[name]
        return self

    def props(self, name: str) -> dict[str, Any]:
        props = self.resources[name].props
        assert isinstance(props, dict)
        return props

    def refer(self, name: str, prop: str, *targets: str) -> Graph:
        self._deps[name][prop] = list(targets)
        return self

    def urn(self, name: str) -> str:
        return self.resources[name].urn

    def args(self, config: Mapping[str, Any] | None = None) -> StackValidationArgs:
        for name, resource in self.resources.items():
            resource.property_dependencies = {
                prop: [self.resources[t] for t in targets if t in self.resources]
                for prop, targets in self._deps[name].items()
            }
            resource.dependencies = [
                d for deps in resource.property_dependencies.values() for d in deps
            ]
        return StackValidationArgs(list(self.resources.values()), dict(config or {}))


def check_stack(
    name: str, graph: Graph, config: Mapping[str, Any] | None = None
) -> list[tuple[str | None, str]]:
    """(urn, message) pairs the stack policy named `name` reports."""
    policy = policy_of(catalog.rule(name))
    assert isinstance(policy, StackValidationPolicy)
    found: list[tuple[str | None, str]] = []
    policy.validate(graph.args(config), lambda message, urn=None: found.append((urn, message)))
    return found
