"""Small readers over a captured deployment, shared by the infra tests."""

from __future__ import annotations

import json
from typing import Any

from coldreach.runtime import Deployment
from coldreach.runtime.model import reveal

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-aaaa-bbbb-cccc-1234567890ab"


def containers(deployment: Deployment) -> list[dict[str, Any]]:
    """Every container definition of every task definition, parsed."""
    found: list[dict[str, Any]] = []
    for td in deployment.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        found += json.loads(reveal(td.inputs["containerDefinitions"]))
    return found


def service_containers(deployment: Deployment) -> list[dict[str, Any]]:
    """The containers ECS services run (not the one-off tasks an operator starts)."""
    run = {s.get("taskDefinition") for s in deployment.of_type("aws:ecs/service:Service")}
    found: list[dict[str, Any]] = []
    for td in deployment.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        if td.out("arn") in run:
            found += json.loads(reveal(td.inputs["containerDefinitions"]))
    return found


def task_definition(deployment: Deployment, name: str) -> Any:
    """The task definition whose family ends with `-<name>` (web, worker, bootstrap, ...)."""
    [found] = [
        td
        for td in deployment.of_type("aws:ecs/taskDefinition:TaskDefinition")
        if td.get("family").endswith(f"-{name}")
    ]
    return found


def policy_statements(document: str) -> list[dict[str, Any]]:
    statements = json.loads(document)["Statement"]
    return statements if isinstance(statements, list) else [statements]
