"""Per-stack enforcement: policies/config/<stack>.json.

The files use the format of `pulumi preview --policy-pack-config`: a policy
name maps to an enforcement level (`"advisory"`) or to an object with
`enforcementLevel` and the policy's properties (`{"minimumDays": 365}`); the
key `all` sets the level of every policy not named. The offline evaluation
reads the same file, so both paths enforce the same levels.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pulumi_policy import EnforcementLevel

from policies.model import Rule

CONFIG_DIR = Path(__file__).resolve().parent / "config"


def path(stack: str) -> Path:
    return CONFIG_DIR / f"{stack}.json"


def load(stack: str | None) -> dict[str, Any]:
    """The stack's policy config; {} (the rules' own defaults) when there is no file."""
    if stack is None or not path(stack).exists():
        return {}
    return json.loads(path(stack).read_text())


def level(rule: Rule, config: Mapping[str, Any]) -> EnforcementLevel:
    entry = config.get(rule.name)
    if isinstance(entry, str):
        return EnforcementLevel(entry)
    if isinstance(entry, Mapping) and "enforcementLevel" in entry:
        return EnforcementLevel(entry["enforcementLevel"])
    if "all" in config:
        return EnforcementLevel(config["all"])
    return rule.enforcement


def properties(rule: Rule, config: Mapping[str, Any]) -> dict[str, Any]:
    """The rule's properties: schema defaults, then the file's values."""
    found = {k: v["default"] for k, v in rule.config.items() if "default" in v}
    entry = config.get(rule.name)
    if isinstance(entry, Mapping):
        found.update({k: v for k, v in entry.items() if k != "enforcementLevel"})
    return found
