"""The staged 2 -> 3 route (coldreach/cutover.py) walked under the offline runtime for
staging and prod: no stage loses a stateful resource of the stage before, only the
retire stage deletes, only what it names, and only once its preconditions hold."""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
from pathlib import Path

import pytest

from coldreach import cutover, graph, promote, stacks
from coldreach.cli import main
from coldreach.replacement import compare
from coldreach.runtime import Deployment

REPO = Path(__file__).resolve().parents[2]
ROUTE = promote.ROUTES[3]
EVERY_FACT = frozenset(fact.name for stage in ROUTE.stages for fact in stage.needs)
RETIRE = len(ROUTE.stages) - 1


@pytest.fixture(scope="module", params=["staging", "prod"])
def walked(request: pytest.FixtureRequest) -> tuple[stacks.StackConfig, list[Deployment]]:
    config = stacks.load(REPO, request.param)
    return config, promote.walk(REPO, config, ROUTE)


def at(config: stacks.StackConfig, index: int) -> stacks.StackConfig:
    """The stack file as it reads once stages 0..index are written."""
    return dataclasses.replace(
        config, config={**config.config, **ROUTE.overrides_through(config, index)}
    )


def test_the_route_is_the_cutover_in_order() -> None:
    assert [s.name for s in ROUTE.stages] == [
        "phase 3 alongside",
        "shards migrated",
        "10% to the cluster",
        "50% to the cluster",
        "100% to the cluster",
        "Celery drained",
        "retire ECS, Celery, Redis",
    ]
    # Only the last stage may delete anything stateful, and it names what.
    assert [bool(s.retires) for s in ROUTE.stages] == [False] * RETIRE + [True]
    assert ROUTE.stages[RETIRE].retires == {"cache-redis", "cache-url", "cache-auth-token-secret"}


def test_every_stage_keeps_every_stateful_urn_of_the_stage_before(
    walked: tuple[stacks.StackConfig, list[Deployment]],
) -> None:
    config, deployments = walked
    assert deployments[0].of_type("aws:ecs/service:Service")  # the start is phase 2
    assert not deployments[0].of_type("aws:eks/cluster:Cluster")
    for i, stage in enumerate(ROUTE.stages):
        before, after = deployments[i], deployments[i + 1]
        kept = {r.urn: r.id for r in graph.stateful(after)}
        lost = {r.name for r in graph.stateful(before) if r.urn not in kept}
        assert lost == set(stage.retires), stage.name
        for r in graph.stateful(before):
            if r.urn in kept:
                assert kept[r.urn] == r.id, (stage.name, r.name)
        assert not [s for s in compare(before, after) if s.op == "replace" and s.stateful]
        promotion = promote.assess(
            at(config, i - 1), ROUTE, stage, before, after, confirmed=EVERY_FACT
        )
        assert not promotion.refused, (stage.name, promotion.refusals, promotion.blocked)
    # Phase 3 brings the cluster, MSK and shard 2 beside what phase 2 had.
    names = {r.name for r in deployments[1]}
    assert {"eks-cluster", "kafka-cluster", "shard2-instance", "db-instance"} <= names
    # Retired: no ECS service, no Redis; the phase-2 database (shard 1) is still there.
    end = deployments[-1]
    assert not end.of_type("aws:ecs/service:Service")
    assert not end.of_type("aws:elasticache/replicationGroup:ReplicationGroup")
    assert "db-instance" in {r.name for r in end}


def test_retiring_is_refused_until_its_preconditions_hold(
    walked: tuple[stacks.StackConfig, list[Deployment]],
) -> None:
    config, deployments = walked
    retire = ROUTE.stages[RETIRE]
    before, after = deployments[RETIRE], deployments[RETIRE + 1]
    at_100 = at(config, RETIRE - 2)

    # The Celery queue not attested as drained.
    refused = promote.assess(at_100, ROUTE, retire, before, after)
    assert refused.refused and not refused.blocked
    assert any("not attested: celery-drained" in r for r in refused.refusals)

    # Traffic not all on the cluster yet (the stack file at 50%).
    at_50 = at(config, RETIRE - 3)
    refused = promote.assess(at_50, ROUTE, retire, before, after, confirmed=EVERY_FACT)
    assert refused.refusals == [
        "eksTrafficPercent is 50: ECS retires only once the cluster takes 100% of the requests"
    ]

    # A stage that deletes ElastiCache without saying so is refused, naming it.
    unsaid = dataclasses.replace(retire, retires=frozenset())
    refused = promote.assess(at_100, ROUTE, unsaid, before, after, confirmed=EVERY_FACT)
    assert sorted(s.resource.name for s in refused.blocked) == sorted(retire.retires)
    assert any(
        s.reason().startswith("cache-redis (aws:elasticache/replicationGroup:ReplicationGroup)")
        for s in refused.blocked
    )

    # The deployment behind the stack file: the outputs still say 50%.
    outputs = {"eks_cluster_name": "cold-reach", "eks_traffic_percent": 50}
    refused = promote.assess(
        at_100, ROUTE, retire, before, after, outputs=outputs, confirmed=EVERY_FACT
    )
    assert refused.refusals == [
        "the outputs say the cluster takes 50% while the stack file says 100%: deploy the "
        "stack file first"
    ]
    allowed = promote.assess(
        at_100,
        ROUTE,
        retire,
        before,
        after,
        outputs={**outputs, "eks_traffic_percent": 100},
        confirmed=EVERY_FACT,
    )
    assert not allowed.refused
    assert sorted(s.resource.name for s in allowed.of("delete") if s.stateful) == sorted(
        retire.retires
    )


