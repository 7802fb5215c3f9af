"""Phase 1 (dev) deployed into moto once: the backend's state, verify passing, then
misconfigurations injected one at a time through boto3 (each undone afterwards)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto_helpers import REGION, Deployed, deployed, describe, failures

from coldreach.runtime.emulator import MotoBackend, UnsupportedResource

AWS_TYPES_OF_PHASE_1 = {
    "aws:ec2/vpc:Vpc",
    "aws:ec2/subnet:Subnet",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:rds/instance:Instance",
    "aws:ecs/service:Service",
    "aws:lb/loadBalancer:LoadBalancer",
}


@pytest.fixture(scope="module")
def dev() -> Iterator[Deployed]:
    with deployed("dev", 1) as d:
        yield d


# --- the backend ---------------------------------------------------------------------------


def test_every_resource_is_answered_with_the_id_moto_assigned(dev: Deployed) -> None:
    ec2 = dev.client("ec2")
    vpc_id = dev.outputs["vpc_id"]
    assert ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["CidrBlock"] == "10.40.0.0/16"
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    declared = {r.id for r in dev.deployment.of_type("aws:ec2/subnet:Subnet")}
    assert {s["SubnetId"] for s in subnets} == declared
    assert not any(s["MapPublicIpOnLaunch"] for s in subnets)
    db = dev.client("rds").describe_db_instances(DBInstanceIdentifier=dev.outputs["db_identifier"])
    instance = db["DBInstances"][0]
    assert f"{instance['Endpoint']['Address']}:5432" == dev.outputs["db_endpoint"]
    # The program passed the group's real id along: RDS sits in the group moto created.
    assert [g["VpcSecurityGroupId"] for g in instance["VpcSecurityGroups"]] == [
        dev.group_id("db-sg")
    ]
    types = {t for t, _name, _id in dev.backend.created}
    assert types >= AWS_TYPES_OF_PHASE_1


def test_groups_are_created_without_the_default_allow_all_egress(dev: Deployed) -> None:
    ec2 = dev.client("ec2")
    group = ec2.describe_security_groups(GroupIds=[dev.group_id("db-sg")])["SecurityGroups"][0]
    assert group["IpPermissionsEgress"] == []
    default = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [dev.outputs["vpc_id"]]},
            {"Name": "group-name", "Values": ["default"]},
        ]
    )["SecurityGroups"][0]
    assert default["IpPermissions"] == [] and default["IpPermissionsEgress"] == []


def test_the_image_tag_and_digest_exist_in_the_repository(dev: Deployed) -> None:
    repository = dev.outputs["repository_url"].split("/", 1)[1]
    digest = dev.outputs["image"].split("@", 1)[1]
    images = dev.client("ecr").describe_images(repositoryName=repository)["imageDetails"]
    assert [i["imageDigest"] for i in images] == [digest]


def test_secrets_hold_generated_values_not_placeholders(dev: Deployed) -> None:
    value = dev.client("secretsmanager").get_secret_value(SecretId=dev.outputs["db_secret_arn"])
    assert '"password"' in value["SecretString"]
    assert "offline" not in value["SecretString"]


def test_an_unsupported_type_fails_naming_it() -> None:
    backend = MotoBackend(REGION)
    with pytest.raises(UnsupportedResource, match=r"aws:sqs/queue:Queue.*'events'"):
        backend.create("urn:x", "aws:sqs/queue:Queue", "events", {}, custom=True)


# --- verify: clean, then one misconfiguration at a time ----------------------------------------


def test_phase_1_passes_every_check(dev: Deployed) -> None:
    findings = dev.verify()
    assert failures(findings) == [], describe(findings)
    checks = {f.check for f in findings}
    assert {
        "rds.private",
        "rds.encrypted",
        "rds.backups",
        "rds.deletion_protection",
        "sg.db_ingress",
        "sg.world_open",
        "ecs.desired_count",
        "ecs.public_ip",
        "alb.target_health",
    } <= checks
    assert "rds.replica" not in checks and "redis.tls" not in checks


def _world(port: int, cidr: str = "0.0.0.0/0") -> list[dict]:
    return [{"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": cidr}]}]


def test_db_group_open_to_the_world_is_named(dev: Deployed) -> None:
    ec2, db_sg = dev.client("ec2"), dev.group_id("db-sg")
    ec2.authorize_security_group_ingress(GroupId=db_sg, IpPermissions=_world(5432))
    try:
        findings = dev.verify()
    finally:
        ec2.revoke_security_group_ingress(GroupId=db_sg, IpPermissions=_world(5432))
    [ingress] = failures(findings, "sg.db_ingress")
    assert db_sg in ingress.resource and "0.0.0.0/0" in ingress.detail
    [world] = failures(findings, "sg.world_open")
    assert db_sg in world.resource and "5432" in world.detail


def test_db_group_rule_from_a_cidr_is_named(dev: Deployed) -> None:
    ec2, db_sg = dev.client("ec2"), dev.group_id("db-sg")
    ec2.authorize_security_group_ingress(GroupId=db_sg, IpPermissions=_world(5432, "10.0.0.0/8"))
    try:
        findings = dev.verify()
    finally:
        ec2.revoke_security_group_ingress(GroupId=db_sg, IpPermissions=_world(5432, "10.0.0.0/8"))
    [ingress] = failures(findings)
    assert ingress.check == "sg.db_ingress"
    assert "cidr 10.0.0.0/8" in ingress.detail


def test_db_group_rule_from_a_non_app_group_is_named(dev: Deployed) -> None:
    ec2, db_sg, alb_sg = dev.client("ec2"), dev.group_id("db-sg"), dev.group_id("edge-sg")
    rule = [{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
             "UserIdGroupPairs": [{"GroupId": alb_sg}]}]  # fmt: skip
    ec2.authorize_security_group_ingress(GroupId=db_sg, IpPermissions=rule)
    try:
        findings = dev.verify()
    finally:
        ec2.revoke_security_group_ingress(GroupId=db_sg, IpPermissions=rule)
    [ingress] = failures(findings)
    assert ingress.check == "sg.db_ingress" and f"from {alb_sg}, not one of the groups of web" in (
        ingress.detail
    )


def test_public_rds_is_named(dev: Deployed) -> None:
    rds, ident = dev.client("rds"), dev.outputs["db_identifier"]
    rds.modify_db_instance(DBInstanceIdentifier=ident, PubliclyAccessible=True)
    try:
        findings = dev.verify()
    finally:
        rds.modify_db_instance(DBInstanceIdentifier=ident, PubliclyAccessible=False)
    [public] = failures(findings)
    assert (public.check, public.resource) == ("rds.private", f"{ident} (primary)")


def test_unencrypted_rds_is_named(dev: Deployed) -> None:
    """Encryption cannot be switched off on an existing instance (not in AWS, not in
    moto), so the offending instance is created beside the stack's, in its subnets."""
    rds = dev.client("rds")
    subnet_group = dev.deployment.named("db-subnets").id
    rds.create_db_instance(
        DBInstanceIdentifier="rogue-unencrypted",
        Engine="postgres",
        DBInstanceClass="db.t4g.micro",
        AllocatedStorage=20,
        MasterUsername="rogue",
        MasterUserPassword="rogue-password-123",
        DBSubnetGroupName=subnet_group,
        VpcSecurityGroupIds=[dev.group_id("db-sg")],
        StorageEncrypted=False,
        BackupRetentionPeriod=7,
        DeletionProtection=True,
    )
    try:
        findings = dev.verify()
    finally:
        rds.modify_db_instance(DBInstanceIdentifier="rogue-unencrypted", DeletionProtection=False)
        rds.delete_db_instance(DBInstanceIdentifier="rogue-unencrypted", SkipFinalSnapshot=True)
    [unencrypted] = failures(findings)
    assert unencrypted.check == "rds.encrypted"
    assert unencrypted.resource == "rogue-unencrypted (primary)"


