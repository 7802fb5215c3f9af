"""The promotion rehearsed in the emulator: phase 1 deployed into moto, phase 2 applied as an
update of it, every stateful resource keeping its id and data (and `verify --kept` saying so)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

import components.database
from coldreach import cli, promote, stacks
from coldreach.evaluation import evaluate_stack
from coldreach.local import moto_server
from coldreach.rehearsal import Protected, Rehearsal, UpdateBackend, rehearse
from coldreach.replacement import compare
from coldreach.runtime.emulator import MotoBackend, UnsupportedChange
from coldreach.runtime.model import reveal
from coldreach.verify import Aws, verify
from coldreach.verify.findings import FAIL, PASS
from coldreach.verify.kept import MARKER_TAG, check_kept, write
from policies import tokens as t

REGION = "us-east-1"
CERTIFICATE = {"cold-reach:certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc"}


@dataclass
class Rehearsed:
    result: Rehearsal
    aws: Aws

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)  # pyright: ignore


@pytest.fixture(scope="class")
def dev() -> Iterator[Rehearsed]:
    """dev rehearsed 1 -> 2 once for the class, in a moto account of its own (closed
    before the other tests open theirs)."""
    with mock_aws():
        aws = Aws(REGION, emulator=True)
        yield Rehearsed(rehearse("dev", MotoBackend(REGION), aws, 1), aws)


class TestDevOneToTwo:
    def test_every_stateful_resource_keeps_its_id(self, dev: Rehearsed) -> None:
        ids = dev.result.stateful_ids()
        assert {r.type for r, _ in ids} == {
            t.RDS_INSTANCE,
            t.SECRET,
            t.ECR_REPOSITORY,
            t.BUCKET,
        }
        assert dev.result.changed_ids == []
        assert all(now == r.id and now for r, now in ids)

    def test_the_update_is_what_promote_assessed_with_the_same_replacement_table(
        self, dev: Rehearsed
    ) -> None:
        """Creates, updates and replaces by URN match the offline assessment `promote` prints."""
        config = stacks.load(stacks.find_root(), "dev").with_phase(1)
        route = promote.route_to(config, 2)
        offline = compare(
            evaluate_stack("dev", 1),
            evaluate_stack("dev", 1, overrides=promote.overrides_for(config, route.stages[0])),
        )
        rehearsed = dev.result.stages[0].steps
        assert sorted((s.op, s.resource.urn) for s in rehearsed) == sorted(
            (s.op, s.resource.urn) for s in offline
        )
        by_name = {s.resource.name: s for s in rehearsed if s.op != "create"}
        assert by_name["web-task"].op == "replace"
        assert by_name["web-task"].inputs == ("containerDefinitions",)
        # In the emulator the new revision has a new ARN, so the service follows it in place.
        assert by_name["web-service"].op == "update"
        assert set(by_name["web-service"].inputs) == {"networkConfiguration", "taskDefinition"}
        assert not [s for s in rehearsed if s.blocking]

    def test_the_updates_are_applied_through_the_apis(self, dev: Rehearsed) -> None:
        ecs, ec2 = dev.client("ecs"), dev.client("ec2")
        before, after = dev.result.before, dev.result.after
        task = next(r for r in before.of_type(t.TASK_DEFINITION) if r.name == "web-task")
        old_task = task.out("arn")
        new_task = after.by_urn(task.urn).out("arn")
        assert old_task != new_task
        assert ecs.describe_task_definition(taskDefinition=old_task)["taskDefinition"][
            "status"
        ] == ("INACTIVE")
        cluster = after.output("cluster_name")
        service = ecs.describe_services(
            cluster=cluster, services=[after.output("web_service_name")]
        )
        found = service["services"][0]
        assert found["serviceArn"] == before.named("web-service").id  # updated, not recreated
        assert found["taskDefinition"] == new_task
        network = found["networkConfiguration"]["awsvpcConfiguration"]
        private = {r.id for r in after if r.type == t.SUBNET and "private" in r.name}
        assert network["assignPublicIp"] == "DISABLED"
        assert set(network["subnets"]) == private
        db_sg = before.named("db-sg")
        tags = ec2.describe_security_groups(GroupIds=[db_sg.id])["SecurityGroups"][0]["Tags"]
        assert {x["Key"]: x["Value"] for x in tags} == reveal(after.by_urn(db_sg.urn).get("tags"))

    def test_verify_kept_passes_and_the_promoted_stack_passes_verify(self, dev: Rehearsed) -> None:
        findings = verify(reveal(dev.result.after.outputs), dev.aws, dev.result.baseline)
        assert [f for f in findings if f.failed] == []
        kept = [f for f in findings if f.check.startswith("kept.")]
        assert len(kept) == len(dev.result.baseline["resources"]) == 5
        assert {f.result for f in kept} == {PASS}
        assert any(f.check == "rds.replica" for f in findings)  # phase 2 is what verify saw


def test_prod_sizes_rehearse_with_every_stateful_id_kept() -> None:
    """Production settings (Multi-AZ, a NAT per AZ, two cache nodes) from phase 1."""
    with mock_aws():
        aws = Aws(REGION, emulator=True)
        result = rehearse("prod", MotoBackend(REGION), aws, 1)
        kept = check_kept(result.baseline, aws)
    assert result.stateful_ids() and result.changed_ids == []
    assert len(kept) == 5 and {f.result for f in kept} == {PASS}
    creates = [s for s in result.stages[0].steps if s.op == "create"]
    assert sum(s.resource.type == "aws:ec2/natGateway:NatGateway" for s in creates) == 2


def test_verify_kept_fails_when_data_or_identity_changed() -> None:
    """Lost data and a stand-in resource under the same name are both caught."""
    with mock_aws():
        aws = Aws(REGION, emulator=True)
        result = rehearse("dev", MotoBackend(REGION), aws, 1)
        repo = result.before.named("registry-repo").id
        secret = result.before.named("db-credentials").id
        ecr = boto3.client("ecr", region_name=REGION)
        ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": MARKER_TAG}])
        boto3.client("secretsmanager", region_name=REGION).put_secret_value(
            SecretId=secret, SecretString="something else"
        )
        rds = boto3.client("rds", region_name=REGION)
        db = result.before.named("db-instance").id
        rds.modify_db_instance(DBInstanceIdentifier=db, DeletionProtection=False)
        rds.delete_db_instance(DBInstanceIdentifier=db, SkipFinalSnapshot=True)
        rds.create_db_instance(
            DBInstanceIdentifier=db, Engine="postgres", DBInstanceClass="db.t4g.micro"
        )
        failed = {(f.check, f.resource.split(" ")[0]): f for f in check_kept(result.baseline, aws)}
    assert failed[("kept.ecr", "registry-repo")].result == FAIL
    assert "images" in failed[("kept.ecr", "registry-repo")].detail
    assert failed[("kept.secretsmanager", "db-credentials")].result == FAIL
    assert "value sha256" in failed[("kept.secretsmanager", "db-credentials")].detail
    assert failed[("kept.rds", "db-instance")].result == FAIL
    # moto derives DbiResourceId from the identifier; the creation time tells them apart.
    assert "created" in failed[("kept.rds", "db-instance")].detail
    assert failed[("kept.s3", "edge-access-logs")].result == PASS


def test_an_update_deletes_and_modifies_what_the_program_no_longer_declares() -> None:
    """Without the certificate the HTTPS listener is deleted and HTTP forwards again."""
    with mock_aws():
        moto = MotoBackend(REGION)
        deployed = evaluate_stack("dev", 1, backend=moto, overrides=CERTIFICATE)
        update = UpdateBackend(moto, deployed)
        after = evaluate_stack("dev", 1, backend=update)
        update.finish()
        elbv2 = boto3.client("elbv2", region_name=REGION)
        alb = after.named("edge-alb").out("arn")
        listeners = elbv2.describe_listeners(LoadBalancerArn=alb)["Listeners"]
    ops = {(s.op, s.resource.name) for s in update.steps}
    https = deployed.named("edge-https")
    assert ("delete", "edge-https") in ops and ("update", "edge-http") in ops
    assert [x["ListenerArn"] for x in listeners] == [deployed.named("edge-http").id]
    assert https.id not in {x["ListenerArn"] for x in listeners}
    assert listeners[0]["DefaultActions"][0]["Type"] == "forward"


def test_a_stateful_replacement_stops_the_update_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with mock_aws():
        moto = MotoBackend(REGION)
        deployed = evaluate_stack("dev", 1, backend=moto)
        monkeypatch.setattr(components.database, "ENGINE", "aurora-postgresql")
        with pytest.raises(Protected, match=r"db-instance \(aws:rds/instance:Instance\) is "
                           "protected.*would be replaced: engine changed"):  # fmt: skip
            evaluate_stack("dev", 1, backend=UpdateBackend(moto, deployed))


def test_a_change_the_emulator_cannot_apply_is_refused_by_name() -> None:
    with mock_aws():
        moto = MotoBackend(REGION)
        deployed = evaluate_stack("dev", 1, backend=moto)
        # Log groups and the log bucket's lifecycle both follow the retention: whichever
        # the program registers first is named.
        refusal = r"the moto backend cannot update \w+ of aws:\S+ \('[\w-]+'\) in a rehearsal"
        with pytest.raises(UnsupportedChange, match=refusal):
            evaluate_stack(
                "dev",
                1,
                backend=UpdateBackend(moto, deployed),
                overrides={"cold-reach:logRetentionDays": "90"},
            )


def test_the_commands_rehearse_then_verify_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`local rehearse` against its own server writes the baseline and the outputs and
    prints every stateful id as kept; `verify --kept` reads a baseline, and refuses a bad one."""
    baseline, outputs = tmp_path / "baseline.json", tmp_path / "outputs.json"
    args = ["--baseline", str(baseline), "--outputs", str(outputs)]
    assert cli.main(["local", "rehearse", "--stack", "dev", *args]) == 0
    out = capsys.readouterr().out
    assert "Stage 'phase 2': 34 created, 3 updated, 1 replaced, 0 deleted" in out
    assert "CHANGED" not in out and out.count("kept") >= 5
    assert f"--kept {baseline}" in out and "uv run coldreach verify --outputs" in out
    doc = json.loads(baseline.read_text())
    assert doc["phase"] == 1 and len(doc["resources"]) == 5
    assert json.loads(outputs.read_text())["phase"] == 2

    with moto_server() as url:
        result = rehearse("dev", MotoBackend(REGION, endpoint_url=url), Aws(REGION, url), 1)
        write(baseline, result.baseline)
        outputs.write_text(json.dumps(reveal(result.after.outputs)))
        verify_args = ["verify", "--outputs", str(outputs), "--endpoint-url", url]
        assert cli.main([*verify_args, "--kept", str(baseline), "--json"]) == 0
        findings = json.loads(capsys.readouterr().out)["findings"]
        assert sum(f["check"].startswith("kept.") for f in findings) == 5
        baseline.write_text('{"resources": [{"type": "aws:ec2/vpc:Vpc"}]}')
        assert cli.main([*verify_args, "--kept", str(baseline)]) == 2
        assert "resource types verify cannot read" in capsys.readouterr().err


