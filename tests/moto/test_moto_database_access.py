"""A stack at the end of the database-access rollout (cold-reach:dbIamAuth on), deployed
into moto: the rotation function, its permission, the endpoint and the rotation exist
as AWS would hold them, and verify accepts the database admitting the function."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from moto_helpers import Deployed, deployed, describe, failures


@pytest.fixture(scope="module")
def dev_on() -> Iterator[Deployed]:
    with deployed("dev", overrides={"cold-reach:dbIamAuth": "on"}) as d:
        yield d


def test_verify_passes_with_the_rotation_admitted(dev_on: Deployed) -> None:
    findings = dev_on.verify()
    assert failures(findings) == [], describe(findings)
    [database] = [f for f in findings if f.check == "sg.db_ingress"]
    assert "web, db-rotation" in database.detail


def test_a_secret_that_stopped_rotating_is_named(dev_on: Deployed) -> None:
    arn = dev_on.outputs["db_secret_arn"]
    [before] = [f for f in dev_on.verify() if f.check == "rds.rotation"]
    assert not before.failed and "every 30 days" in before.detail
    secrets = dev_on.client("secretsmanager")
    secrets.cancel_rotate_secret(SecretId=arn)
    try:
        [after] = failures(dev_on.verify(), "rds.rotation")
        assert "does not rotate" in after.detail
    finally:
        secrets.rotate_secret(
            SecretId=arn,
            RotationLambdaARN=secrets.describe_secret(SecretId=arn)["RotationLambdaARN"],
            RotationRules={"AutomaticallyAfterDays": 30},
            RotateImmediately=False,
        )
    assert failures(dev_on.verify(), "rds.rotation") == []


def test_the_master_secret_rotates_through_the_function(dev_on: Deployed) -> None:
    secret = dev_on.client("secretsmanager").describe_secret(
        SecretId=dev_on.outputs["db_secret_arn"]
    )
    function = dev_on.client("lambda").get_function(
        FunctionName=dev_on.outputs["db_rotation_function"]
    )["Configuration"]
    assert secret["RotationEnabled"] is True
    assert secret["RotationLambdaARN"] == function["FunctionArn"]
    assert secret["RotationRules"]["AutomaticallyAfterDays"] == 30
    assert function["Handler"] == "rotation_function.lambda_handler"
    assert function["Runtime"] == "python3.12"
    policy = json.loads(
        dev_on.client("lambda").get_policy(FunctionName=function["FunctionName"])["Policy"]
    )
    [statement] = policy["Statement"]
    assert statement["Principal"] == {"Service": "secretsmanager.amazonaws.com"}
    assert dev_on.outputs["db_secret_arn"] in json.dumps(statement["Condition"])


def test_the_rotation_alarm_watches_the_function_in_phase_2() -> None:
    with deployed("staging", overrides={"cold-reach:dbIamAuth": "on"}) as d:
        findings = d.verify()
        assert failures(findings) == [], describe(findings)
        alarms = d.client("cloudwatch").describe_alarms()["MetricAlarms"]
        [alarm] = [a for a in alarms if a["Namespace"] == "AWS/Lambda"]
        assert alarm["Dimensions"] == [
            {"Name": "FunctionName", "Value": d.outputs["db_rotation_function"]}
        ]
        assert alarm["AlarmActions"] == [d.outputs["alerts_topic_arn"]]


def test_the_function_sits_in_the_private_subnets_behind_its_own_group(dev_on: Deployed) -> None:
    ec2 = dev_on.client("ec2")
    function = dev_on.client("lambda").get_function(
        FunctionName=dev_on.outputs["db_rotation_function"]
    )["Configuration"]
    vpc = function["VpcConfig"]
    subnets = ec2.describe_subnets(SubnetIds=vpc["SubnetIds"])["Subnets"]
    assert {t["Value"] for s in subnets for t in s["Tags"] if t["Key"] == "tier"} == {"private"}
    assert vpc["SecurityGroupIds"] == [dev_on.group_id("db-rotation-sg")]
    [endpoint] = ec2.describe_vpc_endpoints(
        Filters=[{"Name": "vpc-id", "Values": [dev_on.outputs["vpc_id"]]}]
    )["VpcEndpoints"]
    assert endpoint["ServiceName"] == "com.amazonaws.us-east-1.secretsmanager"
    assert endpoint["PrivateDnsEnabled"] is False
    assert function["Environment"]["Variables"]["SECRETS_MANAGER_ENDPOINT"].startswith(
        "https://" + endpoint["VpcEndpointId"]
    )
    # The endpoint admits the function only; the database admits it on 5432.
    [endpoint_group] = ec2.describe_security_groups(
        GroupIds=[g["GroupId"] for g in endpoint["Groups"]]
    )["SecurityGroups"]
    sources = [
        (p["FromPort"], pair["GroupId"])
        for p in endpoint_group["IpPermissions"]
        for pair in p["UserIdGroupPairs"]
    ]
    assert sources == [(443, dev_on.group_id("db-rotation-sg"))]