def test_short_backups_and_no_deletion_protection_are_named(dev: Deployed) -> None:
    rds, ident = dev.client("rds"), dev.outputs["db_identifier"]
    rds.modify_db_instance(
        DBInstanceIdentifier=ident, BackupRetentionPeriod=1, DeletionProtection=False
    )
    try:
        findings = dev.verify()
    finally:
        rds.modify_db_instance(
            DBInstanceIdentifier=ident, BackupRetentionPeriod=7, DeletionProtection=True
        )
    assert {f.check for f in failures(findings)} == {"rds.backups", "rds.deletion_protection"}
    assert "1 days" in failures(findings, "rds.backups")[0].detail


def test_database_subnet_routed_to_the_internet_is_named(dev: Deployed) -> None:
    ec2 = dev.client("ec2")
    table, igw = dev.deployment.named("net-private-rt-0").id, dev.deployment.named("net-igw").id
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    try:
        findings = dev.verify()
    finally:
        ec2.delete_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0")
    [private] = failures(findings)
    assert private.check == "rds.private"
    assert dev.deployment.named("net-private-0").id in private.detail


def test_extra_world_open_port_on_the_alb_is_named(dev: Deployed) -> None:
    ec2, alb_sg = dev.client("ec2"), dev.group_id("edge-sg")
    ec2.authorize_security_group_ingress(GroupId=alb_sg, IpPermissions=_world(22))
    try:
        findings = dev.verify()
    finally:
        ec2.revoke_security_group_ingress(GroupId=alb_sg, IpPermissions=_world(22))
    [world] = failures(findings)
    assert world.check == "sg.world_open" and alb_sg in world.resource
    assert "tcp 22" in world.detail and "80/443" in world.detail


def test_phase_1_task_reachable_from_the_internet_is_named(dev: Deployed) -> None:
    """Phase-1 tasks have public IPs by design; only the ALB may reach them."""
    ec2, web_sg = dev.client("ec2"), dev.group_id("web-sg")
    ec2.authorize_security_group_ingress(GroupId=web_sg, IpPermissions=_world(8000))
    try:
        findings = dev.verify()
    finally:
        ec2.revoke_security_group_ingress(GroupId=web_sg, IpPermissions=_world(8000))
    assert {f.check for f in failures(findings)} == {"ecs.public_ip", "sg.world_open"}
    assert "0.0.0.0/0" in failures(findings, "ecs.public_ip")[0].detail


def test_injections_were_undone(dev: Deployed) -> None:
    assert failures(dev.verify()) == []
