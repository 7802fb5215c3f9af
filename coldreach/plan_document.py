"""The `plan --json` document: one evaluated stack with its cost and policy findings."""

from __future__ import annotations

from typing import Any

from coldreach import cost, policy_eval
from coldreach.evaluation import phase_of
from coldreach.runtime import Deployment


def policy_section(violations: list[policy_eval.Violation]) -> dict[str, Any]:
    """The pack's findings at the stack's levels (policies/config/<stack>.json), with counts."""
    return {**policy_eval.summary(violations), "violations": [v.to_json() for v in violations]}


def build(deployment: Deployment) -> dict[str, Any]:
    """The document; its contract is in README.md (`coldreach plan --json`)."""
    doc = deployment.to_json()
    estimate = cost.estimate_for(deployment)
    return {
        "stack": doc["stack"],
        "phase": phase_of(deployment),
        "resources": doc["resources"],
        "outputs": doc["outputs"],
        "notes": [{"severity": s, "message": m} for s, m in deployment.messages],
        "cost": {
            "monthly_usd": estimate.monthly_usd,
            "by_resource": estimate.by_resource(),
            "missing_prices": estimate.missing_prices,
            "warnings": estimate.warnings,
        },
        "policy": policy_section(policy_eval.evaluate(deployment)),
    }
