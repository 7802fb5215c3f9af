"""Every resource rule: a compliant example, and one failing example per condition,
including the property-missing case (checkov / awsguard style).

Each case is (policy, resource type, props, expected): `expected` is None for a
compliant example, or a fragment of the one message the policy must report.
"""

from __future__ import annotations

import json
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

CASES: list[tuple[str, str, str, dict[str, Any], str | None]] = [
    # N3: NACLs
    ("N3", "deny-22", t.NACL_RULE, NACL_RULE, N),
    (
        "N3",
        "allow-443",
        t.NACL_RULE,
        changed(NACL_RULE, ruleAction="allow", fromPort=443, toPort=443),
        N,
    ),
    (
        "N3",
        "allow-22-private",
        t.NACL_RULE,
        changed(NACL_RULE, ruleAction="allow", cidrBlock="10.0.0.0/8"),
        N,
    ),
    ("N3", "allow-22-egress", t.NACL_RULE, changed(NACL_RULE, ruleAction="allow", egress=True), N),
    ("N3", "no-rules", t.NACL, {"vpcId": "vpc-1"}, N),
    ("N3", "allow-22", t.NACL_RULE, changed(NACL_RULE, ruleAction="allow"), "port 22"),
    (
        "N3",
        "allow-all",
        t.NACL_RULE,
        changed(NACL_RULE, ruleAction="allow", protocol="-1"),
        "port 22",
    ),
    (
        "N3",
        "allow-3389-v6",
        t.NACL_RULE,
        changed(
            NACL_RULE,
            ruleAction="allow",
            cidrBlock=MISSING,
            ipv6CidrBlock="::/0",
            fromPort=3389,
            toPort=3389,
        ),
        "port 3389",
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
    ("N4", "off", t.SUBNET, SUBNET, N),
    ("N4", "missing", t.SUBNET, changed(SUBNET, mapPublicIpOnLaunch=MISSING), N),
    ("N4", "on", t.SUBNET, changed(SUBNET, mapPublicIpOnLaunch=True), "mapPublicIpOnLaunch"),
    ("N4", "ipv6-on", t.SUBNET, changed(SUBNET, assignIpv6AddressOnCreation=True), "IPv6"),
    # N5: world ingress ports
    ("N5", "443", t.INGRESS, INGRESS, N),
    ("N5", "80", t.INGRESS, changed(INGRESS, fromPort=80, toPort=80), N),
    (
        "N5",
        "5432-from-group",
        t.INGRESS,
        changed(
            INGRESS,
            cidrIpv4=MISSING,
            referencedSecurityGroupId="sg-app",
            fromPort=5432,
            toPort=5432,
        ),
        N,
    ),
    (
        "N5",
        "22-private",
        t.INGRESS,
        changed(INGRESS, cidrIpv4="10.0.0.0/8", fromPort=22, toPort=22),
        N,
    ),
    ("N5", "22-world", t.INGRESS, changed(INGRESS, fromPort=22, toPort=22), "ports 22-22"),
    ("N5", "all-world", t.INGRESS, changed(INGRESS, ipProtocol="-1"), "all ports"),
    ("N5", "range-world", t.INGRESS, changed(INGRESS, fromPort=80), "ports 80-443"),
    ("N5", "udp-world", t.INGRESS, changed(INGRESS, ipProtocol="udp"), "udp"),
    (
        "N5",
        "3389-v6",
        t.INGRESS,
        changed(INGRESS, cidrIpv4=MISSING, cidrIpv6="::/0", fromPort=3389, toPort=3389),
        "::/0",
    ),
    (
        "N5",
        "ports-missing",
        t.INGRESS,
        changed(INGRESS, fromPort=MISSING, toPort=MISSING),
        "all ports",
    ),
    (
        "N5",
        "inline-22",
        t.SECURITY_GROUP,
        changed(
            SG, ingress=[{"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": [WORLD]}]
        ),
        "ports 22-22",
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
    ("N7", "443", t.EGRESS, EGRESS, N),
    (
        "N7",
        "5432-to-group",
        t.EGRESS,
        changed(
            EGRESS, cidrIpv4=MISSING, referencedSecurityGroupId="sg-db", fromPort=5432, toPort=5432
        ),
        N,
    ),
    ("N7", "all-world", t.EGRESS, changed(EGRESS, ipProtocol="-1"), "ports 0-65535"),
    ("N7", "80-world", t.EGRESS, changed(EGRESS, fromPort=80, toPort=80), "ports 80-80"),
    ("N7", "ports-missing", t.EGRESS, changed(EGRESS, fromPort=MISSING, toPort=MISSING), "0-65535"),
    (
        "N7",
        "inline-all",
        t.SECURITY_GROUP,
        changed(SG, egress=[{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": [WORLD]}]),
        "-1",
    ),
    # N8: descriptions
    ("N8", "sg", t.SECURITY_GROUP, SG, N),
    ("N8", "rule", t.INGRESS, INGRESS, N),
    ("N8", "sg-missing", t.SECURITY_GROUP, changed(SG, description=MISSING), "no description"),
    (
        "N8",
        "sg-default",
        t.SECURITY_GROUP,
        changed(SG, description="Managed by Pulumi"),
        "no description",
    ),
    ("N8", "rule-blank", t.INGRESS, changed(INGRESS, description="  "), "no description"),
    (
        "N8",
        "inline-missing",
        t.SECURITY_GROUP,
        changed(SG, ingress=[{"protocol": "tcp", "fromPort": 1, "toPort": 1}]),
        "inline ingress",
    ),
    # A1: HTTPS only
    ("A1", "redirect", t.LISTENER, HTTP_REDIRECT, N),
    ("A1", "https", t.LISTENER, HTTPS, N),
    (
        "A1",
        "http-forward",
        t.LISTENER,
        changed(HTTP_REDIRECT, defaultActions=[{"type": "forward", "targetGroupArn": "arn:tg"}]),
        "instead of redirecting",
    ),
    (
        "A1",
        "protocol-missing",
        t.LISTENER,
        changed(HTTP_REDIRECT, protocol=MISSING, defaultActions=[{"type": "forward"}]),
        "instead of redirecting",
    ),
    (
        "A1",
        "actions-missing",
        t.LISTENER,
        changed(HTTP_REDIRECT, defaultActions=MISSING),
        "instead of redirecting",
    ),
    (
        "A1",
        "redirect-to-http",
        t.LISTENER,
        changed(
            HTTP_REDIRECT, defaultActions=[{"type": "redirect", "redirect": {"protocol": "HTTP"}}]
        ),
        "instead of redirecting",
    ),
    (
        "A1",
        "https-no-cert",
        t.LISTENER,
        changed(HTTPS, certificateArn=MISSING),
        "no certificateArn",
    ),
    # A2: TLS policy
    ("A2", "tls13", t.LISTENER, HTTPS, N),
    ("A2", "http", t.LISTENER, HTTP_REDIRECT, N),
    ("A2", "missing", t.LISTENER, changed(HTTPS, sslPolicy=MISSING), "2016-08"),
    (
        "A2",
        "old",
        t.LISTENER,
        changed(HTTPS, sslPolicy="ELBSecurityPolicy-2016-08"),
        "is not one of",
    ),
    (
        "A2",
        "ext",
        t.LISTENER,
        changed(HTTPS, sslPolicy="ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06"),
        "is not one of",
    ),
    # A3a-c, A4: load balancer settings
    ("A3a", "on", t.LOAD_BALANCER, ALB, N),
    (
        "A3a",
        "nlb",
        t.LOAD_BALANCER,
        changed(ALB, loadBalancerType="network", dropInvalidHeaderFields=MISSING),
        N,
    ),
    (
        "A3a",
        "missing",
        t.LOAD_BALANCER,
        changed(ALB, dropInvalidHeaderFields=MISSING),
        "dropInvalid",
    ),
    ("A3a", "off", t.LOAD_BALANCER, changed(ALB, dropInvalidHeaderFields=False), "dropInvalid"),
    ("A3b", "defensive", t.LOAD_BALANCER, ALB, N),
    ("A3b", "missing", t.LOAD_BALANCER, changed(ALB, desyncMitigationMode=MISSING), N),
    ("A3b", "strictest", t.LOAD_BALANCER, changed(ALB, desyncMitigationMode="strictest"), N),
    ("A3b", "monitor", t.LOAD_BALANCER, changed(ALB, desyncMitigationMode="monitor"), "monitor"),
    ("A3c", "on", t.LOAD_BALANCER, ALB, N),
    (
        "A3c",
        "missing",
        t.LOAD_BALANCER,
        changed(ALB, enableDeletionProtection=MISSING),
        "enableDeletion",
    ),
    ("A3c", "off", t.LOAD_BALANCER, changed(ALB, enableDeletionProtection=False), "enableDeletion"),
    ("A4", "on", t.LOAD_BALANCER, ALB, N),
    ("A4", "missing", t.LOAD_BALANCER, changed(ALB, accessLogs=MISSING), "access logs"),
    (
        "A4",
        "disabled",
        t.LOAD_BALANCER,
        changed(ALB, accessLogs={"bucket": "b", "enabled": False}),
        "access logs",
    ),
    ("A4", "no-bucket", t.LOAD_BALANCER, changed(ALB, accessLogs={"enabled": True}), "access logs"),
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
    ("E3c", "latest", t.ECS_SERVICE, SERVICE, N),
    ("E3c", "missing", t.ECS_SERVICE, changed(SERVICE, platformVersion=MISSING), N),
    ("E3c", "pinned", t.ECS_SERVICE, changed(SERVICE, platformVersion="1.3.0"), "1.3.0"),
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
    ("E6", "private", t.ECS_SERVICE, SERVICE, N),
    ("E6", "missing", t.ECS_SERVICE, changed(SERVICE, networkConfiguration=MISSING), N),
    (
        "E6",
        "public",
        t.ECS_SERVICE,
        changed(SERVICE, networkConfiguration={"subnets": ["s"], "assignPublicIp": True}),
        "assignPublicIp",
    ),
    ("E7", "enabled", t.ECS_CLUSTER, CLUSTER, N),
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
    (
        "E7",
        "exec-unlogged",
        t.ECS_CLUSTER,
        changed(CLUSTER, configuration={"executeCommandConfiguration": {"logging": "NONE"}}),
        "Exec",
    ),
    # R1, R2: repositories
    ("R1", "on", t.ECR_REPOSITORY, REPO, N),
    (
        "R1",
        "missing",
        t.ECR_REPOSITORY,
        changed(REPO, imageScanningConfiguration=MISSING),
        "scanOnPush",
    ),
    (
        "R1",
        "off",
        t.ECR_REPOSITORY,
        changed(REPO, imageScanningConfiguration={"scanOnPush": False}),
        "scanOnPush",
    ),
    ("R2", "immutable", t.ECR_REPOSITORY, REPO, N),
    ("R2", "missing", t.ECR_REPOSITORY, changed(REPO, imageTagMutability=MISSING), "MUTABLE"),
    ("R2", "mutable", t.ECR_REPOSITORY, changed(REPO, imageTagMutability="MUTABLE"), "MUTABLE"),
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
    (
        "I1a",
        "inline",
        t.IAM_ROLE,
        changed(
            ROLE,
            inlinePolicies=[
                {"name": "p", "policy": doc({"Effect": "Allow", "Action": "*", "Resource": "*"})}
            ],
        ),
        "wildcard",
    ),
    (
        "I1a",
        "admin-attached",
        t.IAM_ATTACHMENT,
        {"role": "r", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
        "AdministratorAccess",
    ),
    (
        "I1a",
        "power-user",
        t.IAM_ROLE,
        changed(ROLE, managedPolicyArns=["arn:aws:iam::aws:policy/PowerUserAccess"]),
        "PowerUserAccess",
    ),
    ("I1b", "service", t.IAM_ROLE, ROLE, N),
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
    ("D1", "encrypted", t.RDS_INSTANCE, DB, N),
    ("D1", "replica", t.RDS_INSTANCE, REPLICA, N),
    ("D1", "missing", t.RDS_INSTANCE, changed(DB, storageEncrypted=MISSING), "storageEncrypted"),
    ("D1", "false", t.RDS_INSTANCE, changed(DB, storageEncrypted=False), "storageEncrypted"),
    ("D2", "private", t.RDS_INSTANCE, DB, N),
    ("D2", "replica", t.RDS_INSTANCE, REPLICA, N),
    ("D2", "public", t.RDS_INSTANCE, changed(DB, publiclyAccessible=True), "publiclyAccessible"),
    (
        "D2",
        "no-groups",
        t.RDS_INSTANCE,
        changed(DB, vpcSecurityGroupIds=MISSING),
        "default security",
    ),
    ("D2", "no-subnets", t.RDS_INSTANCE, changed(DB, dbSubnetGroupName=MISSING), "default VPC"),
    ("D3a", "7", t.RDS_INSTANCE, DB, N),
    ("D3a", "replica", t.RDS_INSTANCE, REPLICA, N),
    ("D3a", "missing", t.RDS_INSTANCE, changed(DB, backupRetentionPeriod=MISSING), "not set"),
    ("D3a", "1", t.RDS_INSTANCE, changed(DB, backupRetentionPeriod=1), "is 1; want >= 7"),
    ("D3b", "on", t.RDS_INSTANCE, DB, N),
    ("D3b", "replica-no-snapshot", t.RDS_INSTANCE, REPLICA, N),
    (
        "D3b",
        "missing",
        t.RDS_INSTANCE,
        changed(DB, deletionProtection=MISSING),
        "deletionProtection",
    ),
    ("D3b", "off", t.RDS_INSTANCE, changed(DB, deletionProtection=False), "deletionProtection"),
    (
        "D3b",
        "skip-snapshot",
        t.RDS_INSTANCE,
        changed(DB, skipFinalSnapshot=True),
        "skipFinalSnapshot",
    ),
    ("D4", "on", t.RDS_INSTANCE, DB, N),
    (
        "D4",
        "missing",
        t.RDS_INSTANCE,
        changed(DB, iamDatabaseAuthenticationEnabled=MISSING),
        "iamDatabase",
    ),
    ("D5", "postgres", t.RDS_INSTANCE, DB, N),
    ("D5", "replica", t.RDS_INSTANCE, REPLICA, N),
    (
        "D5",
        "missing",
        t.RDS_INSTANCE,
        changed(DB, enabledCloudwatchLogsExports=MISSING),
        "is empty",
    ),
    (
        "D5",
        "wrong",
        t.RDS_INSTANCE,
        changed(DB, enabledCloudwatchLogsExports=["upgrade"]),
        "lacks postgresql",
    ),
    ("D6a", "current", t.RDS_INSTANCE, DB, N),
    ("D6a", "missing", t.RDS_INSTANCE, changed(DB, caCertIdentifier=MISSING), "not set"),
    ("D6a", "old", t.RDS_INSTANCE, changed(DB, caCertIdentifier="rds-ca-2019"), "rds-ca-2019"),
    ("D7a", "on", t.RDS_INSTANCE, DB, N),
    ("D7a", "missing", t.RDS_INSTANCE, changed(DB, autoMinorVersionUpgrade=MISSING), N),
    ("D7a", "off", t.RDS_INSTANCE, changed(DB, autoMinorVersionUpgrade=False), "autoMinor"),
    ("D7b", "on", t.RDS_INSTANCE, DB, N),
    ("D7b", "missing", t.RDS_INSTANCE, changed(DB, copyTagsToSnapshot=MISSING), "copyTags"),
    ("D7c", "custom", t.RDS_INSTANCE, DB, N),
    ("D7c", "replica", t.RDS_INSTANCE, REPLICA, N),
    ("D7c", "missing", t.RDS_INSTANCE, changed(DB, username=MISSING), "not set"),
    ("D7c", "postgres", t.RDS_INSTANCE, changed(DB, username="postgres"), "default admin"),
    ("D8a", "on", t.RDS_INSTANCE, DB, N),
    (
        "D8a",
        "missing",
        t.RDS_INSTANCE,
        changed(DB, performanceInsightsEnabled=MISSING),
        "performance",
    ),
    ("D8b", "60", t.RDS_INSTANCE, DB, N),
    (
        "D8b",
        "missing",
        t.RDS_INSTANCE,
        changed(DB, monitoringInterval=MISSING),
        "enhanced monitoring",
    ),
    (
        "D8b",
        "no-role",
        t.RDS_INSTANCE,
        changed(DB, monitoringRoleArn=MISSING),
        "enhanced monitoring",
    ),
    ("D9", "multi-az", t.RDS_INSTANCE, DB, N),
    ("D9", "replica", t.RDS_INSTANCE, REPLICA, N),
    ("D9", "missing", t.RDS_INSTANCE, changed(DB, multiAz=MISSING), "multiAz"),
    ("D9", "off", t.RDS_INSTANCE, changed(DB, multiAz=False), "multiAz"),
    # C1-C4: ElastiCache
    ("C1", "on", t.REPLICATION_GROUP, REDIS, N),
    ("C1", "string", t.REPLICATION_GROUP, changed(REDIS, atRestEncryptionEnabled="true"), N),
    (
        "C1",
        "missing",
        t.REPLICATION_GROUP,
        changed(REDIS, atRestEncryptionEnabled=MISSING),
        "atRest",
    ),
    ("C2", "tls-token", t.REPLICATION_GROUP, REDIS, N),
    ("C2", "rbac", t.REPLICATION_GROUP, changed(REDIS, authToken=MISSING, userGroupIds=["ug"]), N),
    (
        "C2",
        "no-tls",
        t.REPLICATION_GROUP,
        changed(REDIS, transitEncryptionEnabled=MISSING),
        "transit",
    ),
    (
        "C2",
        "preferred",
        t.REPLICATION_GROUP,
        changed(REDIS, transitEncryptionMode="preferred"),
        "preferred",
    ),
    ("C2", "no-auth", t.REPLICATION_GROUP, changed(REDIS, authToken=MISSING), "no authToken"),
    ("C3a", "7", t.REPLICATION_GROUP, REDIS, N),
    (
        "C3a",
        "missing",
        t.REPLICATION_GROUP,
        changed(REDIS, snapshotRetentionLimit=MISSING),
        "snapshot",
    ),
    ("C3a", "0", t.REPLICATION_GROUP, changed(REDIS, snapshotRetentionLimit=0), "snapshot"),
    ("C3b", "on", t.REPLICATION_GROUP, REDIS, N),
    ("C3b", "missing", t.REPLICATION_GROUP, changed(REDIS, autoMinorVersionUpgrade=MISSING), N),
    ("C3b", "off", t.REPLICATION_GROUP, changed(REDIS, autoMinorVersionUpgrade=False), "autoMinor"),
    ("C3c", "own", t.REPLICATION_GROUP, REDIS, N),
    (
        "C3c",
        "no-subnets",
        t.REPLICATION_GROUP,
        changed(REDIS, subnetGroupName=MISSING),
        "subnetGroupName",
    ),
    (
        "C3c",
        "no-groups",
        t.REPLICATION_GROUP,
        changed(REDIS, securityGroupIds=MISSING),
        "securityGroupIds",
    ),
    ("C4", "failover", t.REPLICATION_GROUP, REDIS, N),
    (
        "C4",
        "missing",
        t.REPLICATION_GROUP,
        changed(REDIS, automaticFailoverEnabled=MISSING),
        "automatic",
    ),
    (
        "C4",
        "single-az",
        t.REPLICATION_GROUP,
        changed(REDIS, multiAzEnabled=False),
        "multiAzEnabled",
    ),
    ("C4", "one-node", t.REPLICATION_GROUP, changed(REDIS, numCacheClusters=1), "1 node"),
    # L1: log groups
    ("L1", "30", t.LOG_GROUP, LOG_GROUP, N),
    ("L1", "missing", t.LOG_GROUP, changed(LOG_GROUP, retentionInDays=MISSING), "kept forever"),
    # KMS (advisory)
    ("KMS", "secret-cmk", t.SECRET, SECRET, N),
    ("KMS", "secret-missing", t.SECRET, changed(SECRET, kmsKeyId=MISSING), "AWS-managed"),
    (
        "KMS",
        "secret-aws-alias",
        t.SECRET,
        changed(SECRET, kmsKeyId="alias/aws/secretsmanager"),
        "AWS-managed",
    ),
    (
        "KMS",
        "ecr-kms",
        t.ECR_REPOSITORY,
        changed(REPO, encryptionConfigurations=[{"encryptionType": "KMS", "kmsKey": "arn:k"}]),
        N,
    ),
    (
        "KMS",
        "ecr-aes",
        t.ECR_REPOSITORY,
        changed(REPO, encryptionConfigurations=[{"encryptionType": "AES256"}]),
        "AWS-owned",
    ),
    ("KMS", "rds-replica", t.RDS_INSTANCE, REPLICA, N),
    ("KMS", "rds-missing", t.RDS_INSTANCE, changed(DB, kmsKeyId=MISSING), "aws/rds"),
    ("KMS", "redis-missing", t.REPLICATION_GROUP, changed(REDIS, kmsKeyId=MISSING), "AWS-managed"),
    ("KMS", "log-missing", t.LOG_GROUP, changed(LOG_GROUP, kmsKeyId=MISSING), "AWS-managed"),
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


@pytest.mark.parametrize(
    ("rule", "resource_type", "props", "config", "expected"),
    [
        pytest.param(
            "D3a", t.RDS_INSTANCE, DB, {"minimumDays": 14}, "is 7; want >= 14", id="D3a-14"
        ),
        pytest.param(
            "D3a",
            t.RDS_INSTANCE,
            changed(DB, backupRetentionPeriod=14),
            {"minimumDays": 14},
            None,
            id="D3a-14-ok",
        ),
        pytest.param(
            "L1", t.LOG_GROUP, LOG_GROUP, {"minimumDays": 365}, "is 30; want >= 365", id="L1-365"
        ),
        pytest.param(
            "L1",
            t.LOG_GROUP,
            changed(LOG_GROUP, retentionInDays=365),
            {"minimumDays": 365},
            None,
            id="L1-365-ok",
        ),
        pytest.param(
            "E5",
            t.TASK_DEFINITION,
            env("CACHE_KEY_PREFIX", "app"),
            {},
            "looks like",
            id="E5-key-word",
        ),
        pytest.param(
            "E5",
            t.TASK_DEFINITION,
            env("CACHE_KEY_PREFIX", "app"),
            {"allowedNames": ["CACHE_KEY_PREFIX"]},
            None,
            id="E5-allowed-name",
        ),
    ],
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
