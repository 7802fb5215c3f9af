"""Phase 1 declares exactly the architecture of the issue: VPC, one service, ALB, one RDS."""

from __future__ import annotations

from collections import Counter

import pytest

from coldreach.runtime import Deployment

PHASE1_DEV = {
    "aws:ec2/vpc:Vpc": 1,
    "aws:ec2/subnet:Subnet": 4,
    "aws:ec2/internetGateway:InternetGateway": 1,
    "aws:ec2/routeTable:RouteTable": 3,
    "aws:ec2/route:Route": 1,
    "aws:ec2/routeTableAssociation:RouteTableAssociation": 4,
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": 1,
    "aws:ec2/securityGroup:SecurityGroup": 3,
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": 4,
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": 3,
    "aws:ec2/flowLog:FlowLog": 1,
    # The web service, the VPC's flow logs and (cold-reach:dbIamAuth roles) the one-off
    # bootstrap and migrate tasks: a log group, an execution role and a task role each;
    # bootstrap's task role has no policy (it may do nothing in AWS).
    "aws:cloudwatch/logGroup:LogGroup": 4,
    "aws:iam/role:Role": 7,
    "aws:iam/rolePolicy:RolePolicy": 5,
    "aws:ecr/repository:Repository": 1,
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": 1,
    "docker-build:index:Image": 1,
    "aws:rds/subnetGroup:SubnetGroup": 1,
    "aws:rds/parameterGroup:ParameterGroup": 1,
    "aws:rds/instance:Instance": 1,
    "random:index/randomPassword:RandomPassword": 2,
    "random:index/randomId:RandomId": 1,
    "aws:secretsmanager/secret:Secret": 2,
    "aws:secretsmanager/secretVersion:SecretVersion": 2,
    "aws:ecs/cluster:Cluster": 1,
    "aws:ecs/taskDefinition:TaskDefinition": 3,
    "aws:ecs/service:Service": 1,
    "aws:lb/loadBalancer:LoadBalancer": 1,
    "aws:lb/targetGroup:TargetGroup": 1,
    "aws:lb/listener:Listener": 1,
    "aws:s3/bucket:Bucket": 1,
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 1,
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": 1,
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 1,
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": 1,
    "aws:s3/bucketPolicy:BucketPolicy": 1,
}


def test_phase1_inventory_is_exactly_the_lean_architecture(dev: Deployment) -> None:
    counts = Counter(r.type for r in dev if r.custom)
    assert dict(counts) == PHASE1_DEV


def test_no_nat_gateway_in_phase1(dev: Deployment) -> None:
    # The phase-1 cost choice (docs/adr/0001): no NAT, no Elastic IP.
    assert not dev.of_type("aws:ec2/natGateway:NatGateway")
    assert not dev.of_type("aws:ec2/eip:Eip")


def test_components_are_ours_and_typed(dev: Deployment) -> None:
    components = {r.name: r.type for r in dev if not r.custom}
    assert components == {
        "net": "coldreach:network:Network",
        "registry": "coldreach:registry:Registry",
        "app-image": "coldreach:registry:AppImage",
        "db": "coldreach:database:Database",
        "unsubscribe-key": "coldreach:secrets:GeneratedSecret",
        "edge": "coldreach:edge:LoadBalancer",
        "web": "coldreach:service:FargateService",
        "bootstrap": "coldreach:service:OneOffTask",
        "migrate": "coldreach:service:OneOffTask",
    }


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_every_child_is_parented_to_the_component_that_names_it(program, stack: str) -> None:
    d = program(stack)
    components = [r for r in d if not r.custom]
    for r in d:
        # The component whose name is the longest prefix of this resource's name.
        owners = [c for c in components if r.name.startswith(c.name + "-")]
        if not owners:
            continue
        owner = max(owners, key=lambda c: len(c.name))
        assert r.parent == owner.urn, f"{r.name} is not a child of {owner.name}"
    # The only top-level resource is the ECS cluster, shared by all services.
    top_level = [
        r.name
        for r in d
        if r.custom and r.parent and r.parent.endswith(f"Stack::cold-reach-{stack}")
    ]
    assert top_level == ["cluster"]
    nested = {
        c.name for c in components if not (c.parent or "").endswith("Stack::cold-reach-" + stack)
    }
    # A tier nests what it owns: the cache its auth token, the database its password's
    # rotation (on once the services use IAM).
    assert nested <= {"cache-auth-token", "db-rotation"}, "components nest only under a tier"


def test_ids_are_unique_and_stable_between_runs(program) -> None:
    first = program("dev")
    second = program("dev", vpcCidr="10.40.0.0/16")  # same config, a separate evaluation
    ids = [r.id for r in first if r.custom]
    assert len(ids) == len(set(ids))
    assert {r.urn: r.id for r in first} == {r.urn: r.id for r in second}
    assert first.to_json() == second.to_json()


def test_two_azs_from_the_invoke_with_public_and_private_subnets(dev: Deployment) -> None:
    subnets = dev.of_type("aws:ec2/subnet:Subnet")
    by_tier: dict[str, set[str]] = {}
    for s in subnets:
        by_tier.setdefault(s.get("tags")["tier"], set()).add(s.get("availabilityZone"))
        assert s.get("mapPublicIpOnLaunch") is False
    assert by_tier == {
        # us-east-1b is use1-az3 in the offline account (coldreach/runtime/invokes.py).
        "public": {"us-east-1a", "us-east-1c"},
        "private": {"us-east-1a", "us-east-1c"},
    }
    cidrs = [s.get("cidrBlock") for s in subnets]
    assert len(set(cidrs)) == 4


def test_private_subnets_have_no_route_to_the_internet(dev: Deployment) -> None:
    igw = dev.of_type("aws:ec2/internetGateway:InternetGateway")[0]
    routes = dev.of_type("aws:ec2/route:Route")
    public_tables = {r.get("routeTableId") for r in routes if r.get("gatewayId") == igw.id}
    for assoc in dev.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation"):
        subnet = dev.by_id(assoc.get("subnetId"))
        is_public = assoc.get("routeTableId") in public_tables
        assert is_public == (subnet.get("tags")["tier"] == "public"), subnet.name


def test_default_security_group_is_closed_and_flow_logs_are_on(dev: Deployment) -> None:
    vpc = dev.of_type("aws:ec2/vpc:Vpc")[0]
    default = dev.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")[0]
    assert default.get("vpcId") == vpc.id
    assert not default.get("ingress") and not default.get("egress")
    flow = dev.of_type("aws:ec2/flowLog:FlowLog")[0]
    assert flow.get("vpcId") == vpc.id and flow.get("trafficType") == "ALL"
    group = next(
        g
        for g in dev.of_type("aws:cloudwatch/logGroup:LogGroup")
        if g.out("arn") == flow.get("logDestination")
    )
    assert group.get("retentionInDays") == 30
