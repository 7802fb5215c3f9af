"""What the workloads reach outside the cluster, as the layers that own it hand it over:
the shards (address and credentials secret), MSK and its topics' ARNs, SES and the shared
secrets. The cluster layer builds these from the data and edge layers' results."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import pulumi

from components.firewall import SecurityGroup
from components.mail import Mail

DIRECTORY_DATABASE = "coldreach_directory"
"""The global directory (workspaces, keys, the id allocator, the bucket map) is its own
database on shard 1's instance (the phase-3 app's default)."""
SHARD_ONE_DATABASE = "coldreach_shard1"
"""Shard 1's data: a database of its own on the phase-2 instance, beside the phase-2
database, which `migrate-shards` reads as its source (a source cannot be a shard)."""

Instance = TypeVar("Instance")


def placements(
    instances: Sequence[Instance], own_database: Callable[[Instance], pulumi.Input[str]]
) -> dict[str, tuple[Instance, pulumi.Input[str]]]:
    """Where each database of the phase-3 app lives, by name ("shard-1", "directory",
    "shard-2", ...): its instance (shard 1's first) and database name. Shard 1 and the
    directory beside the phase-2 database (`migrate-shards` creates both), shards 2.. the
    database of their own instance. The pods' URLs and the per-database bootstrap tasks
    both come from here."""
    if not instances:
        return {}
    first = instances[0]
    found: dict[str, tuple[Instance, pulumi.Input[str]]] = {
        "shard-1": (first, SHARD_ONE_DATABASE),
        "directory": (first, DIRECTORY_DATABASE),
    }
    for number, instance in enumerate(instances[1:], start=2):
        found[f"shard-{number}"] = (instance, own_database(instance))
    return found


@dataclass(frozen=True)
class Shard:
    address: pulumi.Input[str]
    port: int
    database: pulumi.Input[str]
    secret_arn: pulumi.Input[str]
    """The JSON secret holding its `username` and `password`."""
    connect_arn: pulumi.Input[str] | None = None
    """`rds-db:connect` on this shard for `Access.iam_db_user`, when pods sign in with IAM."""


@dataclass(frozen=True)
class Kafka:
    cluster_arn: pulumi.Input[str]
    bootstrap_brokers: pulumi.Input[str]
    """The IAM-authenticated bootstrap string (TLS, port 9098)."""
    topic_arns: Mapping[str, pulumi.Input[str]]
    """Each topic's ARN by name, as MSK's topic API created it (components/kafka.py): the
    per-topic IAM grants name these, the send and dead-letter topics among them."""
    send_topic: str = "email.send.v1"
    dead_letter_topic: str = "email.send.dlq.v1"
    consumer_group: str = "sender"


@dataclass
class Access:
    shards: Sequence[Shard]
    """Shard 1 (the phase-2 primary) first."""
    groups: Mapping[str, SecurityGroup]
    """The security groups of the nodes outside the cluster that flows name: the edge and
    every data tier of the phase."""
    unsubscribe_secret_arn: pulumi.Input[str]
    public_url: pulumi.Input[str]
    kafka: Kafka | None = None
    mail: Mail | None = None
    extra_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Plain settings every app workload gets (region, ...)."""
    iam_db_user: str | None = None
    """The database role pods sign in as with RDS IAM tokens (`dbIamAuth` services/on):
    they are granted `rds-db:connect` for it and never read a shard's master secret. None:
    they read the shards' credentials secrets."""

    def reached_shards(self, endpoints: Sequence[str]) -> list[Shard]:
        """Every shard for a `shards` reach, else shard 1 (the directory, the primary)."""
        if not endpoints:
            return []
        return list(self.shards) if "shards" in endpoints else [self.shards[0]]