def test_rehearse_refuses_a_stack_without_a_route_before_starting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Phase 3 is the last: no route onwards, refused before the emulator starts.
    assert cli.main(["local", "rehearse", "--stack", "staging", "--from", "3"]) == 2
    err = capsys.readouterr().err
    assert "no promotion route to phase 4" in err
    assert "moto server listening" not in err


def test_staging_rehearses_two_to_three_as_far_as_the_emulator_goes() -> None:
    """The 2 -> 3 stages applied one by one: the config stages as updates keeping every
    stateful id and its data; the command stages and a retire the emulator cannot finish
    are named, with what to check instead, and nothing is half deleted."""
    with mock_aws():
        aws = Aws(REGION, emulator=True)
        result = rehearse("staging", MotoBackend(REGION), aws, 2)
        kept = check_kept(result.kept_baseline(), aws)
        redis = boto3.client("elasticache", region_name=REGION).describe_replication_groups()
    assert [run.stage.name for run in result.stages] == [
        "phase 3 alongside",
        "10% to the cluster",
        "50% to the cluster",
        "100% to the cluster",
    ]
    first, *traffic = result.stages
    assert not [s for s in first.steps if s.op in ("replace", "delete")]
    for run in traffic:  # each step is the listener's weights, in place
        assert [(s.op, s.resource.name, s.inputs) for s in run.steps] == [
            ("update", "edge-http", ("defaultActions",))
        ]
    assert result.changed_ids == [] and kept and {f.result for f in kept} == {PASS}
    skipped = {stage.name: why for stage, why in result.not_rehearsed}
    assert list(skipped) == ["shards migrated", "Celery drained", "retire ECS, Celery, Redis"]
    assert "migrate-shards" in skipped["shards migrated"]
    assert "cannot delete" in skipped["retire ECS, Celery, Redis"]
    assert len(redis["ReplicationGroups"]) == 1  # the unfinished retire deleted nothing


def test_a_retire_stage_deletes_only_what_it_names_once_unprotected() -> None:
    """A protected resource the stage names is deleted (as after `pulumi state unprotect`);
    one it does not name still stops the update."""
    with mock_aws():
        backend = MotoBackend(REGION)
        deployed = evaluate_stack("dev", 2, backend=backend)
        [bucket] = [r for r in deployed if r.type == t.BUCKET]
        assert bucket.protect
        update = UpdateBackend(backend, deployed, frozenset({"cache-redis"}))
        update.before = {bucket.urn: bucket}
        update.order = [bucket.urn]
        with pytest.raises(Protected, match=bucket.name):
            update.finish()
        # Named: past the protection, on to its deletion (moto holds no deleter for a bucket).
        named = UpdateBackend(backend, deployed, frozenset({bucket.name}))
        named.before = {bucket.urn: bucket}
        named.order = [bucket.urn]
        with pytest.raises(UnsupportedChange, match=f"cannot delete {t.BUCKET}"):
            named.finish()
        assert [(s.op, s.resource.name) for s in named.steps] == [("delete", bucket.name)]
