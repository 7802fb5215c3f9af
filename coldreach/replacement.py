"""Which input changes make AWS replace a resource (a new one, the old one deleted).

Curated from the terraform-provider-aws schemas that pulumi-aws bridges
(`ForceNew` arguments); ../shared/research/iac_style.md lists the sources. A
stateful resource must never see a change to one of these in a promotion.
"""

from __future__ import annotations

from dataclasses import dataclass

from coldreach.runtime.model import Deployment, Resource, reveal

REPLACEMENT_INPUTS: dict[str, tuple[str, ...]] = {
    "aws:rds/instance:Instance": (
        "identifier",
        "identifierPrefix",
        "engine",
        "username",
        "dbName",
        "storageEncrypted",
        "kmsKeyId",
        "availabilityZone",
        "characterSetName",
        "timezone",
        "snapshotIdentifier",
        "replicateSourceDb",
    ),
    "aws:elasticache/replicationGroup:ReplicationGroup": (
        "replicationGroupId",
        "subnetGroupName",
        "port",
        "atRestEncryptionEnabled",
        "kmsKeyId",
        "networkType",
        "dataTieringEnabled",
        "snapshotArns",
        "snapshotName",
    ),
    "aws:ecr/repository:Repository": ("name",),
    "aws:s3/bucket:Bucket": ("bucket", "bucketPrefix"),
    "aws:secretsmanager/secret:Secret": ("name", "namePrefix"),
    "aws:msk/cluster:Cluster": ("clusterName", "kafkaVersion", "encryptionInfo"),
    "aws:eks/cluster:Cluster": ("name", "encryptionConfig"),
}


@dataclass(frozen=True)
class Change:
    urn: str
    type: str
    kind: str
    """`delete` (gone from the target), `replace` (a replacement-forcing input changed)."""
    inputs: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "delete":
            return f"{self.urn} would be deleted"
        return f"{self.urn} would be replaced: {', '.join(self.inputs)} changed"


def _value(r: Resource, key: str) -> object:
    # Autonamed names are outputs: the engine keeps them for as long as the URN lives.
    if key in r.inputs:
        return reveal(r.inputs[key])
    return reveal(r.outputs.get(key))


def forced_replacements(before: Resource, after: Resource) -> tuple[str, ...]:
    keys = REPLACEMENT_INPUTS.get(before.type, ())
    return tuple(k for k in keys if _value(before, k) != _value(after, k))


def destructive_changes(current: Deployment, target: Deployment) -> list[Change]:
    """Every resource of `current` that `target` would delete or replace."""
    after = {r.urn: r for r in target}
    changes: list[Change] = []
    for r in current:
        other = after.get(r.urn)
        if other is None:
            changes.append(Change(r.urn, r.type, "delete"))
            continue
        if other.type != r.type:
            changes.append(Change(r.urn, r.type, "replace", ("type",)))
            continue
        forced = forced_replacements(r, other)
        if forced:
            changes.append(Change(r.urn, r.type, "replace", forced))
    return changes
