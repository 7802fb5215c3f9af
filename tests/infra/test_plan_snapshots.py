"""Every URN and every input of each stack's plan, as reviewed.

A refactoring must not change what a stack deploys without someone noticing:
each stack's resources and outputs are compared with the snapshot committed
in tests/infra/snapshots/. When a change is deliberate, regenerate and review
the diff in the pull request:

    UPDATE_SNAPSHOTS=1 uv run --frozen pytest tests/infra/test_plan_snapshots.py

The app image's tag is a hash of app/, so it is masked: app changes are not
infrastructure changes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from coldreach.runtime import Deployment
from components.registry import source_hash
from infra.layers.compute import APP_DIR

SNAPSHOTS = Path(__file__).parent / "snapshots"
CASES: dict[str, tuple[str, int | None, dict[str, str]]] = {
    "dev": ("dev", None, {}), "dev-phase2": ("dev", 2, {}), "staging": ("staging", None, {}),
    "prod": ("prod", None, {}), "staging-phase3": ("staging", 3, {}),
    # The target of the database-access rollout (docs/database-access.md): tokens, the
    # one-off tasks, the rotation of the master password.
    "staging-iam": ("staging", None, {"dbIamAuth": "on"}),
}  # fmt: skip


def _document(deployment: Deployment) -> dict[str, Any]:
    text = json.dumps(deployment.to_json(), indent=1, sort_keys=True)
    return json.loads(text.replace(source_hash(APP_DIR), "<app-source-hash>"))


def _differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    old = {r["urn"]: r for r in before["resources"]}
    new = {r["urn"]: r for r in after["resources"]}
    found = [f"removed {urn}" for urn in sorted(set(old) - set(new))]
    found += [f"added {urn}" for urn in sorted(set(new) - set(old))]
    for urn in sorted(set(old) & set(new)):
        for key in sorted(set(old[urn]) | set(new[urn])):
            if old[urn].get(key) != new[urn].get(key):
                found.append(f"changed {urn}: {key}")
    for key in sorted(set(before["outputs"]) | set(after["outputs"])):
        if before["outputs"].get(key) != after["outputs"].get(key):
            found.append(f"changed output {key}")
    return found


@pytest.mark.parametrize("case", sorted(CASES))
def test_plan_matches_the_reviewed_snapshot(program: Callable[..., Deployment], case: str) -> None:
    path = SNAPSHOTS / f"{case}.json"
    stack, phase, overrides = CASES[case]
    current = _document(program(stack, phase, **overrides))
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    assert path.is_file(), f"no snapshot {path.name}: run with UPDATE_SNAPSHOTS=1 and review it"
    reviewed = json.loads(path.read_text())
    differences = _differences(reviewed, current)
    assert not differences, (
        f"{case}: the plan differs from tests/infra/snapshots/{path.name}:\n  "
        + "\n  ".join(differences[:40])
        + "\nIf deliberate: UPDATE_SNAPSHOTS=1 uv run --frozen pytest "
        "tests/infra/test_plan_snapshots.py, then review the diff."
    )
