"""PostgreSQL on RDS: private, encrypted, TLS-only, backed up, protected from deletion."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.firewall import SecurityGroup
from components.secrets import SecretRef, StoredSecret, stored_secret

PORT = 5432
ENGINE = "postgres"
# RDS refuses '/', '@', '"' and spaces in the master password.
PASSWORD_SPECIALS = "!#$%&*()-_=+[]{}<>:?"


@dataclass
class DatabaseArgs:
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets only: the instance must never be reachable from the internet."""
    instance_class: str
    engine_version: str
    allocated_storage_gb: int
    max_allocated_storage_gb: int
    backup_retention_days: int
    multi_az: bool
    protect: bool
    """False only for throwaway stacks: no protect, no deletion protection, no final snapshot."""
    replica_instance_class: str | None = None
    """Adds a read replica of this class (phase 2); None for no replica."""
    db_name: str = "coldreach"
    username: str = "coldreach_admin"
    security_group_tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags on the security group (the topology node it is, whom it admits)."""
    security_group: SecurityGroup | None = None
    """Sit behind this existing group instead of one of its own (a further shard behind the
    database tier's one group); None creates the group."""


class Database(pulumi.ComponentResource):
    """An RDS PostgreSQL 16 primary whose credentials live in Secrets Manager.

    The master password is generated here (pulumi_random) rather than managed
    by RDS: AWS does not allow a read replica of an instance whose master
    password RDS manages, and phase 2 adds one. Nothing gets in until a caller
    opens the security group to another group (`firewall.connect`).
    """

    instance: aws.rds.Instance
    replica: aws.rds.Instance | None
    security_group: SecurityGroup
    credentials: StoredSecret

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("coldreach:database:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect)
        self._args = args

        self.subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets",
            subnet_ids=list(args.subnet_ids),
            description=f"{name}: private subnets",
            opts=child,
        )
        major = args.engine_version.split(".")[0]
        self.parameter_group = aws.rds.ParameterGroup(
            f"{name}-params",
            family=f"postgres{major}",
            description=f"{name}: TLS only, slow statements logged",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1"),
                aws.rds.ParameterGroupParameterArgs(name="log_min_duration_statement", value="500"),
            ],
            opts=child,
        )
        self.security_group = args.security_group or SecurityGroup(
            f"{name}-sg",
            f"{name}: PostgreSQL, reachable only from the app",
            args.vpc_id,
            self,
            args.security_group_tags,
        )
        password = random.RandomPassword(
            f"{name}-password",
            length=32,
            special=True,
            override_special=PASSWORD_SPECIALS,
            opts=child,
        )
        # Part of the final snapshot's name, so a replaced instance could never
        # collide with the snapshot its predecessor left behind.
        suffix = random.RandomId(f"{name}-snapshot-suffix", byte_length=4, opts=child)

        self.instance = aws.rds.Instance(
            f"{name}-instance",
            engine=ENGINE,
            engine_version=args.engine_version,
            instance_class=args.instance_class,
            allocated_storage=args.allocated_storage_gb,
            db_name=args.db_name,
            username=args.username,
            password=password.result,
            port=PORT,
            db_subnet_group_name=self.subnet_group.name,
            multi_az=args.multi_az,
            backup_window="03:00-04:00",
            maintenance_window="sun:04:30-sun:05:30",
            skip_final_snapshot=not args.protect,
            final_snapshot_identifier=suffix.hex.apply(lambda h: f"{name}-final-{h}"),
            tags={"Name": f"{name}-primary"},
            # The password is set at creation; from then on Secrets Manager's rotation
            # owns it, and a `pulumi up` must never set the generated one back.
            opts=pulumi.ResourceOptions.merge(
                stateful, pulumi.ResourceOptions(ignore_changes=["password"])
            ),
            **self._hardening(args),
        )

        # One JSON secret per instance; ECS injects single keys of it
        # (`<arn>:password::`) so the password never appears in a task definition.
        credentials = {
            "engine": ENGINE,
            "host": self.instance.address,
            "port": PORT,
            "dbname": args.db_name,
            "username": args.username,
            "password": password.result,
        }
        self.credentials = stored_secret(
            f"{name}-credentials",
            f"{name}: master credentials and endpoint of the primary",
            pulumi.Output.json_dumps(credentials),
            args.protect,
            parent=self,
            # Once a rotation has run (cold-reach:dbIamAuth on, now or before), the
            # secret holds the live password and this generated value is stale.
            rotated=True,
        )

        self.replica = (
            self._replica(name, args, args.replica_instance_class)
            if args.replica_instance_class
            else None
        )

        self.register_outputs(
            {
                "address": self.instance.address,
                "replica_address": self.replica.address if self.replica else None,
                "port": PORT,
                "identifier": self.instance.identifier,
                "secret_arn": self.secret_arn,
                "security_group_id": self.security_group.id,
            }
        )

    def _replica(self, name: str, args: DatabaseArgs, instance_class: str) -> aws.rds.Instance:
        """A same-region read replica: engine, credentials, storage encryption and subnet
        group come from the primary; the protections are set again because a replica
        does not inherit them."""
        return aws.rds.Instance(
            f"{name}-replica",
            replicate_source_db=self.instance.identifier,
            instance_class=instance_class,
            multi_az=False,
            # RDS takes no final snapshot of a replica; its data lives in the primary.
            skip_final_snapshot=True,
            tags={"Name": f"{name}-replica"},
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
            **self._hardening(args),
        )

    def _hardening(self, args: DatabaseArgs) -> dict[str, Any]:
        """What the primary and its replica share: private, encrypted, TLS-only, backed
        up, deletion protected, observable."""
        return {
            "storage_type": "gp3",
            "storage_encrypted": True,
            "max_allocated_storage": args.max_allocated_storage_gb,
            "vpc_security_group_ids": [self.security_group.id],
            "parameter_group_name": self.parameter_group.name,
            "publicly_accessible": False,
            "backup_retention_period": args.backup_retention_days,
            "deletion_protection": args.protect,
            "copy_tags_to_snapshot": True,
            "performance_insights_enabled": True,
            "performance_insights_retention_period": 7,
            # iam-db-auth-error: why an IAM token was refused (the only place RDS says).
            "enabled_cloudwatch_logs_exports": ["postgresql", "upgrade", "iam-db-auth-error"],
            "iam_database_authentication_enabled": True,
            "auto_minor_version_upgrade": True,
            "ca_cert_identifier": "rds-ca-rsa2048-g1",
        }

    @property
    def address(self) -> pulumi.Output[str]:
        return self.instance.address

    @property
    def name(self) -> str:
        return self._args.db_name

    @property
    def secret_arn(self) -> pulumi.Output[str]:
        return self.credentials.secret.arn

    def connect_arn(self, user: str, endpoint: str = "primary") -> pulumi.Output[str]:
        """What `rds-db:connect` names for one database user on one instance:
        `arn:aws:rds-db:<region>:<account>:dbuser:<DbiResourceId>/<user>`. The replica has
        a resource id of its own, so a token for the primary does not open it."""
        instance = self.replica if endpoint == "replica" else self.instance
        if instance is None:
            raise ValueError(f"{endpoint}: this database has no such endpoint")

        def arn(values: list[str]) -> str:
            instance_arn, resource_id = values
            _, partition, _, region, account = instance_arn.split(":")[:5]
            return f"arn:{partition}:rds-db:{region}:{account}:dbuser:{resource_id}/{user}"

        return pulumi.Output.all(instance.arn, instance.resource_id).apply(arn)

    def credential(self, key: str) -> SecretRef:
        """One key of the credentials secret (`username`, `password`, ...), for ECS."""
        return self.credentials.ref(key)
