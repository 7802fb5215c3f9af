"""Secrets the program generates itself and keeps in Secrets Manager."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_random as random


class GeneratedSecret(pulumi.ComponentResource):
    """A random value stored in Secrets Manager; only its ARN leaves the component.

    The value is in Pulumi state as a secret (encrypted), never in plain
    config, and reaches containers through ECS `secrets`.
    """

    secret: aws.secretsmanager.Secret
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
        self.secret = aws.secretsmanager.Secret(
            f"{name}-secret",
            description=description,
            recovery_window_in_days=7,
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-version",
            secret_id=self.secret.id,
            secret_string=self.value.result,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"arn": self.secret.arn})

    @property
    def arn(self) -> pulumi.Output[str]:
        return self.secret.arn
