"""The pack as a whole: rule metadata, the per-stack config files, the README, the entry point."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from pulumi_policy import (
    EnforcementLevel,
    ResourceValidationPolicy,
    Severity,
    StackValidationPolicy,
)

from coldreach import graph
from policies import catalog, resource_types, stack_config
from policies.model import RULES, policy_of, property_rule

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
STACKS = sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))


@pytest.mark.parametrize("rule", catalog.rules(), ids=lambda r: r.id)
def test_rule_metadata(rule: catalog.Rule) -> None:
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.name)
    assert rule.sources and all(s.strip() for s in rule.sources)
    assert rule.description
    assert rule.enforcement in (EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY)
    assert rule.is_stack_rule or rule.types
    policy = policy_of(rule)
    assert isinstance(
        policy, StackValidationPolicy if rule.is_stack_rule else ResourceValidationPolicy
    )
    assert policy.name == rule.name
    assert policy.severity == rule.severity
    assert policy.tags is not None and rule.id in policy.tags
    assert policy.description is not None and policy.description.startswith(f"[{rule.id}]")


def test_names_and_ids_are_unique() -> None:
    rules = catalog.rules()
    assert len({r.name for r in rules}) == len({r.id for r in rules}) == len(rules)


@pytest.mark.parametrize("expectation", [{}, {"must_be": True, "must_not_be": False}])
def test_property_rule_takes_exactly_one_expectation(expectation: dict[str, bool]) -> None:
    before = list(RULES)
    with pytest.raises(ValueError, match="exactly one of must_be and must_not_be"):
        property_rule(
            "Z1",
            "unregistered-example",
            types="aws:example/example:Example",
            prop="enabled",
            message="enabled is not true",
            sources=("none",),
            severity=Severity.LOW,
            description="Never registered",
            **expectation,
        )
    assert list(RULES) == before


def test_every_stack_has_a_policy_config() -> None:
    assert STACKS == ["dev", "prod", "staging"]
    assert sorted(p.stem for p in (POLICIES / "config").glob("*.json")) == STACKS


@pytest.mark.parametrize("stack", STACKS)
def test_policy_config_names_real_policies_with_declared_properties(stack: str) -> None:
    config = json.loads(stack_config.path(stack).read_text())
    for name, entry in config.items():
        if name == "all":
            EnforcementLevel(entry)
            continue
        rule = catalog.rule(name)
        assert rule.name == name, f"{stack}: use the policy name, not the id ({name})"
        if isinstance(entry, str):
            EnforcementLevel(entry)
            continue
        EnforcementLevel(entry.get("enforcementLevel", "mandatory"))
        assert set(entry) - {"enforcementLevel"} <= set(rule.config), f"{stack}: {name}"


def test_prod_is_strictest() -> None:
    """No rule is weaker in prod than in another stack."""
    rank = {
        EnforcementLevel.MANDATORY: 2,
        EnforcementLevel.ADVISORY: 1,
        EnforcementLevel.DISABLED: 0,
    }
    prod = stack_config.load("prod")
    for stack in ("dev", "staging"):
        other = stack_config.load(stack)
        for rule in catalog.rules():
            assert rank[stack_config.level(rule, prod)] >= rank[stack_config.level(rule, other)]
            for key, value in stack_config.properties(rule, prod).items():
                if key == "minimumDays":
                    assert value >= stack_config.properties(rule, other)[key]


def test_unknown_stack_gets_every_rules_default_level() -> None:
    assert stack_config.load("feature-branch") == {}
    levels = {stack_config.level(r, {}) for r in catalog.rules()}
    assert levels == {EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY}
    assert stack_config.level(catalog.rule("A1"), {"all": "advisory"}) == EnforcementLevel.ADVISORY


def test_stateful_types_cover_the_promotion_checks() -> None:
    assert set(graph.STATEFUL_TYPES) == set(resource_types.STATEFUL)


def test_readme_lists_every_rule_and_every_suppression_reason() -> None:
    readme = (POLICIES / "README.md").read_text()
    for rule in catalog.rules():
        assert re.search(rf"\| {re.escape(rule.id)} \| `{re.escape(rule.name)}` \|", readme), (
            rule.id
        )
    assert "## Suppressions" in readme
    for suppressed in ("AVD-AWS-0053", "CKV_AWS_260", "AVD-AWS-0104", "SH EC2.21"):
        assert suppressed in readme


def test_main_only_builds_the_pack() -> None:
    """`PolicyPack(...)` serves forever, so the entry point holds nothing else worth importing."""
    tree = ast.parse((POLICIES / "__main__.py").read_text())
    assert not [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert any(isinstance(c.func, ast.Name) and c.func.id == "PolicyPack" for c in calls)
    manifest = (POLICIES / "PulumiPolicy.yaml").read_text()
    assert "name: python" in manifest
