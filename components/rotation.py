"""Rotation of the database's master password: a Lambda function in the VPC that Secrets
Manager calls on a schedule, reaching Secrets Manager through an interface endpoint.

Why our own function and not AWS's: the AWS-provided
`SecretsManagerRDSPostgreSQLRotationSingleUser` is a Serverless Application Repository
app, deployed as a CloudFormation stack whose function and role no Pulumi preview, no
policy rule and no emulator can see. This function is the same four steps
(components/rotation_function.py) in plain pulumi-aws resources, with a role that
names the one secret it rotates. RDS-managed master passwords
(`manage_master_user_password`) are no option: RDS cannot create a read replica of an
instance whose master password it manages, and phase 2 has one.

Why an endpoint: the private subnets have no route out in phase 1, and the function
needs nothing but Secrets Manager and the database. The endpoint's private DNS is off,
so nothing else in the VPC changes route (ECS would otherwise fetch the tasks'
secrets through it too); the function is given the endpoint's own name.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components import iam
from components.firewall import SecurityGroup
from components.secrets import StoredSecret

HANDLER = Path(__file__).with_name("rotation_function.py")
# pg8000 and what it needs: pure Python, so the sources of the locked versions run on
# any Lambda architecture. boto3 comes with the runtime.
DRIVER = ("pg8000", "scramp", "asn1crypto", "python-dateutil", "six")
RUNTIME = "python3.12"
BUILD_DIR = Path(__file__).resolve().parents[1] / "var" / "build"


def package(build_dir: Path = BUILD_DIR) -> Path:
    """The function's zip: the handler and the driver's sources, byte-for-byte the same on
    every machine with the same lock (sorted entries, fixed timestamps, no bytecode), so
    the archive changes only when the code does. Named by its hash."""
    files = {"rotation_function.py": HANDLER.read_bytes()}
    for dist in DRIVER:
        for entry in importlib.metadata.files(dist) or []:
            if _packaged(entry.parts):
                files[entry.as_posix()] = Path(str(entry.locate())).read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name])
    data = buffer.getvalue()
    final = build_dir / f"db-rotation-{hashlib.sha256(data).hexdigest()[:16]}.zip"
    if not final.is_file():
        build_dir.mkdir(parents=True, exist_ok=True)
        # Written whole or not at all: several evaluations may package at once.
        partial = final.with_name(f"{final.name}.{os.getpid()}.partial")
        partial.write_bytes(data)
        os.replace(partial, final)
    return final


# What an install adds to a distribution's metadata and differs between machines.
INSTALL_RECORDS = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})


def _packaged(parts: tuple[str, ...]) -> bool:
    """Sources, and the metadata that the driver reads at import (`importlib.metadata`)
    with its licence files; no bytecode and nothing an installer wrote."""
    if parts[0].endswith(".dist-info"):
        return parts[-1] not in INSTALL_RECORDS
    return parts[-1].endswith(".py") and "__pycache__" not in parts


@dataclass
class RotationArgs:
    secret: StoredSecret
    """The master credentials (JSON: host, port, dbname, username, password)."""
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets: the function's network interfaces and the endpoint's."""
    log_retention_days: int
    schedule_days: int = 30
    security_group_tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of the function's group (the topology node it is)."""
    endpoint_tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of the endpoint's group (the topology node it is, whom it admits)."""


