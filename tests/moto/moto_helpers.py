"""Deploying the program into in-process moto and reading verify's findings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto import mock_aws

from coldreach import verify
from coldreach.evaluation import evaluate_stack
from coldreach.runtime import Deployment
from coldreach.runtime.emulator import MotoBackend
from coldreach.runtime.model import reveal

REGION = "us-east-1"
# Everything optional switched on: SES/SNS mail and an HTTPS listener.
EVERYTHING = {
    "cold-reach:senderDomain": "mail.example.com",
    "cold-reach:certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc-123",
}


@dataclass
class Deployed:
    """One stack deployed into moto, with boto3 clients on the same mocked account."""

    deployment: Deployment
    backend: MotoBackend
    aws: verify.Aws = field(default_factory=lambda: verify.Aws(REGION, emulator=True))
    """Clients reused by every check of the module (creating them dominates a check)."""

    @property
    def outputs(self) -> dict[str, Any]:
        return reveal(self.deployment.outputs)

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)  # pyright: ignore

    def verify(self) -> list[verify.Finding]:
        return verify.verify(self.outputs, self.aws)

    def group_id(self, logical_name: str) -> str:
        """The moto id of the security group the program declared as `logical_name`."""
        return str(self.deployment.named(logical_name).id)


@contextmanager
def deployed(
    stack: str, phase: int | None = None, overrides: dict[str, str] | None = None
) -> Iterator[Deployed]:
    """The stack deployed into a fresh in-process moto account for the block's duration;
    botocore is patched only inside it."""
    with mock_aws():
        backend = MotoBackend(REGION)
        deployment = evaluate_stack(stack, phase, backend=backend, overrides=overrides)
        yield Deployed(deployment, backend)


def failures(findings: list[verify.Finding], check: str | None = None) -> list[verify.Finding]:
    return [f for f in findings if f.failed and (check is None or f.check == check)]


def describe(findings: list[verify.Finding]) -> str:
    return "\n".join(f"{f.check} {f.resource} {f.result} {f.detail}" for f in findings)