def test_each_traffic_step_needs_the_hold_before_it(
    walked: tuple[stacks.StackConfig, list[Deployment]],
) -> None:
    config, deployments = walked
    for index, fact in ((2, "shards-verified"), (3, "held-10"), (4, "held-50")):
        stage = ROUTE.stages[index]
        others = EVERY_FACT - {fact}
        promotion = promote.assess(
            at(config, index - 1), ROUTE, stage, deployments[index], deployments[index + 1],
            confirmed=others,
        )  # fmt: skip
        assert [r.split(".")[0] for r in promotion.refusals] == [f"not attested: {fact}"]


# Hand-worked from coldreach/data/prices.yaml, 730 hours a month.
# Stage 1 adds: EKS control plane 730 x 0.10 = 73.00; nodes n x 730 x 0.096 (m6i.large) and
# their gp3 roots n x 20 GB x 0.08; two KMS keys (secrets, MSK) 2 x 1.00; MSK 2 brokers x
# 730 x 0.21 = 306.60 and storage 2 x GB x 0.10; shard 2's secret 0.40, instance and storage.
STAGING_PHASE3 = (
    73.00
    + 2 * 730 * 0.096  # 140.16
    + 2 * 20 * 0.08  # 3.20
    + 2 * 1.00
    + 306.60
    + 2 * 20 * 0.10  # 4.00
    + 0.40
    + 730 * 0.072  # shard 2 db.t3.medium single-AZ: 52.56
    + 20 * 0.115  # 2.30
)  # = 584.22
PROD_PHASE3 = (
    73.00
    + 3 * 730 * 0.096  # 210.24
    + 3 * 20 * 0.08  # 4.80
    + 2 * 1.00
    + 306.60
    + 2 * 100 * 0.10  # 20.00
    + 0.40
    + 730 * 0.318  # shard 2 db.m6g.large Multi-AZ: 232.14
    + 100 * 0.23  # 23.00
)  # = 872.18
# Retiring removes: web and worker Fargate tasks (0.04048 per vCPU-hour, 0.004445 per
# GB-hour), Redis nodes and the two cache secrets (2 x 0.40).
STAGING_RETIRED = (
    2 * 730 * (0.5 * 0.04048 + 1 * 0.004445)  # web: 2 x 0.5 vCPU, 1 GB
    + 1 * 730 * (0.5 * 0.04048 + 1 * 0.004445)  # worker: 1 task
    + 730 * 0.017  # 1 x cache.t3.micro: 12.41
    + 0.80
)  # = 67.27
PROD_RETIRED = (
    3 * 730 * (1 * 0.04048 + 2 * 0.004445)  # web: 3 x 1 vCPU, 2 GB
    + 2 * 730 * (1 * 0.04048 + 2 * 0.004445)  # worker: 2 tasks
    + 2 * 730 * 0.149  # 2 x cache.m6g.large: 217.54
    + 0.80
)  # = 398.54
STAGE_DELTAS = {
    "staging": [STAGING_PHASE3, 0, 0, 0, 0, 0, -STAGING_RETIRED],
    "prod": [PROD_PHASE3, 0, 0, 0, 0, 0, -PROD_RETIRED],
}
START = {"staging": 248.91, "prod": 902.72}


def test_every_stage_costs_what_the_hand_worked_totals_say(
    walked: tuple[stacks.StackConfig, list[Deployment]],
) -> None:
    config, deployments = walked
    totals = [e.monthly_usd for e in promote.stage_costs(deployments)]
    assert totals[0] == START[config.stack]
    deltas = [after - before for before, after in itertools.pairwise(totals)]
    assert deltas == pytest.approx(STAGE_DELTAS[config.stack], abs=0.011)
    assert round(STAGING_PHASE3, 2) == 584.22 and round(PROD_PHASE3, 2) == 872.18
    assert round(STAGING_RETIRED, 2) == 67.27 and round(PROD_RETIRED, 2) == 398.54
    # Traffic steps move requests, not capacity: both fleets run until the retire stage.
    assert len({round(t, 2) for t in totals[1:-1]}) == 1
    assert not [e for e in promote.stage_costs(deployments) if e.missing_prices]


