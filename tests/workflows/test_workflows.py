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
# A full commit SHA (a tag can be moved to other code) and, for people and
# Dependabot, the version it is.
PINNED = re.compile(r"^\s*(- )?uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")
LEVELS = {"none": 0, "read": 1, "write": 2}


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


def test_actions_are_pinned_to_commits_with_their_version() -> None:
    assert all_uses()
    for path in WORKFLOWS.glob("*.yml"):
        for line in path.read_text().splitlines():
            if re.match(r"^\s*(- )?uses: (?!\./)", line):
                assert PINNED.match(line), f"{path.name}: {line.strip()} is not pinned to a commit"


def granted(permissions: str | dict[str, str] | None, scope: str) -> int:
    """The level a `permissions:` value gives one scope (GitHub's shorthands included)."""
    if permissions is None:
        # Unset means the repository's default token, which a deploy must not rely on.
        return -1
    if isinstance(permissions, str):
        return {"read-all": 1, "write-all": 2}.get(permissions, 0)
    return LEVELS[permissions.get(scope, "none")]


def calls() -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(caller file, job id, calling job, caller workflow) for every reusable-workflow call."""
    found = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        doc = load(path.name)
        for job_id, job in doc["jobs"].items():
            if "uses" in job:
                found.append((path.name, job_id, job, doc))
    return found


def test_deploys_call_a_reusable_workflow() -> None:
    assert {(name, job) for name, job, _, _ in calls()} >= {
        ("deploy.yml", "dev"),
        ("deploy.yml", "staging"),
        ("deploy.yml", "prod"),
    }


@pytest.mark.parametrize(
    ("caller", "job_id", "job", "doc"), calls(), ids=[f"{c[0]}:{c[1]}" for c in calls()]
)
def test_callers_grant_what_called_workflows_ask_for(
    caller: str, job_id: str, job: dict[str, Any], doc: dict[str, Any]
) -> None:
    """A called workflow's jobs get at most the caller's permissions: GitHub rejects the
    whole run ("is requesting 'id-token: write', but is only allowed 'id-token: none'")."""
    assert job["uses"].startswith("./.github/workflows/"), "only local workflows are checked"
    callee = load(Path(job["uses"]).name)
    grant = job.get("permissions", doc.get("permissions"))
    for callee_id, callee_job in callee["jobs"].items():
        asks = callee_job.get("permissions", callee.get("permissions")) or {}
        assert isinstance(asks, dict), f"{callee_id}: ask for scopes by name"
        for scope, level in asks.items():
            assert granted(grant, scope) >= LEVELS[level], (
                f"{caller} job {job_id} grants {scope}: "
                f"{grant.get(scope, 'none') if isinstance(grant, dict) else grant}, "
                f"but {job['uses']} job {callee_id} asks for {level}"
            )
    declared = callee["on"]["workflow_call"]
    passed = job.get("secrets", {})
    assert passed != "inherit", "pass the secrets the called workflow declares, by name"
    for name, spec in (declared.get("secrets") or {}).items():
        assert not spec.get("required") or name in passed, f"{job_id} does not pass {name}"
    for name, spec in (declared.get("inputs") or {}).items():
        assert not spec.get("required") or name in job.get("with", {}), f"{job_id}: {name}"


def test_pull_requests_test_preview_and_cancel_superseded_runs() -> None:
    pr = load("pull-request.yml")
    assert set(pr["on"]) == {"pull_request"}
    assert "pull_request.number" in pr["concurrency"]["group"]
    assert pr["concurrency"]["cancel-in-progress"] is True

    offline = pr["jobs"]["offline"]
    runs = " ".join(s.get("run", "") for s in steps(offline))
    assert "make test" in runs and "coldreach plan" in runs and "coldreach cost" in runs
    assert runs.index("make test") < runs.index("make soak"), "every test, the soak ones too"
    # Phase 3 previewed offline (plan with its policy findings, cost) and the next stage of
    # the 2 -> 3 route gated on losing nothing stateful.
    assert '--stack "${stack}" --phase 3' in runs
    assert 'coldreach promote --stack "${stack}" --to 3 --dry-run' in runs
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
    assert [s.get("run") for s in steps(jobs["test"]) if "make" in s.get("run", "")] == [
        "make test",
        "make soak",
    ]
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
        next(i for i, r in enumerate(runs) if "coldreach gate preview.json --stack" in r),
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


@pytest.mark.parametrize("name", ["pull-request.yml", "deploy.yml", "deploy-stack.yml"])
def test_scripts_take_expressions_through_the_environment(name: str) -> None:
    """`${{ inputs.x }}` spliced into a script runs whatever the value says."""
    for job in load(name)["jobs"].values():
        for step in steps(job):
            assert "${{" not in step.get("run", ""), f"{name}: {step.get('name', step['run'])}"


@pytest.mark.parametrize("name", ["pull-request.yml", "deploy.yml", "deploy-stack.yml"])
def test_checkouts_leave_no_token_behind(name: str) -> None:
    for job in load(name)["jobs"].values():
        for step in steps(job):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


def test_stacks_are_created_on_first_use() -> None:
    deploy = steps(load("deploy-stack.yml")["jobs"]["deploy"])
    runs = [s.get("run", "") for s in deploy]
    create = next(i for i, r in enumerate(runs) if r.startswith("pulumi stack select --create"))
    preview = next(i for i, r in enumerate(runs) if r.startswith("pulumi preview"))
    assert create < preview
    preview_job = load("pull-request.yml")["jobs"]["preview"]
    [pulumi] = [s for s in steps(preview_job) if s.get("uses", "").startswith("pulumi/actions@")]
    assert pulumi["with"]["upsert"] is True
