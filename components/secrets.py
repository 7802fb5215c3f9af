"""Secrets the program generates itself and keeps in Secrets Manager."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random


@dataclass(frozen=True)
class StoredSecret:
    """A secret and the version that holds its value.

    Readers depend on the version, not just the secret: the secret exists
    (empty) long before its value when the value comes from a slow resource
    (an RDS or ElastiCache endpoint).
    """

    secret: aws.secretsmanager.Secret
    version: aws.secretsmanager.SecretVersion

    def ref(self, json_key: str | None = None) -> SecretRef:
        return SecretRef(self, json_key)


@dataclass(frozen=True)
class SecretRef:
    """One value a task reads from Secrets Manager: a whole secret, or one key of a JSON one."""

    stored: StoredSecret
    json_key: str | None = None

    @property
    def value_from(self) -> pulumi.Output[str]:
        """The ECS `valueFrom`: the ARN, or `<arn>:<json key>::` for one key."""
        key = self.json_key
        return self.stored.secret.arn.apply(lambda arn: f"{arn}:{key}::" if key else arn)


def stored_secret(
    name: str,
    description: str,
    value: pulumi.Input[str],
    protect: bool,
    parent: pulumi.Resource,
    rotated: bool = False,
) -> StoredSecret:
    """A Secrets Manager secret holding `value`; both resources are named `name`.

    Seven days of recovery instead of thirty: long enough to undo a mistake,
    short enough that a recreated stack can reuse its names within a week.
    `rotated`: a rotation owns the value after the first one, so the program never
    writes its own (stale) value over it again.
    """
    secret = aws.secretsmanager.Secret(
        name,
        description=description,
        recovery_window_in_days=7,
        opts=pulumi.ResourceOptions(parent=parent, protect=protect),
    )
    version = aws.secretsmanager.SecretVersion(
        name,
        secret_id=secret.id,
        secret_string=value,
        opts=pulumi.ResourceOptions(
            parent=parent, ignore_changes=["secretString"] if rotated else None
        ),
    )
    return StoredSecret(secret, version)


class GeneratedSecret(pulumi.ComponentResource):
    """A random value stored in Secrets Manager; only its ARN leaves the component.

    The value is in Pulumi state as a secret (encrypted), never in plain
    config, and reaches containers through ECS `secrets`.
    """

    stored: StoredSecret
    value: random.RandomPassword
    """For resources that need the value itself (an ElastiCache auth token); it stays secret."""

    def __init__(
        self,
        name: str,
        description: str,
        protect: bool,
        length: int = 48,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("coldreach:secrets:GeneratedSecret", name, None, opts)
        self.value = random.RandomPassword(
            f"{name}-value", length=length, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        self.stored = stored_secret(
            f"{name}-secret", description, self.value.result, protect, parent=self
        )
        self.register_outputs({"arn": self.arn})

    @property
    def arn(self) -> pulumi.Output[str]:
        return self.stored.secret.arn

    def ref(self) -> SecretRef:
        return self.stored.ref()
