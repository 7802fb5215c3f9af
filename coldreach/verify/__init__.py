"""boto3 checks of a deployed stack's security and health (`coldreach verify`).

It starts from the stack outputs (`pulumi stack output --json`, or a file of
the same shape) and discovers the rest through the AWS APIs: the services'
security groups from ECS, the load balancer from the URL, the database
groups from RDS, every security group, RDS instance and Redis group in the
stack's VPC. Each check yields rows of (check, resource, result, detail);
one failed row makes the command exit 1.

Against an emulator (`--endpoint-url`), two checks read what the emulator can
report: ECS starts no containers there, so a service is at its desired count
when every desired task is accounted for as running or pending; and no target
is ever registered, so target health is skipped, not passed.

Modules: `outputs` (where the outputs come from), `aws` (clients), `discovery`
(what is deployed), one module of checks per concern (`rds`, with the master
secret's rotation, `redis`, `kafka` for MSK and the shards,
`network` for security groups and placement, `services` for ECS and the load
balancer's targets, `cluster` for EKS), `kept` (stateful resources unchanged by a
promotion, against a baseline recorded before it), `render` (the table).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coldreach.verify.aws import Aws
from coldreach.verify.cluster import check_cluster
from coldreach.verify.discovery import State, discover
from coldreach.verify.findings import Finding
from coldreach.verify.kafka import check_kafka, check_shards
from coldreach.verify.kept import check_kept
from coldreach.verify.network import check_security_groups
from coldreach.verify.rds import check_rds, check_rotation
from coldreach.verify.redis import check_redis
from coldreach.verify.services import check_services, check_targets

__all__ = ["Aws", "Finding", "verify"]

Check = Callable[[State, Aws], list[Finding]]
CHECKS: list[Check] = [
    lambda s, _a: check_rds(s),
    check_rotation,
    lambda s, _a: check_security_groups(s),
    lambda s, _a: check_redis(s),
    lambda s, _a: check_shards(s),
    check_kafka,
    check_services,
    check_targets,
    check_cluster,
]


def verify(
    outputs: dict[str, Any], aws: Aws, baseline: dict[str, Any] | None = None
) -> list[Finding]:
    """Runs every check against the deployment the outputs describe; with a baseline from
    before a promotion, also that every stateful resource kept its identity and data."""
    state = discover(aws, outputs)
    findings: list[Finding] = []
    for check in CHECKS:
        findings += check(state, aws)
    if baseline is not None:
        findings += check_kept(baseline, aws)
    return findings
