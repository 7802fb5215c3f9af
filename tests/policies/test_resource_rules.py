"""Every resource rule: a compliant example, and one failing example per condition,
including the property-missing case (checkov / awsguard style).

Each case is (policy, resource type, props, expected): `expected` is None for a
compliant example, or a fragment of the one message the policy must report.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import cluster_cases
import pytest
from kubernetes_cases import KUBERNETES_CASES
from policy_helpers import MISSING, changed, check_resource
from pulumi_policy.proxy import unknown_checking_proxy

from policies import tokens as t

# --- compliant props, per resource type ----------------------------------------------------

NACL_RULE = {
    "networkAclId": "acl-1",
    "ruleNumber": 10,
    "egress": False,
    "protocol": "tcp",
    "ruleAction": "deny",
    "cidrBlock": "0.0.0.0/0",
    "fromPort": 22,
    "toPort": 22,
}
SUBNET = {"vpcId": "vpc-1", "cidrBlock": "10.0.0.0/20", "mapPublicIpOnLaunch": False}
INGRESS = {
    "securityGroupId": "sg-alb",
    "ipProtocol": "tcp",
    "fromPort": 443,
    "toPort": 443,
    "cidrIpv4": "0.0.0.0/0",
    "description": "HTTPS from the internet",
}
EGRESS = dict(INGRESS, description="HTTPS to AWS APIs")
SG = {"vpcId": "vpc-1", "description": "web: Fargate tasks"}
HTTP_REDIRECT = {
    "loadBalancerArn": "arn:lb",
    "port": 80,
    "protocol": "HTTP",
    "defaultActions": [
        {
            "type": "redirect",
            "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"},
        }
    ],
}
HTTPS = {
    "loadBalancerArn": "arn:lb",
    "port": 443,
    "protocol": "HTTPS",
    "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc",
    "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "defaultActions": [{"type": "forward", "targetGroupArn": "arn:tg"}],
}
ALB = {
    "loadBalancerType": "application",
    "internal": False,
    "dropInvalidHeaderFields": True,
    "desyncMitigationMode": "defensive",
    "enableDeletionProtection": True,
    "accessLogs": {"bucket": "logs", "enabled": True, "prefix": "alb"},
}
CONTAINER = {
    "name": "app",
    "image": "repo@sha256:abc",
    "user": "10001:10001",
    "readonlyRootFilesystem": True,
    "privileged": False,
    "environment": [{"name": "DB_HOST", "value": "db.internal"}, {"name": "PORT", "value": "8000"}],
    "secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:aws:secretsmanager:...:password::"}],
    "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "web"}},
}


def task(*containers: dict[str, Any], **props: Any) -> dict[str, Any]:
    base = {
        "family": "web",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "containerDefinitions": json.dumps(list(containers) or [CONTAINER]),
    }
    return changed(base, **props)


def container(**changes: Any) -> dict[str, Any]:
    return changed(CONTAINER, **changes)


def env(name: str, value: str) -> dict[str, Any]:
    """A container whose environment is one variable."""
    return container(environment=[{"name": name, "value": value}])


SERVICE = {
    "launchType": "FARGATE",
    "platformVersion": "LATEST",
    "networkConfiguration": {
        "subnets": ["subnet-1"],
        "securityGroups": ["sg-1"],
        "assignPublicIp": False,
    },
}
CLUSTER = {"settings": [{"name": "containerInsights", "value": "enabled"}]}
REPO = {"imageScanningConfiguration": {"scanOnPush": True}, "imageTagMutability": "IMMUTABLE"}


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str | list[str], resource: str, **more: Any) -> dict[str, Any]:
    """An Allow statement (`more`: Condition and the like)."""
    return {"Effect": "Allow", "Action": action, "Resource": resource, **more}


SCOPED = {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/*"]}
ROLE_POLICY = {"role": "r", "policy": doc(SCOPED)}
TRUST = doc(
    {
        "Effect": "Allow",
        "Principal": {"Service": "ecs-tasks.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
)
ROLE = {"assumeRolePolicy": TRUST}
DB = {
    "engine": "postgres",
    "engineVersion": "16",
    "username": "coldreach_admin",
    "storageEncrypted": True,
    "publiclyAccessible": False,
    "vpcSecurityGroupIds": ["sg-db"],
    "dbSubnetGroupName": "db-subnets",
    "backupRetentionPeriod": 7,
    "deletionProtection": True,
    "skipFinalSnapshot": False,
    "finalSnapshotIdentifier": "db-final",
    "iamDatabaseAuthenticationEnabled": True,
    "enabledCloudwatchLogsExports": ["postgresql", "upgrade"],
    "caCertIdentifier": "rds-ca-rsa2048-g1",
    "autoMinorVersionUpgrade": True,
    "copyTagsToSnapshot": True,
    "performanceInsightsEnabled": True,
    "monitoringInterval": 60,
    "monitoringRoleArn": "arn:aws:iam::123456789012:role/rds-monitoring",
    "multiAz": True,
    "kmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/1",
}
REPLICA = changed(
    DB,
    replicateSourceDb="db-primary",
    engine=MISSING,
    engineVersion=MISSING,
    username=MISSING,
    storageEncrypted=MISSING,
    dbSubnetGroupName=MISSING,
    skipFinalSnapshot=True,
    finalSnapshotIdentifier=MISSING,
    multiAz=False,
    kmsKeyId=MISSING,
)
REDIS = {
    "engine": "redis",
    "atRestEncryptionEnabled": True,
    "transitEncryptionEnabled": True,
    "transitEncryptionMode": "required",
    "authToken": "a-secret-token",
    "snapshotRetentionLimit": 7,
    "autoMinorVersionUpgrade": True,
    "subnetGroupName": "cache-subnets",
    "securityGroupIds": ["sg-cache"],
    "automaticFailoverEnabled": True,
    "multiAzEnabled": True,
    "numCacheClusters": 2,
    "kmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/1",
}
LOG_GROUP = {"retentionInDays": 30, "kmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/1"}
SECRET = {"description": "db credentials", "kmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/1"}
MSK = {
    "kafkaVersion": "3.9.x.kraft",
    "numberOfBrokerNodes": 2,
    "brokerNodeGroupInfo": {
        "instanceType": "kafka.m5.large",
        "clientSubnets": ["subnet-a", "subnet-b"],
        "securityGroups": ["sg-kafka"],
        "connectivityInfo": {"publicAccess": {"type": "DISABLED"}},
    },
    "clientAuthentication": {"sasl": {"iam": True, "scram": False}, "unauthenticated": False},
    "encryptionInfo": {
        "encryptionAtRestKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1",
        "encryptionInTransit": {"clientBroker": "TLS", "inCluster": True},
    },
    "loggingInfo": {"brokerLogs": {"cloudwatchLogs": {"enabled": True, "logGroup": "kafka"}}},
}
TOPIC = {
    "clusterArn": "arn:aws:kafka:us-east-1:123456789012:cluster/kafka/1",
    "name": "email.send.v1",
    "partitionCount": 24,
    "replicationFactor": 2,
    "configs": json.dumps({"min.insync.replicas": "1"}),
}

WORLD = "0.0.0.0/0"
N = None  # compliant

Case = tuple[str, str, str, dict[str, Any], str | None]


def cases_of(resource_type: str, base: dict[str, Any]) -> Callable[..., Case]:
    """Makes cases over one compliant example: `maker(rule, label, **changes, expect=...)`.

    The changes set keys (MISSING deletes one); without `expect` the props comply."""

    def case(rule: str, label: str, /, *, expect: str | None = N, **changes: Any) -> Case:
        return (rule, label, resource_type, changed(base, **changes), expect)

    return case


def task_def(
    rule: str, label: str, /, *containers: dict[str, Any], expect: str | None = N, **props: Any
) -> Case:
    """A case over a task definition of `containers` (CONTAINER if none), `props` changed."""
    return (rule, label, t.TASK_DEFINITION, task(*containers, **props), expect)


def policy_case(
    rule: str,
    label: str,
    /,
    *statements: dict[str, Any],
    resource_type: str = t.IAM_ROLE_POLICY,
    expect: str | None = N,
) -> Case:
    """A case over an IAM policy resource whose document holds `statements`."""
    return (rule, label, resource_type, {"policy": doc(*statements)}, expect)


nacl_rule = cases_of(t.NACL_RULE, NACL_RULE)
subnet = cases_of(t.SUBNET, SUBNET)
ingress = cases_of(t.INGRESS, INGRESS)
egress = cases_of(t.EGRESS, EGRESS)
sg = cases_of(t.SECURITY_GROUP, SG)
http_listener = cases_of(t.LISTENER, HTTP_REDIRECT)
https_listener = cases_of(t.LISTENER, HTTPS)
alb = cases_of(t.LOAD_BALANCER, ALB)
service = cases_of(t.ECS_SERVICE, SERVICE)
cluster = cases_of(t.ECS_CLUSTER, CLUSTER)
repo = cases_of(t.ECR_REPOSITORY, REPO)
role = cases_of(t.IAM_ROLE, ROLE)
db = cases_of(t.RDS_INSTANCE, DB)
replica = cases_of(t.RDS_INSTANCE, REPLICA)
redis = cases_of(t.REPLICATION_GROUP, REDIS)
log_group = cases_of(t.LOG_GROUP, LOG_GROUP)
msk = cases_of(t.MSK_CLUSTER, MSK)
topic = cases_of(t.MSK_TOPIC, TOPIC)


def msk_with(path: str, value: Any) -> dict[str, Any]:
    """MSK with one nested field (a dotted path) set, or removed with MISSING."""
    props = json.loads(json.dumps(MSK))
    *parents, last = path.split(".")
    node = props
    for key in parents:
        node = node[key]
    if value is MISSING:
        del node[last]
    else:
        node[last] = value
    return props


secret = cases_of(t.SECRET, SECRET)

CASES: list[Case] = [
    # N3: NACLs
    nacl_rule("N3", "deny-22"),
    nacl_rule("N3", "allow-443", ruleAction="allow", fromPort=443, toPort=443),
    nacl_rule("N3", "allow-22-private", ruleAction="allow", cidrBlock="10.0.0.0/8"),
    nacl_rule("N3", "allow-22-egress", ruleAction="allow", egress=True),
    ("N3", "no-rules", t.NACL, {"vpcId": "vpc-1"}, N),
    nacl_rule("N3", "allow-22", ruleAction="allow", expect="port 22"),
    nacl_rule("N3", "allow-all", ruleAction="allow", protocol="-1", expect="port 22"),
    nacl_rule(
        "N3",
        "allow-3389-v6",
        ruleAction="allow",
        cidrBlock=MISSING,
        ipv6CidrBlock="::/0",
        fromPort=3389,
        toPort=3389,
        expect="port 3389",
    ),
    (
        "N3",
        "default-allow-all",
        t.DEFAULT_NACL,
        {
            "ingress": [
                {
                    "action": "allow",
                    "protocol": "-1",
                    "cidrBlock": WORLD,
                    "fromPort": 0,
                    "toPort": 0,
                }
            ]
        },
        "port 22",
    ),
    # N4: subnets
    subnet("N4", "off"),
    subnet("N4", "missing", mapPublicIpOnLaunch=MISSING),
    subnet("N4", "on", mapPublicIpOnLaunch=True, expect="mapPublicIpOnLaunch"),
    subnet("N4", "ipv6-on", assignIpv6AddressOnCreation=True, expect="IPv6"),
    # N5: world ingress ports
    ingress("N5", "443"),
    ingress("N5", "80", fromPort=80, toPort=80),
    ingress(
        "N5",
        "5432-from-group",
        cidrIpv4=MISSING,
        referencedSecurityGroupId="sg-app",
        fromPort=5432,
        toPort=5432,
    ),
    ingress("N5", "22-private", cidrIpv4="10.0.0.0/8", fromPort=22, toPort=22),
    ingress("N5", "22-world", fromPort=22, toPort=22, expect="ports 22-22"),
    ingress("N5", "all-world", ipProtocol="-1", expect="all ports"),
    ingress("N5", "range-world", fromPort=80, expect="ports 80-443"),
    ingress("N5", "udp-world", ipProtocol="udp", expect="udp"),
    ingress(
        "N5",
        "3389-v6",
        cidrIpv4=MISSING,
        cidrIpv6="::/0",
        fromPort=3389,
        toPort=3389,
        expect="::/0",
    ),
    ingress("N5", "ports-missing", fromPort=MISSING, toPort=MISSING, expect="all ports"),
    sg(
        "N5",
        "inline-22",
        ingress=[{"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": [WORLD]}],
        expect="ports 22-22",
    ),
    (
        "N5",
        "sg-rule-5432",
        t.SG_RULE,
        {
            "type": "ingress",
            "protocol": "tcp",
            "fromPort": 5432,
            "toPort": 5432,
            "cidrBlocks": [WORLD],
        },
        "ports 5432-5432",
    ),
    # N7: egress
    egress("N7", "443"),
    egress(
        "N7",
        "5432-to-group",
        cidrIpv4=MISSING,
        referencedSecurityGroupId="sg-db",
        fromPort=5432,
        toPort=5432,
    ),
    egress("N7", "all-world", ipProtocol="-1", expect="ports 0-65535"),
    egress("N7", "80-world", fromPort=80, toPort=80, expect="ports 80-80"),
    egress("N7", "ports-missing", fromPort=MISSING, toPort=MISSING, expect="0-65535"),
    sg(
        "N7",
        "inline-all",
        egress=[{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": [WORLD]}],
        expect="-1",
    ),
    # N8: descriptions
    sg("N8", "sg"),
    ingress("N8", "rule"),
    sg("N8", "sg-missing", description=MISSING, expect="no description"),
    sg("N8", "sg-default", description="Managed by Pulumi", expect="no description"),
    ingress("N8", "rule-blank", description="  ", expect="no description"),
    sg(
        "N8",
        "inline-missing",
        ingress=[{"protocol": "tcp", "fromPort": 1, "toPort": 1}],
        expect="inline ingress",
    ),
    # A1: HTTPS only
    http_listener("A1", "redirect"),
    https_listener("A1", "https"),
    http_listener(
        "A1",
        "http-forward",
        defaultActions=[{"type": "forward", "targetGroupArn": "arn:tg"}],
        expect="instead of redirecting",
    ),
    http_listener(
        "A1",
        "protocol-missing",
        protocol=MISSING,
        defaultActions=[{"type": "forward"}],
        expect="instead of redirecting",
    ),
    http_listener("A1", "actions-missing", defaultActions=MISSING, expect="instead of redirecting"),
    http_listener(
        "A1",
        "redirect-to-http",
        defaultActions=[{"type": "redirect", "redirect": {"protocol": "HTTP"}}],
        expect="instead of redirecting",
    ),
    https_listener("A1", "https-no-cert", certificateArn=MISSING, expect="no certificateArn"),
    # A2: TLS policy
    https_listener("A2", "tls13"),
    http_listener("A2", "http"),
    https_listener("A2", "missing", sslPolicy=MISSING, expect="2016-08"),
    https_listener("A2", "old", sslPolicy="ELBSecurityPolicy-2016-08", expect="is not one of"),
    https_listener(
        "A2", "ext", sslPolicy="ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06", expect="is not one of"
    ),
    # A3a-c, A4: load balancer settings
    alb("A3a", "on"),
    alb("A3a", "nlb", loadBalancerType="network", dropInvalidHeaderFields=MISSING),
    alb("A3a", "missing", dropInvalidHeaderFields=MISSING, expect="dropInvalid"),
    alb("A3a", "off", dropInvalidHeaderFields=False, expect="dropInvalid"),
    alb("A3b", "defensive"),
    alb("A3b", "missing", desyncMitigationMode=MISSING),
    alb("A3b", "strictest", desyncMitigationMode="strictest"),
    alb("A3b", "monitor", desyncMitigationMode="monitor", expect="monitor"),
    alb("A3c", "on"),
    alb("A3c", "missing", enableDeletionProtection=MISSING, expect="enableDeletion"),
    alb("A3c", "off", enableDeletionProtection=False, expect="enableDeletion"),
    alb("A4", "on"),
    alb("A4", "missing", accessLogs=MISSING, expect="access logs"),
    alb("A4", "disabled", accessLogs={"bucket": "b", "enabled": False}, expect="access logs"),
    alb("A4", "no-bucket", accessLogs={"enabled": True}, expect="access logs"),
    # E1-E5: task definitions
    task_def("E1", "readonly"),
    task_def("E1", "missing", container(readonlyRootFilesystem=MISSING), expect="readonlyRoot"),
    task_def("E1", "false", container(readonlyRootFilesystem=False), expect="readonlyRoot"),
    task_def(
        "E1",
        "second",
        CONTAINER,
        container(name="sidecar", readonlyRootFilesystem=False),
        expect="sidecar",
    ),
    task_def("E2", "uid"),
    task_def("E2", "missing", container(user=MISSING), expect="no user"),
    task_def("E2", "root", container(user="root"), expect="runs as root"),
    task_def("E2", "zero", container(user="0:0"), expect="runs as root"),
    task_def("E3a", "false"),
    task_def("E3a", "missing", container(privileged=MISSING)),
    task_def("E3a", "true", container(privileged=True), expect="privileged"),
    task_def("E3b", "awsvpc"),
    task_def("E3b", "missing", networkMode=MISSING, expect="bridge"),
    task_def("E3b", "host", networkMode="host", expect="networkMode is host"),
    task_def("E3b", "pid", pidMode="host", expect="pidMode"),
    task_def("E3b", "ipc", ipcMode="host", expect="ipcMode"),
    service("E3c", "latest"),
    service("E3c", "missing", platformVersion=MISSING),
    service("E3c", "pinned", platformVersion="1.3.0", expect="1.3.0"),
    task_def("E4", "awslogs"),
    task_def("E4", "missing", container(logConfiguration=MISSING), expect="logDriver"),
    task_def("E4", "no-driver", container(logConfiguration={"options": {}}), expect="logDriver"),
    task_def("E5", "plain"),
    task_def("E5", "env-missing", container(environment=MISSING)),
    task_def("E5", "empty-value", env("DB_PASSWORD", "")),
    task_def("E5", "switch", env("DB_IAM_AUTH", "1")),
    task_def("E5", "switch-word", env("AUTH_REQUIRED", "true")),
    task_def("E5", "url-no-password", env("DATABASE_URL", "postgresql://db:5432/app")),
    task_def("E5", "password", env("DB_PASSWORD", "hunter2"), expect="DB_PASSWORD looks like"),
    task_def("E5", "secret", env("UNSUBSCRIBE_SECRET", "x"), expect="looks like a secret"),
    task_def("E5", "token", env("GITHUB_TOKEN", "x"), expect="looks like a secret"),
    task_def("E5", "api-key", env("STRIPE_API_KEY", "x"), expect="looks like a secret"),
    task_def(
        "E5",
        "database-url",
        env("DATABASE_URL", "postgresql://admin:s3cret@db:5432/app"),
        expect="URL with a password",
    ),
    task_def("E5", "redis-url", env("BROKER", "rediss://:tok3n@cache:6379/0"), expect="URL with"),
    task_def("E5", "aws-key", env("UPLOADER", "AKIAIOSFODNN7EXAMPLE"), expect="credential-shaped"),
    task_def("E5", "pem", env("CERT", "-----BEGIN RSA PRIVATE KEY-----\nMII"), expect="credential"),
    task_def(
        "E5", "random", env("SIGNING", "aZ3kP9qL2mX8vN4bR7tY1wE6uI0oS5dF"), expect="random-looking"
    ),
    # E6, E7: services and clusters
    service("E6", "private"),
    service("E6", "missing", networkConfiguration=MISSING),
    service(
        "E6",
        "public",
        networkConfiguration={"subnets": ["s"], "assignPublicIp": True},
        expect="assignPublicIp",
    ),
    cluster("E7", "enabled"),
    cluster("E7", "enhanced", settings=[{"name": "containerInsights", "value": "enhanced"}]),
    cluster("E7", "missing", settings=MISSING, expect="containerInsights"),
    cluster(
        "E7",
        "disabled",
        settings=[{"name": "containerInsights", "value": "disabled"}],
        expect="containerInsights",
    ),
    cluster(
        "E7",
        "exec-unlogged",
        configuration={"executeCommandConfiguration": {"logging": "NONE"}},
        expect="Exec",
    ),
    # R1, R2: repositories
    repo("R1", "on"),
    repo("R1", "missing", imageScanningConfiguration=MISSING, expect="scanOnPush"),
    repo("R1", "off", imageScanningConfiguration={"scanOnPush": False}, expect="scanOnPush"),
    repo("R2", "immutable"),
    repo("R2", "missing", imageTagMutability=MISSING, expect="MUTABLE"),
    repo("R2", "mutable", imageTagMutability="MUTABLE", expect="MUTABLE"),
    # I1a, I1b: IAM
    ("I1a", "scoped", t.IAM_ROLE_POLICY, ROLE_POLICY, N),
    ("I1a", "policy-missing", t.IAM_ROLE_POLICY, {"role": "r"}, N),
    policy_case("I1a", "resourceless", allow("ecr:GetAuthorizationToken", "*")),
    policy_case(
        "I1a",
        "conditioned",
        allow("s3:ListBucket", "*", Condition={"StringEquals": {"aws:ResourceTag/app": "x"}}),
    ),
    policy_case("I1a", "deny-star", {"Effect": "Deny", "Action": "*", "Resource": "*"}),
    policy_case(
        "I1a",
        "db-user",
        allow("rds-db:connect", "arn:aws:rds-db:us-east-1:1:dbuser:db-ABC/coldreach_app"),
    ),
    policy_case(
        "I1a",
        "db-any-user",
        allow("rds-db:connect", "arn:aws:rds-db:us-east-1:1:dbuser:db-ABC/*"),
        expect="rds-db:connect on arn:aws:rds-db:us-east-1:1:dbuser:db-ABC/*",
    ),
    policy_case(
        "I1a",
        "db-any-instance",
        allow("rds-db:connect", "arn:aws:rds-db:us-east-1:1:dbuser:*/coldreach_app"),
        expect="name the user and instance",
    ),
    policy_case("I1a", "star", allow("*", "arn:x"), expect="action * is a wildcard"),
    policy_case(
        "I1a",
        "service-star",
        allow(["s3:*"], "arn:x"),
        resource_type=t.IAM_POLICY,
        expect="s3:* is a wildcard",
    ),
    policy_case(
        "I1a", "resource-star", dict(SCOPED, Resource="*"), expect="s3:GetObject on Resource *"
    ),
    policy_case(
        "I1a",
        "not-action",
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:x"},
        expect="NotAction",
    ),
    role(
        "I1a",
        "inline",
        inlinePolicies=[{"name": "p", "policy": doc(allow("*", "*"))}],
        expect="wildcard",
    ),
    (
        "I1a",
        "admin-attached",
        t.IAM_ATTACHMENT,
        {"role": "r", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
        "AdministratorAccess",
    ),
    role(
        "I1a",
        "power-user",
        managedPolicyArns=["arn:aws:iam::aws:policy/PowerUserAccess"],
        expect="PowerUserAccess",
    ),
    role("I1b", "service"),
    role("I1b", "missing", assumeRolePolicy=MISSING, expect="no trust policy"),
    role(
        "I1b",
        "star",
        assumeRolePolicy=doc({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}),
        expect="any principal",
    ),
    role(
        "I1b",
        "aws-star",
        assumeRolePolicy=doc(
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
        ),
        expect="any principal",
    ),
    # D1-D9: RDS
    db("D1", "encrypted"),
    replica("D1", "replica"),
    db("D1", "missing", storageEncrypted=MISSING, expect="storageEncrypted"),
    db("D1", "false", storageEncrypted=False, expect="storageEncrypted"),
    db("D2", "private"),
    replica("D2", "replica"),
    db("D2", "public", publiclyAccessible=True, expect="publiclyAccessible"),
    db("D2", "no-groups", vpcSecurityGroupIds=MISSING, expect="default security"),
    db("D2", "no-subnets", dbSubnetGroupName=MISSING, expect="default VPC"),
    db("D3a", "7"),
    replica("D3a", "replica"),
    db("D3a", "missing", backupRetentionPeriod=MISSING, expect="not set"),
    db("D3a", "1", backupRetentionPeriod=1, expect="is 1; want >= 7"),
    db("D3b", "on"),
    replica("D3b", "replica-no-snapshot"),
    db("D3b", "missing", deletionProtection=MISSING, expect="deletionProtection"),
    db("D3b", "off", deletionProtection=False, expect="deletionProtection"),
    db("D3b", "skip-snapshot", skipFinalSnapshot=True, expect="skipFinalSnapshot"),
    db("D4", "on"),
    db("D4", "missing", iamDatabaseAuthenticationEnabled=MISSING, expect="iamDatabase"),
    db("D5", "postgres"),
    replica("D5", "replica"),
    db("D5", "missing", enabledCloudwatchLogsExports=MISSING, expect="is empty"),
    db("D5", "wrong", enabledCloudwatchLogsExports=["upgrade"], expect="lacks postgresql"),
    db("D6a", "current"),
    db("D6a", "missing", caCertIdentifier=MISSING, expect="not set"),
    db("D6a", "old", caCertIdentifier="rds-ca-2019", expect="rds-ca-2019"),
    db("D7a", "on"),
    db("D7a", "missing", autoMinorVersionUpgrade=MISSING),
    db("D7a", "off", autoMinorVersionUpgrade=False, expect="autoMinor"),
    db("D7b", "on"),
    db("D7b", "missing", copyTagsToSnapshot=MISSING, expect="copyTags"),
    db("D7c", "custom"),
    replica("D7c", "replica"),
    db("D7c", "missing", username=MISSING, expect="not set"),
    db("D7c", "postgres", username="postgres", expect="default admin"),
    db("D8a", "on"),
    db("D8a", "missing", performanceInsightsEnabled=MISSING, expect="performance"),
    db("D8b", "60"),
    db("D8b", "missing", monitoringInterval=MISSING, expect="enhanced monitoring"),
    db("D8b", "no-role", monitoringRoleArn=MISSING, expect="enhanced monitoring"),
    db("D9", "multi-az"),
    replica("D9", "replica"),
    db("D9", "missing", multiAz=MISSING, expect="multiAz"),
    db("D9", "off", multiAz=False, expect="multiAz"),
    # C1-C4: ElastiCache
    redis("C1", "on"),
    redis("C1", "string", atRestEncryptionEnabled="true"),
    redis("C1", "missing", atRestEncryptionEnabled=MISSING, expect="atRest"),
    redis("C2", "tls-token"),
    redis("C2", "rbac", authToken=MISSING, userGroupIds=["ug"]),
    redis("C2", "no-tls", transitEncryptionEnabled=MISSING, expect="transit"),
    redis("C2", "preferred", transitEncryptionMode="preferred", expect="preferred"),
    redis("C2", "no-auth", authToken=MISSING, expect="no authToken"),
    redis("C3a", "7"),
    redis("C3a", "missing", snapshotRetentionLimit=MISSING, expect="snapshot"),
    redis("C3a", "0", snapshotRetentionLimit=0, expect="snapshot"),
    redis("C3b", "on"),
    redis("C3b", "missing", autoMinorVersionUpgrade=MISSING),
    redis("C3b", "off", autoMinorVersionUpgrade=False, expect="autoMinor"),
    redis("C3c", "own"),
    redis("C3c", "no-subnets", subnetGroupName=MISSING, expect="subnetGroupName"),
    redis("C3c", "no-groups", securityGroupIds=MISSING, expect="securityGroupIds"),
    redis("C4", "failover"),
    redis("C4", "missing", automaticFailoverEnabled=MISSING, expect="automatic"),
    redis("C4", "single-az", multiAzEnabled=False, expect="multiAzEnabled"),
    redis("C4", "one-node", numCacheClusters=1, expect="1 node"),
    # L1: log groups
    log_group("L1", "30"),
    log_group("L1", "missing", retentionInDays=MISSING, expect="kept forever"),
    # KMS (advisory)
    secret("KMS", "secret-cmk"),
    secret("KMS", "secret-missing", kmsKeyId=MISSING, expect="AWS-managed"),
    secret("KMS", "secret-aws-alias", kmsKeyId="alias/aws/secretsmanager", expect="AWS-managed"),
    repo("KMS", "ecr-kms", encryptionConfigurations=[{"encryptionType": "KMS", "kmsKey": "arn:k"}]),
    repo(
        "KMS",
        "ecr-aes",
        encryptionConfigurations=[{"encryptionType": "AES256"}],
        expect="AWS-owned",
    ),
    replica("KMS", "rds-replica"),
    db("KMS", "rds-missing", kmsKeyId=MISSING, expect="aws/rds"),
    redis("KMS", "redis-missing", kmsKeyId=MISSING, expect="AWS-managed"),
    log_group("KMS", "log-missing", kmsKeyId=MISSING, expect="AWS-managed"),
    # M1-M5: MSK
    msk("M1", "tls-kms"),
    ("M1", "tls-plaintext", t.MSK_CLUSTER,
     msk_with("encryptionInfo.encryptionInTransit.clientBroker", "TLS_PLAINTEXT"), "want TLS"),
    ("M1", "no-transit-block", t.MSK_CLUSTER,
     msk_with("encryptionInfo.encryptionInTransit", MISSING), "not set"),
    ("M1", "in-cluster-off", t.MSK_CLUSTER,
     msk_with("encryptionInfo.encryptionInTransit.inCluster", False), "plaintext"),
    ("M1", "no-kms", t.MSK_CLUSTER,
     msk_with("encryptionInfo.encryptionAtRestKmsKeyArn", MISSING), "AWS-managed"),
    msk("M1", "no-encryption-info", encryptionInfo=MISSING, expect="want TLS"),
    msk("M2", "iam"),
    msk("M2", "no-auth-block", clientAuthentication=MISSING, expect="iam is not true"),
    ("M2", "iam-off", t.MSK_CLUSTER, msk_with("clientAuthentication.sasl.iam", False),
     "iam is not true"),
    ("M2", "unauthenticated", t.MSK_CLUSTER,
     msk_with("clientAuthentication.unauthenticated", True), "anyone in the VPC"),
    ("M2", "scram", t.MSK_CLUSTER, msk_with("clientAuthentication.sasl.scram", True), "SCRAM"),
    msk("M3", "private-logged"),
    ("M3", "public", t.MSK_CLUSTER,
     msk_with("brokerNodeGroupInfo.connectivityInfo.publicAccess.type", "SERVICE_PROVIDED_EIPS"),
     "internet"),
    msk("M3", "no-logs", loggingInfo=MISSING, expect="broker logs"),
    ("M3", "logs-off", t.MSK_CLUSTER,
     msk_with("loggingInfo.brokerLogs.cloudwatchLogs.enabled", False), "broker logs"),
    ("M3", "no-log-group", t.MSK_CLUSTER,
     msk_with("loggingInfo.brokerLogs.cloudwatchLogs.logGroup", MISSING), "broker logs"),
    msk("M4", "kraft"),
    msk("M4", "four", kafkaVersion="4.1.x.kraft"),
    msk("M4", "four-unsuffixed", kafkaVersion="4.0.x", expect="not an MSK version"),
    msk("M4", "zookeeper", kafkaVersion="3.9.x", expect="ZooKeeper"),
    msk("M4", "old", kafkaVersion="2.8.1", expect="ZooKeeper"),
    topic("M5", "rf2-isr1"),
    topic("M5", "rf3-isr2", replicationFactor=3, configs=json.dumps({"min.insync.replicas": "2"})),
    topic("M5", "rf1", replicationFactor=1, expect="replicationFactor is 1"),
    topic("M5", "no-rf", replicationFactor=MISSING, expect="replicationFactor is None"),
    topic("M5", "no-isr", configs=MISSING, expect="cluster default"),
    topic("M5", "isr-equals-rf", configs=json.dumps({"min.insync.replicas": "2"}),
          expect="stops every acks=all"),
    *KUBERNETES_CASES,
]  # fmt: skip
CASES += cluster_cases.CASES


@pytest.mark.parametrize(
    ("rule", "resource_type", "props", "expected"),
    [pytest.param(r, ty, p, e, id=f"{r}-{label}") for r, label, ty, p, e in CASES],
)
def test_rule(rule: str, resource_type: str, props: dict[str, Any], expected: str | None) -> None:
    found = check_resource(rule, resource_type, props)
    if expected is None:
        assert found == []
    else:
        assert len(found) >= 1, f"{rule} reported nothing"
        assert any(expected in m for m in found), found


@pytest.mark.parametrize(
    ("rule", "resource_type", "props"),
    [pytest.param(r, ty, p, id=f"{r}-{label}") for r, label, ty, p, e in CASES if e is None],
)
def test_compliant_examples_pass_through_the_engines_proxies(
    rule: str, resource_type: str, props: dict[str, Any]
) -> None:
    """The engine hands props over as read-only Mapping/Sequence proxies, not dicts and lists."""
    assert check_resource(rule, resource_type, unknown_checking_proxy(props)) == []


def test_every_resource_rule_has_a_compliant_and_a_failing_case() -> None:
    from policies import catalog

    # X1 reads opts.protect, not a prop: test_stateful_resources_must_be_protected covers it.
    resource_rules = {r.id for r in catalog.rules() if not r.is_stack_rule} - {"X1"}
    compliant = {r for r, _, _, _, e in CASES if e is None}
    failing = {r for r, _, _, _, e in CASES if e is not None}
    assert resource_rules - compliant == set()
    assert resource_rules - failing == set()


CONFIG_CASES: list[tuple[Case, dict[str, Any]]] = [
    # (case, the rule's properties in the stack config)
    (db("D3a", "14", expect="is 7; want >= 14"), {"minimumDays": 14}),
    (db("D3a", "14-ok", backupRetentionPeriod=14), {"minimumDays": 14}),
    (log_group("L1", "365", expect="is 30; want >= 365"), {"minimumDays": 365}),
    (log_group("L1", "365-ok", retentionInDays=365), {"minimumDays": 365}),
    (task_def("E5", "key-word", env("CACHE_KEY_PREFIX", "app"), expect="looks like"), {}),
    (
        task_def("E5", "allowed-name", env("CACHE_KEY_PREFIX", "app")),
        {"allowedNames": ["CACHE_KEY_PREFIX"]},
    ),
]


@pytest.mark.parametrize(
    ("rule", "resource_type", "props", "config", "expected"),
    [pytest.param(r, ty, p, c, e, id=f"{r}-{label}") for (r, label, ty, p, e), c in CONFIG_CASES],
)
def test_rule_properties_from_the_stack_config(
    rule: str,
    resource_type: str,
    props: dict[str, Any],
    config: dict[str, Any],
    expected: str | None,
) -> None:
    found = check_resource(rule, resource_type, props, config=config)
    assert found == [] if expected is None else any(expected in m for m in found), found


@pytest.mark.parametrize(
    "resource_type",
    [t.RDS_INSTANCE, t.REPLICATION_GROUP, t.ECR_REPOSITORY, t.SECRET, t.BUCKET, t.MSK_CLUSTER],
)
@pytest.mark.parametrize(("protect", "violations"), [(True, 0), (False, 1)])
def test_stateful_resources_must_be_protected(
    resource_type: str, protect: bool, violations: int
) -> None:
    found = check_resource("X1", resource_type, {}, protect=protect)
    assert len(found) == violations
    if violations:
        assert "not protected" in found[0]


def test_stateless_resources_need_no_protect() -> None:
    assert check_resource("X1", t.SECURITY_GROUP, SG, protect=False) == []


def test_rules_ignore_other_types() -> None:
    assert check_resource("D1", t.REPLICATION_GROUP, {}) == []
