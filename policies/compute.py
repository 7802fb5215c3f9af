"""ECS, ECR and IAM rules: what runs, from which image, with which permissions."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity, StackValidationArgs

from policies import tokens as t
from policies.model import (
    container_name,
    containers,
    items,
    mapping,
    of_type,
    property_rule,
    referrers,
    refs,
    resource_rule,
    stack_rule,
    statements,
    strings,
)

# --- ECS task definitions ------------------------------------------------------------------


@resource_rule(
    "E1",
    "ecs-readonly-root-filesystem",
    types=t.TASK_DEFINITION,
    sources=("SH ECS.5", "CKV_AWS_336", "CT.ECS.PR.6"),
    severity=Severity.MEDIUM,
    description="Every container has a read-only root filesystem",
)
def ecs_readonly_root(args: ResourceValidationArgs) -> Iterator[str]:
    for c in containers(args.props):
        if c.get("readonlyRootFilesystem") is not True:
            yield f"container {container_name(c)}: readonlyRootFilesystem is not true"


ROOT_USERS = ("root", "0")


@resource_rule(
    "E2",
    "ecs-non-root-user",
    types=t.TASK_DEFINITION,
    sources=("CT.ECS.PR.3",),
    severity=Severity.MEDIUM,
    description="Every container runs as a non-root user",
)
def ecs_non_root(args: ResourceValidationArgs) -> Iterator[str]:
    for c in containers(args.props):
        user = str(c.get("user") or "")
        if not user:
            yield f"container {container_name(c)}: no user, so it runs as the image's (often root)"
        elif user.split(":")[0] in ROOT_USERS:
            yield f"container {container_name(c)}: runs as root ({user})"


@resource_rule(
    "E3a",
    "ecs-no-privileged-containers",
    types=t.TASK_DEFINITION,
    sources=("SH ECS.4", "CKV_AWS_334", "CT.ECS.PR.10"),
    severity=Severity.HIGH,
    description="No container is privileged",
)
def ecs_not_privileged(args: ResourceValidationArgs) -> Iterator[str]:
    for c in containers(args.props):
        if c.get("privileged") is True:
            yield f"container {container_name(c)}: privileged is true"


@resource_rule(
    "E3b",
    "ecs-task-isolation",
    types=t.TASK_DEFINITION,
    sources=("SH ECS.1", "SH ECS.3", "CKV_AWS_335", "CT.ECS.PR.1", "CT.ECS.PR.4"),
    severity=Severity.HIGH,
    description="Tasks use awsvpc networking and share neither the host's PID nor IPC namespace",
)
def ecs_task_isolation(args: ResourceValidationArgs) -> Iterator[str]:
    mode = args.props.get("networkMode")
    if mode != "awsvpc":
        yield f"networkMode is {mode or 'not set (bridge)'}: use awsvpc"
    for key in ("pidMode", "ipcMode"):
        if args.props.get(key) == "host":
            yield f"{key} is host"


@resource_rule(
    "E3c",
    "ecs-fargate-latest-platform",
    types=t.ECS_SERVICE,
    sources=("SH ECS.10", "CKV_AWS_332", "CT.ECS.PR.11"),
    severity=Severity.MEDIUM,
    description="Fargate services run on the LATEST platform version",
)
def ecs_fargate_latest(args: ResourceValidationArgs) -> Iterator[str]:
    version = args.props.get("platformVersion")
    if args.props.get("launchType") == "FARGATE" and version not in (None, "LATEST"):
        yield f"platformVersion is pinned to {version}: use LATEST"


@resource_rule(
    "E4",
    "ecs-container-logging",
    types=t.TASK_DEFINITION,
    sources=("SH ECS.9", "CT.ECS.PR.5"),
    severity=Severity.MEDIUM,
    description="Every container has a log configuration",
)
def ecs_container_logging(args: ResourceValidationArgs) -> Iterator[str]:
    for c in containers(args.props):
        if not mapping(c.get("logConfiguration")).get("logDriver"):
            yield f"container {container_name(c)}: no logConfiguration.logDriver"


# A name is secret-looking when one of its _-separated words is one of these,
# or when it contains one of the longer markers anywhere (DBPASSWORD, APITOKEN).
SECRET_WORDS = frozenset(
    {
        "PASSWORD",
        "PASSWD",
        "PASS",
        "PWD",
        "SECRET",
        "TOKEN",
        "KEY",
        "APIKEY",
        "CREDENTIAL",
        "CREDENTIALS",
        "PRIVATE",
        "AUTH",
        "DSN",
    }
)
SECRET_MARKERS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "APIKEY", "PRIVATEKEY", "CREDENTIAL")
URL_WITH_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.IGNORECASE)
CREDENTIAL_SHAPES = (
    re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),  # GitHub token
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),  # Slack token
    re.compile(r"\b(sk|rk)_live_[A-Za-z0-9]{16,}\b"),  # Stripe key
    re.compile(r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\b"),  # SendGrid key
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # JWT
)
OPAQUE = re.compile(r"^[A-Za-z0-9+/=_-]{24,}$")
# A switch holds no secret, whatever its name says (DB_IAM_AUTH=1 turns token sign-in on).
SWITCH_VALUES = frozenset({"0", "1", "true", "false"})


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def secret_looking_name(name: str) -> bool:
    upper = name.upper()
    words = set(re.split(r"[^A-Z0-9]+", upper))
    return bool(words & SECRET_WORDS) or any(m in upper.replace("_", "") for m in SECRET_MARKERS)


def secret_looking_value(value: str) -> str | None:
    """Why a value looks like a credential, or None."""
    if URL_WITH_PASSWORD.search(value):
        return "a URL with a password in it"
    for shape in CREDENTIAL_SHAPES:
        if shape.search(value):
            return "a credential-shaped string"
    if OPAQUE.match(value) and _entropy(value) >= 4.0 and not value.isdigit():
        has_classes = sum(
            (
                any(c.islower() for c in value),
                any(c.isupper() for c in value),
                any(c.isdigit() for c in value),
            )
        )
        if has_classes == 3:
            return "a long random-looking string"
    return None


@resource_rule(
    "E5",
    "ecs-no-secrets-in-environment",
    types=t.TASK_DEFINITION,
    sources=("SH ECS.8", "AVD-AWS-0036", "CT.ECS.PR.12", "Cold Reach: secrets only via `secrets`"),
    severity=Severity.CRITICAL,
    description=(
        "No secret-looking name or value in a container's `environment`; secrets come "
        "from Secrets Manager through `secrets`"
    ),
    config={"allowedNames": {"type": "array", "items": {"type": "string"}}},
)
def ecs_no_secrets_in_environment(args: ResourceValidationArgs) -> Iterator[str]:
    allowed = {str(n) for n in items(args.get_config().get("allowedNames"))}
    for c in containers(args.props):
        for var in items(c.get("environment")):
            var = mapping(var)
            name, value = str(var.get("name") or ""), str(var.get("value") or "")
            if not value or name in allowed or value.lower() in SWITCH_VALUES:
                continue
            if secret_looking_name(name):
                yield f"container {container_name(c)}: {name} looks like a secret; use `secrets`"
                continue
            why = secret_looking_value(value)
            if why:
                yield f"container {container_name(c)}: the value of {name} is {why}; use `secrets`"


# --- ECS services and clusters -------------------------------------------------------------


property_rule(
    "E6",
    "ecs-service-no-public-ip",
    types=t.ECS_SERVICE,
    sources=("SH ECS.2", "CKV_AWS_333", "CT.ECS.PR.9"),
    severity=Severity.HIGH,
    description="Services do not give their tasks public IPs (advisory in dev: ADR 0001)",
    prop="networkConfiguration.assignPublicIp",
    must_not_be=True,
    strict=True,
    message="assignPublicIp is true: the tasks get public addresses",
)


@resource_rule(
    "E7",
    "ecs-cluster-insights-and-exec-logging",
    types=t.ECS_CLUSTER,
    sources=("SH ECS.12", "CKV_AWS_65", "AVD-AWS-0034", "CKV_AWS_223", "CKV_AWS_224"),
    severity=Severity.LOW,
    description="Clusters have Container Insights on; ECS Exec sessions, if any, are logged",
)
def ecs_cluster_insights(args: ResourceValidationArgs) -> Iterator[str]:
    settings = {
        mapping(s).get("name"): mapping(s).get("value") for s in items(args.props.get("settings"))
    }
    if settings.get("containerInsights") not in ("enabled", "enhanced"):
        yield "containerInsights is not enabled"
    exec_config = mapping(
        mapping(args.props.get("configuration")).get("executeCommandConfiguration")
    )
    if exec_config.get("logging") == "NONE":
        yield "ECS Exec logging is NONE"


# --- ECR -----------------------------------------------------------------------------------


property_rule(
    "R1",
    "ecr-scan-on-push",
    types=t.ECR_REPOSITORY,
    sources=("SH ECR.1", "CKV_AWS_163", "AVD-AWS-0030"),
    severity=Severity.MEDIUM,
    description="Repositories scan images on push",
    prop="imageScanningConfiguration.scanOnPush",
    must_be=True,
    strict=True,
    message="imageScanningConfiguration.scanOnPush is not true",
)


@resource_rule(
    "R2",
    "ecr-immutable-tags",
    types=t.ECR_REPOSITORY,
    sources=("SH ECR.2", "CKV_AWS_51", "AVD-AWS-0031"),
    severity=Severity.MEDIUM,
    description="Image tags are immutable",
)
def ecr_immutable_tags(args: ResourceValidationArgs) -> Iterator[str]:
    mutability = args.props.get("imageTagMutability")
    if mutability not in ("IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION"):
        yield f"imageTagMutability is {mutability or 'not set (MUTABLE)'}"


@stack_rule(
    "R3",
    "ecr-lifecycle-policy",
    sources=("SH ECR.3",),
    severity=Severity.LOW,
    description="Every repository has a lifecycle policy",
)
def ecr_lifecycle(args: StackValidationArgs) -> Iterator[tuple[str | None, str]]:
    for repo in of_type(args, t.ECR_REPOSITORY):
        if not referrers(args, repo, "repository", t.ECR_LIFECYCLE):
            yield repo.urn, "repository has no lifecycle policy"


# --- IAM -----------------------------------------------------------------------------------

# Actions that take no resource ARN: "Resource": "*" is the only way to grant them.
RESOURCELESS_ACTIONS = frozenset(
    {
        "ecr:GetAuthorizationToken",
        "cloudwatch:PutMetricData",
        "cloudwatch:GetMetricData",
        "logs:DescribeLogGroups",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
        "sts:GetCallerIdentity",
        "secretsmanager:GetRandomPassword",
        "ec2:DescribeNetworkInterfaces",
    }
)
ADMIN_POLICIES = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess")


def _document_findings(document: Any, where: str) -> Iterator[str]:
    for s in statements(document):
        if s.get("Effect") != "Allow":
            continue
        actions = strings(s.get("Action"))
        if "NotAction" in s:
            yield f"{where}: Allow with NotAction grants everything else"
        for action in actions:
            if action == "*" or action.endswith(":*"):
                yield f"{where}: action {action} is a wildcard"
        resources = strings(s.get("Resource"))
        if "rds-db:connect" in actions:
            # A token for any user (`.../dbuser:<id>/*`) or any instance is a password
            # for all of them.
            for resource in resources:
                if "*" in resource:
                    yield f"{where}: rds-db:connect on {resource}; name the user and instance"
        if "*" in resources and "Condition" not in s:
            broad = sorted(set(actions) - RESOURCELESS_ACTIONS)
            if broad:
                yield f"{where}: {', '.join(broad)} on Resource * without a condition"


@resource_rule(
    "I1a",
    "iam-least-privilege",
    types=(t.IAM_ROLE_POLICY, t.IAM_POLICY, t.IAM_ROLE, t.IAM_ATTACHMENT),
    sources=(
        "SH IAM.1",
        "SH IAM.21",
        "CKV_AWS_62",
        "CKV_AWS_63",
        "CKV_AWS_286",
        "CKV_AWS_287",
        "CKV_AWS_288",
        "CKV_AWS_289",
        "CKV_AWS_290",
        "CKV_AWS_355",
    ),
    severity=Severity.HIGH,
    description=(
        "Policies grant named actions on named resources: no wildcard actions, no NotAction, "
        "Resource * only for actions that take no ARN, rds-db:connect only as named database "
        "users, no admin managed policies"
    ),
)
def iam_least_privilege(args: ResourceValidationArgs) -> Iterator[str]:
    p = args.props
    if args.resource_type in (t.IAM_ROLE_POLICY, t.IAM_POLICY):
        yield from _document_findings(p.get("policy"), "policy")
    elif args.resource_type == t.IAM_ROLE:
        for inline in items(p.get("inlinePolicies")):
            yield from _document_findings(mapping(inline).get("policy"), "inline policy")
    arns = strings(p.get("policyArn")) + strings(p.get("managedPolicyArns"))
    for arn in arns:
        if arn.rsplit("/", 1)[-1] in ADMIN_POLICIES:
            yield f"attaches {arn}"


@resource_rule(
    "I1b",
    "iam-trust-policy-scoped",
    types=t.IAM_ROLE,
    sources=("SH IAM.1", "CKV_AWS_60", "CKV_AWS_61"),
    severity=Severity.CRITICAL,
    description="A role's trust policy names its principals; never * or every AWS account",
)
def iam_trust_scoped(args: ResourceValidationArgs) -> Iterator[str]:
    found = statements(args.props.get("assumeRolePolicy"))
    if not found:
        yield "no trust policy"
    for s in found:
        if s.get("Effect") != "Allow":
            continue
        principal = s.get("Principal")
        aws = strings(mapping(principal).get("AWS")) if isinstance(principal, Mapping) else []
        if principal == "*" or "*" in aws:
            yield "trust policy lets any principal assume the role"


@stack_rule(
    "I1c",
    "ecs-separate-task-and-execution-roles",
    sources=("CKV_AWS_249",),
    severity=Severity.MEDIUM,
    description="A task's execution role (ECS agent) is not its task role (the app)",
)
def ecs_separate_roles(args: StackValidationArgs) -> Iterator[tuple[str | None, str]]:
    for td in of_type(args, t.TASK_DEFINITION):
        task = {r.urn for r in refs(td, "taskRoleArn", t.IAM_ROLE)}
        execution = {r.urn for r in refs(td, "executionRoleArn", t.IAM_ROLE)}
        if task & execution:
            yield td.urn, "the task role and the execution role are the same role"