class MasterRotation(pulumi.ComponentResource):
    """Rotates `args.secret` every `schedule_days` days. Its security groups admit and reach
    nothing until the caller connects them (`firewall.connect`) as the topology declares."""

    security_group: SecurityGroup
    endpoint_security_group: SecurityGroup
    endpoint: aws.ec2.VpcEndpoint
    function: aws.lambda_.Function
    rotation: aws.secretsmanager.SecretRotation | None = None
    """Set by `schedule`, once the caller has opened the function's network paths."""

    def __init__(
        self, name: str, args: RotationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("coldreach:rotation:MasterRotation", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        region = aws.get_region(opts=invoke).region
        account = aws.get_caller_identity(opts=invoke).account_id

        self.security_group = SecurityGroup(
            f"{name}-sg", f"{name}: the rotation function", args.vpc_id, self,
            args.security_group_tags,
        )  # fmt: skip
        self.endpoint_security_group = SecurityGroup(
            f"{name}-endpoint-sg", f"{name}: the Secrets Manager endpoint", args.vpc_id, self,
            args.endpoint_tags,
        )  # fmt: skip
        self.endpoint = aws.ec2.VpcEndpoint(
            f"{name}-secretsmanager",
            vpc_id=args.vpc_id,
            service_name=f"com.amazonaws.{region}.secretsmanager",
            vpc_endpoint_type="Interface",
            subnet_ids=list(args.subnet_ids),
            security_group_ids=[self.endpoint_security_group.id],
            private_dns_enabled=False,
            tags={"Name": f"{name}-secretsmanager"},
            opts=child,
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs", retention_in_days=args.log_retention_days, opts=child
        )
        role = aws.iam.Role(
            f"{name}-function",
            assume_role_policy=iam.assume_role_policy("lambda.amazonaws.com"),
            description=f"{name}: rotates the database's master secret",
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-function",
            role=role.id,
            policy=iam.policy(
                iam.allow(
                    [
                        "secretsmanager:DescribeSecret",
                        "secretsmanager:GetSecretValue",
                        "secretsmanager:PutSecretValue",
                        "secretsmanager:UpdateSecretVersionStage",
                    ],
                    [args.secret.secret.arn],
                ),
                # No resource-level permissions exist for these two.
                iam.allow(
                    ["secretsmanager:GetRandomPassword", "ec2:DescribeNetworkInterfaces"], ["*"]
                ),
                # Lambda manages the function's network interfaces with its role; AWS
                # documents this account-and-region form for DeleteNetworkInterface.
                iam.allow(
                    [
                        "ec2:CreateNetworkInterface",
                        "ec2:DeleteNetworkInterface",
                        "ec2:AssignPrivateIpAddresses",
                        "ec2:UnassignPrivateIpAddresses",
                    ],
                    [f"arn:aws:ec2:{region}:{account}:*/*"],
                ),
                iam.allow(
                    ["logs:CreateLogStream", "logs:PutLogEvents"],
                    [pulumi.Output.concat(log_group.arn, ":*")],
                ),
            ),
            opts=child,
        )
        endpoint_url = self.endpoint.dns_entries.apply(
            lambda entries: f"https://{entries[0]['dns_name']}" if entries else ""
        )
        self.function = aws.lambda_.Function(
            f"{name}-function",
            description="Rotates the database's master password (Secrets Manager, single user)",
            runtime=RUNTIME,
            handler="rotation_function.lambda_handler",
            code=pulumi.FileArchive(os.path.relpath(package(), Path.cwd())),
            role=role.arn,
            timeout=60,
            memory_size=256,
            vpc_config=aws.lambda_.FunctionVpcConfigArgs(
                subnet_ids=list(args.subnet_ids),
                security_group_ids=[self.security_group.id],
            ),
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={"SECRETS_MANAGER_ENDPOINT": endpoint_url}
            ),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="Text", log_group=log_group.name
            ),
            # Lambda checks the role's network-interface permissions when it creates the
            # function; IAM is eventually consistent.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        self._permission = aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=self.function.name,
            principal="secretsmanager.amazonaws.com",
            # Only for this secret: no other secret's rotation can call it.
            source_arn=args.secret.secret.arn,
            source_account=account,
            opts=child,
        )
        self._name, self._args = name, args
        self.register_outputs(
            {
                "function_name": self.function.name,
                "endpoint_url": endpoint_url,
                "security_group_id": self.security_group.id,
            }
        )

    def schedule(self, depends_on: Sequence[pulumi.Resource]) -> aws.secretsmanager.SecretRotation:
        """Turns the rotation on: every `schedule_days` days, and once right away, which
        proves the whole path (network, permissions, password change) while whoever turned
        it on is watching. `depends_on`: the security-group rules the function needs."""
        secret = self._args.secret
        self.rotation = aws.secretsmanager.SecretRotation(
            self._name,
            secret_id=secret.secret.arn,
            rotation_lambda_arn=self.function.arn,
            rotation_rules=aws.secretsmanager.SecretRotationRotationRulesArgs(
                automatically_after_days=self._args.schedule_days
            ),
            rotate_immediately=True,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self._permission, secret.version, self.endpoint, *depends_on],
            ),
        )
        return self.rotation
