"""The GitHub workflows: valid against GitHub's schema, and the invariants we rely on."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@(v\d+\.\d+\.\d+|[0-9a-f]{40})$")


def load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps", [])


def all_uses() -> list[str]:
    found: list[str] = []
    for path in WORKFLOWS.glob("*.yml"):
        for job in load(path.name)["jobs"].values():
            found += [s["uses"] for s in steps(job) if "uses" in s]
    return found


def test_every_workflow_is_valid_against_the_github_schema() -> None:
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert len(files) == 3
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            *files,
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actions_are_pinned_to_exact_versions() -> None:
    uses = all_uses()
    assert uses
    for action in uses:
        assert PINNED.match(action), f"{action} is not pinned to vX.Y.Z or a commit"


def test_pull_requests_test_preview_and_cancel_superseded_runs() -> None:
    pr = load("pull-request.yml")
    assert set(pr["on"]) == {"pull_request"}
    assert "pull_request.number" in pr["concurrency"]["group"]
    assert pr["concurrency"]["cancel-in-progress"] is True

    offline = pr["jobs"]["offline"]
    runs = " ".join(s.get("run", "") for s in steps(offline))
    assert "make test" in runs and "coldreach plan" in runs and "coldreach cost" in runs
    assert "GITHUB_STEP_SUMMARY" in runs
    assert "secrets." not in str(offline), "the offline job must work without cloud secrets"

    preview = pr["jobs"]["preview"]
    assert preview["needs"] == "offline"
    assert "head.repo.full_name == github.repository" in preview["if"]
    assert preview["permissions"]["id-token"] == "write"
    assert preview["strategy"]["matrix"]["stack"] == ["dev", "staging", "prod"]
    [aws] = [s for s in steps(preview) if s.get("uses", "").startswith("aws-actions/")]
    assert "role-to-assume" in aws["with"] and "aws-access-key-id" not in aws["with"]
    [pulumi] = [s for s in steps(preview) if s.get("uses", "").startswith("pulumi/actions@")]
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["comment-on-pr"] is True
    assert pulumi["with"]["policyPacks"] == "policies"


def test_deploys_go_dev_then_staging_then_prod_without_cancelling() -> None:
    deploy = load("deploy.yml")
    assert deploy["on"] == {"push": {"branches": ["main"]}}
    assert deploy["concurrency"]["cancel-in-progress"] is False
    jobs = deploy["jobs"]
    assert jobs["dev"]["needs"] == "test"
    assert jobs["staging"]["needs"] == "dev"
    assert jobs["prod"]["needs"] == "staging"
    for stack in ("dev", "staging", "prod"):
        assert jobs[stack]["uses"] == "./.github/workflows/deploy-stack.yml"
        assert jobs[stack]["with"]["stack"] == stack


def test_each_stack_deploy_gates_before_up_and_verifies_after() -> None:
    job = load("deploy-stack.yml")["jobs"]["deploy"]
    # The GitHub environment named after the stack carries the required reviewers.
    assert job["environment"] == "${{ inputs.stack }}"
    names = [s.get("name", s.get("uses", "")) for s in steps(job)]
    runs = [s.get("run", "") for s in steps(job)]
    order = [
        next(i for i, r in enumerate(runs) if "pulumi preview" in r and "--json" in r),
        next(i for i, r in enumerate(runs) if "coldreach gate preview.json" in r),
        next(i for i, r in enumerate(runs) if r.startswith("pulumi up")),
        next(i for i, r in enumerate(runs) if "coldreach verify" in r),
    ]
    assert order == sorted(order), names
    assert "secrets.AWS" not in str(job), "AWS access comes from OIDC, not stored keys"


@pytest.mark.parametrize("name", ["pull-request.yml", "deploy.yml", "deploy-stack.yml"])
def test_permissions_are_explicit_and_minimal(name: str) -> None:
    doc = load(name)
    assert doc["permissions"]["contents"] == "read"
    assert "write-all" not in str(doc)
