"""Every rule of the pack, in declaration order, and their CrossGuard policies."""

from __future__ import annotations

from pulumi_policy import Policy

# Importing the rule modules registers their rules.
from policies import (  # noqa: F401
    cluster,
    compute,
    data,
    edge,
    graph,
    kubernetes,
    messaging,
    network,
)
from policies.model import RULES, Rule, policy_of

PACK_NAME = "cold-reach-security"


def rules() -> list[Rule]:
    return list(RULES)


def rule(name: str) -> Rule:
    """A rule by its policy name (e.g. `rds-storage-encrypted`) or its id (e.g. `D1`)."""
    for r in RULES:
        if name in (r.name, r.id):
            return r
    raise KeyError(name)


def policies() -> list[Policy]:
    return [policy_of(r) for r in RULES]
