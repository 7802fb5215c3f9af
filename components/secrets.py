"""Secrets the program generates itself and keeps in Secrets Manager."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_random as random


def stored_secret(
    name: str,
    description: str,
    value: pulumi.Input[str],
    protect: bool,
    parent: pulumi.Resource,
) -> tuple[aws.secretsmanager.Secret, aws.secretsmanager.SecretVersion]:
    """A Secrets Manager secret holding `value`; both resources are named `name`.

    Returns the version too: a service that reads the secret at start must depend
    on the version, since the secret exists (empty) long before its value when
    the value comes from another slow resource (an RDS or ElastiCache endpoint).

    Seven days of recovery instead of thirty: long enough to undo a mistake,
    short enough that a recreated stack can reuse its names within a week.
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
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return secret, version


class GeneratedSecret(pulumi.ComponentResource):
    """A random value stored in Secrets Manager; only its ARN leaves the component.

    The value is in Pulumi state as a secret (encrypted), never in plain
    config, and reaches containers through ECS `secrets`.
    """

    secret: aws.secretsmanager.Secret
    version: aws.secretsmanager.SecretVersion
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
        self.secret, self.version = stored_secret(
            f"{name}-secret", description, self.value.result, protect, parent=self
        )
        self.register_outputs({"arn": self.secret.arn})

    @property
    def arn(self) -> pulumi.Output[str]:
        return self.secret.arn