def test_a_command_stage_counts_as_done_once_attested_or_passed() -> None:
    config = stacks.load(REPO, "staging")
    after_stage_1 = at(config, 0)
    assert ROUTE.position(config) == 0
    assert ROUTE.position(after_stage_1) == 1
    assert ROUTE.position(after_stage_1, frozenset({"shards-verified"})) == 2
    assert ROUTE.position(at(config, 3)) == 4  # at 50%: the migration is behind
    assert ROUTE.position(at(config, 4)) == 5
    assert ROUTE.position(at(config, 4), frozenset({cutover.CELERY_DRAINED.name})) == RETIRE
    assert ROUTE.position(at(config, RETIRE)) == len(ROUTE.stages)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def promote_staging(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["promote", "--stack", "staging", "--to", "3", *extra])
    return code, " ".join(capsys.readouterr().out.split())


@pytest.mark.soak  # `promote` evaluates every stage of the route on each of its eight calls
def test_promote_walks_staging_stage_by_stage(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_file = project / "Pulumi.staging.yaml"
    code, out = promote_staging(capsys)
    assert code == 0
    assert "stage 'phase 3 alongside': 171 to create, 2 to update, 0 to replace, 0 to delete" in out
    assert "Monthly cost at the start (phase 2): $248.91" in out
    assert "$833.13 (+$584.22)" in out and "$765.86 (-$67.27)" in out
    assert "cold-reach:phase: 3, cold-reach:eksTrafficPercent: 0." in out
    assert "git commit -m 'Promote staging: phase 3 alongside' Pulumi.staging.yaml" in out
    text = stack_file.read_text()
    assert "cold-reach:phase: 3" in text and "cold-reach:eksTrafficPercent: 0" in text

    # The migration is a command: refused until attested, naming what to check.
    code, out = promote_staging(capsys)
    assert code == 1 and stack_file.read_text() == text
    assert "Refused: stage 'shards migrated' is a command" in out
    assert "not attested: shards-verified. Check `uv run coldreach-app migrate-shards" in out
    assert "then add --confirm shards-verified" in out

    code, out = promote_staging(capsys, "--confirm", "shards-verified")
    assert code == 0
    assert "stage '10% to the cluster': 0 to create, 1 to update, 0 to replace" in out
    assert "cold-reach:eksTrafficPercent: 10" in stack_file.read_text()

    # The deployment has not caught up: the outputs still say 0%.
    outputs = project / "outputs.json"
    outputs.write_text(json.dumps({"eks_cluster_name": "c", "eks_traffic_percent": 0}))
    code, out = promote_staging(capsys, "--confirm", "held-10", "--outputs", str(outputs))
    assert code == 1
    assert "the outputs say the cluster takes 0% while the stack file says 10%" in out

    promote.set_config(stack_file, "eksTrafficPercent", "100")
    before = stack_file.read_text()
    code, out = promote_staging(capsys)
    assert code == 1 and stack_file.read_text() == before
    assert "Refused: stage 'Celery drained' is a command" in out
    assert "not attested: celery-drained" in out

    code, out = promote_staging(capsys, "--confirm", "celery-drained", "--dry-run")
    assert code == 0 and stack_file.read_text() == before
    assert "stage 'retire ECS, Celery, Redis'" in out and "0 to replace" in out
    retired = "cache-auth-token-secret, cache-redis, cache-url"
    assert f"Retired on purpose by this stage: {retired}" in out

    code, out = promote_staging(capsys, "--confirm", "celery-drained")
    assert code == 0 and "cold-reach:retireEcs: true" in stack_file.read_text()
    # Protected in the state: Pulumi refuses to delete them until unprotected, before merging.
    unprotect = out.index('pulumi state unprotect --stack "$PULUMI_ORG/cold-reach/staging" --yes')
    assert unprotect < out.index("merge; the deploy workflow")
    assert "ReplicationGroup::cache-redis'" in out[unprotect:]
    code, out = promote_staging(capsys)
    assert code == 0 and "already at phase 3" in out


def test_unreadable_outputs_are_a_clear_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "outputs.json").write_text("[1]")
    assert main(["promote", "--stack", "staging", "--to", "3", "--outputs", "outputs.json"]) == 2
    assert "not the JSON object `pulumi stack output --json` writes" in capsys.readouterr().err
