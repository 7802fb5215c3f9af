"""Every resource rule: a compliant example, and one failing example per condition,
including the property-missing case (checkov / awsguard style).

Each case is (policy, resource type, props, expected): `expected` is None for a
compliant example, or a fragment of the one message the policy must report.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
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
    return task(container(environment=[{"name": name, "value": value}]))


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

WORLD = "0.0.0.0/0"
N = None  # compliant

Case = tuple[str, str, str, dict[str, Any], str | None]


def cases_of(resource_type: str, base: dict[str, Any]) -> Callable[..., Case]:
    """Makes cases over one compliant example: `maker(rule, label, **changes, expect=...)`.

    The changes set keys (MISSING deletes one); without `expect` the props comply."""

    def case(rule: str, label: str, /, *, expect: str | None = N, **changes: Any) -> Case:
        return (rule, label, resource_type, changed(base, **changes), expect)

    return case


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
    ("E1", "readonly", t.TASK_DEFINITION, task(), N),
    (
        "E1",
        "missing",
        t.TASK_DEFINITION,
        task(container(readonlyRootFilesystem=MISSING)),
        "readonlyRoot",
    ),
    (
        "E1",
        "false",
        t.TASK_DEFINITION,
        task(container(readonlyRootFilesystem=False)),
        "readonlyRoot",
    ),
    (
        "E1",
        "second",
        t.TASK_DEFINITION,
        task(CONTAINER, container(name="sidecar", readonlyRootFilesystem=False)),
        "sidecar",
    ),
    ("E2", "uid", t.TASK_DEFINITION, task(), N),
    ("E2", "missing", t.TASK_DEFINITION, task(container(user=MISSING)), "no user"),
    ("E2", "root", t.TASK_DEFINITION, task(container(user="root")), "runs as root"),
    ("E2", "zero", t.TASK_DEFINITION, task(container(user="0:0")), "runs as root"),
    ("E3a", "false", t.TASK_DEFINITION, task(), N),
    ("E3a", "missing", t.TASK_DEFINITION, task(container(privileged=MISSING)), N),
    ("E3a", "true", t.TASK_DEFINITION, task(container(privileged=True)), "privileged"),
    ("E3b", "awsvpc", t.TASK_DEFINITION, task(), N),
    ("E3b", "missing", t.TASK_DEFINITION, task(networkMode=MISSING), "bridge"),
    ("E3b", "host", t.TASK_DEFINITION, task(networkMode="host"), "networkMode is host"),
    ("E3b", "pid", t.TASK_DEFINITION, task(pidMode="host"), "pidMode"),
    ("E3b", "ipc", t.TASK_DEFINITION, task(ipcMode="host"), "ipcMode"),
    service("E3c", "latest"),
    service("E3c", "missing", platformVersion=MISSING),
    service("E3c", "pinned", platformVersion="1.3.0", expect="1.3.0"),
    ("E4", "awslogs", t.TASK_DEFINITION, task(), N),
    ("E4", "missing", t.TASK_DEFINITION, task(container(logConfiguration=MISSING)), "logDriver"),
    (
        "E4",
        "no-driver",
        t.TASK_DEFINITION,
        task(container(logConfiguration={"options": {}})),
        "logDriver",
    ),
    ("E5", "plain", t.TASK_DEFINITION, task(), N),
    ("E5", "env-missing", t.TASK_DEFINITION, task(container(environment=MISSING)), N),
    ("E5", "empty-value", t.TASK_DEFINITION, env("DB_PASSWORD", ""), N),
    (
        "E5",
        "url-no-password",
        t.TASK_DEFINITION,
        env("DATABASE_URL", "postgresql://db:5432/app"),
        N,
    ),
    ("E5", "password", t.TASK_DEFINITION, env("DB_PASSWORD", "hunter2"), "DB_PASSWORD looks like"),
    ("E5", "secret", t.TASK_DEFINITION, env("UNSUBSCRIBE_SECRET", "x"), "looks like a secret"),
    ("E5", "token", t.TASK_DEFINITION, env("GITHUB_TOKEN", "x"), "looks like a secret"),
    ("E5", "api-key", t.TASK_DEFINITION, env("STRIPE_API_KEY", "x"), "looks like a secret"),
    (
        "E5",
        "database-url",
        t.TASK_DEFINITION,
        env("DATABASE_URL", "postgresql://admin:s3cret@db:5432/app"),
        "URL with a password",
    ),
    (
        "E5",
        "redis-url",
        t.TASK_DEFINITION,
        env("BROKER", "rediss://:tok3n@cache:6379/0"),
        "URL with",
    ),
    (
        "E5",
        "aws-key",
        t.TASK_DEFINITION,
        env("UPLOADER", "AKIAIOSFODNN7EXAMPLE"),
        "credential-shaped",
    ),
    (
        "E5",
        "pem",
        t.TASK_DEFINITION,
        env("CERT", "-----BEGIN RSA PRIVATE KEY-----\nMII"),
        "credential",
    ),
    (
        "E5",
        "random",
        t.TASK_DEFINITION,
        env("SIGNING", "aZ3kP9qL2mX8vN4bR7tY1wE6uI0oS5dF"),
        "random-looking",
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
    (
        "E7",
        "enhanced",
        t.ECS_CLUSTER,
        {"settings": [{"name": "containerInsights", "value": "enhanced"}]},
        N,
    ),
    ("E7", "missing", t.ECS_CLUSTER, {}, "containerInsights"),
    (
        "E7",
        "disabled",
        t.ECS_CLUSTER,
        {"settings": [{"name": "containerInsights", "value": "disabled"}]},
        "containerInsights",
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
    (
        "I1a",
        "resourceless",
        t.IAM_ROLE_POLICY,
        {
            "policy": doc(
                {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}
            )
        },
        N,
    ),
    (
        "I1a",
        "conditioned",
        t.IAM_ROLE_POLICY,
        {
            "policy": doc(
                {
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:ResourceTag/app": "x"}},
                }
            )
        },
        N,
    ),
    (
        "I1a",
        "deny-star",
        t.IAM_ROLE_POLICY,
        {"policy": doc({"Effect": "Deny", "Action": "*", "Resource": "*"})},
        N,
    ),
    (
        "I1a",
        "star",
        t.IAM_ROLE_POLICY,
        {"policy": doc({"Effect": "Allow", "Action": "*", "Resource": "arn:x"})},
        "action * is a wildcard",
    ),
    (
        "I1a",
        "service-star",
        t.IAM_POLICY,
        {"policy": doc({"Effect": "Allow", "Action": ["s3:*"], "Resource": "arn:x"})},
        "s3:* is a wildcard",
    ),
    (
        "I1a",
        "resource-star",
        t.IAM_ROLE_POLICY,
        {"policy": doc(dict(SCOPED, Resource="*"))},
        "s3:GetObject on Resource *",
    ),
    (
        "I1a",
        "not-action",
        t.IAM_ROLE_POLICY,
        {"policy": doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:x"})},
        "NotAction",
    ),
    role(
        "I1a",
        "inline",
        inlinePolicies=[
            {"name": "p", "policy": doc({"Effect": "Allow", "Action": "*", "Resource": "*"})}
        ],
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
    ("I1b", "missing", t.IAM_ROLE, {}, "no trust policy"),
    (
        "I1b",
        "star",
        t.IAM_ROLE,
        {
            "assumeRolePolicy": doc(
                {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}
            )
        },
        "any principal",
    ),
    (
        "I1b",
        "aws-star",
        t.IAM_ROLE,
        {
            "assumeRolePolicy": doc(
                {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
            )
        },
        "any principal",
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
]


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
    (("E5", "key-word", t.TASK_DEFINITION, env("CACHE_KEY_PREFIX", "app"), "looks like"), {}),
    (
        ("E5", "allowed-name", t.TASK_DEFINITION, env("CACHE_KEY_PREFIX", "app"), N),
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
