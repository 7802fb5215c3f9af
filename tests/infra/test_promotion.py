"""Promoting dev from phase 1 to phase 2 in place: nothing stateful is replaced or lost."""

from __future__ import annotations

import pytest

from coldreach import graph
from coldreach.replacement import REPLACEMENT_INPUTS, compare, forced_replacements
from coldreach.runtime import Deployment
from infra.config import ConfigError, parse

RDS_FORCE_NEW = (
    "identifier",
    "engine",
    "username",
    "dbName",
    "storageEncrypted",
    "kmsKeyId",
    "availabilityZone",
)


@pytest.fixture(scope="module")
def before(program) -> Deployment:
    return program("dev")


@pytest.fixture(scope="module")
def after(program) -> Deployment:
    return program("dev", phase=2)


def test_every_phase1_resource_survives_the_promotion(
    before: Deployment, after: Deployment
) -> None:
    # Only the web task definition is replaced: a new revision, as the provider does for
    # any changed container definition. Nothing stateful is replaced or deleted.
    destructive = [s for s in compare(before, after) if s.destructive]
    assert [(s.op, s.resource.type, s.resource.name, s.inputs) for s in destructive] == [
        ("replace", "aws:ecs/taskDefinition:TaskDefinition", "web-task", ("containerDefinitions",))
    ]
    assert not [s for s in destructive if s.blocking]
    assert {r.urn for r in before} <= {r.urn for r in after}


def test_stateful_resources_keep_urn_id_and_replacement_inputs(
    before: Deployment, after: Deployment
) -> None:
    stateful = graph.stateful(before)
    assert {r.type for r in stateful} >= {
        "aws:rds/instance:Instance",
        "aws:ecr/repository:Repository",
        "aws:s3/bucket:Bucket",
        "aws:secretsmanager/secret:Secret",
    }
    for r in stateful:
        promoted = after.by_urn(r.urn)
        assert promoted.id == r.id
        assert promoted.protect
        assert forced_replacements(r, promoted) == ()
    db = before.of_type("aws:rds/instance:Instance")[0]
    promoted_db = after.by_urn(db.urn)
    for key in RDS_FORCE_NEW:
        assert db.get(key) == promoted_db.get(key), key
    assert set(RDS_FORCE_NEW) <= set(REPLACEMENT_INPUTS["aws:rds/instance:Instance"])
    # Every stateful type has its replacement-forcing inputs curated (stateless ones may too).
    assert set(REPLACEMENT_INPUTS) >= graph.STATEFUL_TYPES


def test_the_service_moves_to_private_subnets_in_place(
    before: Deployment, after: Deployment
) -> None:
    web = next(r for r in before.of_type("aws:ecs/service:Service"))
    promoted = after.by_urn(web.urn)
    assert web.get("networkConfiguration")["assignPublicIp"] is True
    assert promoted.get("networkConfiguration")["assignPublicIp"] is False
    assert promoted.id == web.id


def test_changed_engine_or_missing_database_is_caught(before: Deployment, program) -> None:
    """The check is real: a changed engine on the same URN is a forced replacement."""
    db = before.of_type("aws:rds/instance:Instance")[0]
    changed = Deployment(
        stack="dev",
        project="cold-reach",
        resources=[
            r
            if r.urn != db.urn
            else type(r)(**{**r.__dict__, "inputs": {**r.inputs, "engine": "mysql"}})
            for r in before
        ],
        outputs=before.outputs,
    )
    [change] = [s for s in compare(before, changed) if s.destructive]
    assert change.op == "replace" and change.inputs == ("engine",) and change.blocking
    missing = Deployment("dev", "cold-reach", [r for r in before if r.urn != db.urn], {})
    [gone] = [s for s in compare(before, missing) if s.destructive]
    assert gone.op == "delete" and gone.resource.urn == db.urn and gone.blocking


def test_prod_refuses_single_az_or_a_single_cache_node() -> None:
    prod = {"production": "true", "phase": "2", "dbMultiAz": "true", "cacheNodes": "2"}
    parse("prod", prod.get, "us-east-1")
    with pytest.raises(
        ConfigError, match=r"cold-reach:dbMultiAz = False is not allowed: true on a production"
    ):
        parse("prod", {**prod, "dbMultiAz": "false"}.get, "us-east-1")
    with pytest.raises(
        ConfigError, match=r"cold-reach:cacheNodes = 1 is not allowed: >= 2 on a production"
    ):
        parse("prod", {**prod, "cacheNodes": "1"}.get, "us-east-1")
    # The stack named prod is production unless it says otherwise.
    with pytest.raises(ConfigError, match="cacheNodes"):
        parse("prod", {"phase": "2", "dbMultiAz": "true", "cacheNodes": "1"}.get, "us-east-1")


def test_pools_that_cannot_fit_are_refused_before_deploying() -> None:
    values = {"phase": "2", "dbInstanceClass": "db.t4g.micro", "webMaxCount": "20"}
    with pytest.raises(ConfigError) as caught:
        parse("dev", values.get, "us-east-1")
    message = str(caught.value)
    assert "cold-reach:dbInstanceClass = 'db.t4g.micro'" in message
    assert "web 20 x (5+5) + worker 4 x (4+4)" in message and "allows about 95" in message
