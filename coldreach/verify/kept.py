"""Did every stateful resource survive a promotion with its identity and its data?

Before the update, `capture` reads each stateful resource of the deployment
through the APIs: what would change if it were replaced (RDS `DbiResourceId`
and creation time, a secret's ARN suffix and version, a repository's creation
time, a bucket's creation date) and, where the emulator holds data, the data
itself: the secret's value as the deployment wrote it, and the images in the
repository, among them one pushed before the promotion for the purpose.
`check_kept` reads them again afterwards; any difference is a FAIL naming the
resource. moto keeps no rows behind an RDS endpoint and nothing inside Redis,
and it ignores bucket-policy conditions, so the log bucket's deny-insecure-
transport statement refuses every object written there: for those three,
identity is what is compared.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coldreach.errors import UserError
from coldreach.runtime.model import Deployment, Resource
from coldreach.verify.aws import Aws
from coldreach.verify.findings import FAIL, Finding, verdict
from policies import tokens as t
from policies.resource_types import STATEFUL

MARKER_TAG = "written-before-promotion"


def _digest(value: object) -> str:
    return hashlib.sha256(str(value).encode()).hexdigest()[:16]


def _rds(aws: Aws, r: dict[str, Any]) -> dict[str, Any]:
    db = aws("rds").describe_db_instances(DBInstanceIdentifier=r["id"])["DBInstances"][0]
    return {
        "arn": db["DBInstanceArn"],
        "resource id": db.get("DbiResourceId"),
        "created": str(db.get("InstanceCreateTime")),
    }


def _redis(aws: Aws, r: dict[str, Any]) -> dict[str, Any]:
    group = aws("elasticache").describe_replication_groups(ReplicationGroupId=r["id"])
    found = group["ReplicationGroups"][0]
    return {"arn": found.get("ARN"), "members": sorted(found.get("MemberClusters", []))}


def _secret(aws: Aws, r: dict[str, Any]) -> dict[str, Any]:
    sm = aws("secretsmanager")
    described = sm.describe_secret(SecretId=r["id"])
    current = [
        v for v, stages in described.get("VersionIdsToStages", {}).items() if "AWSCURRENT" in stages
    ]
    value = sm.get_secret_value(SecretId=r["id"]).get("SecretString") if current else None
    return {
        "arn": described["ARN"],
        "created": str(described.get("CreatedDate")),
        "current version": current[0] if current else None,
        "value sha256": _digest(value) if value is not None else None,
    }


def _repository(aws: Aws, r: dict[str, Any]) -> dict[str, Any]:
    ecr = aws("ecr")
    repo = ecr.describe_repositories(repositoryNames=[r["id"]])["repositories"][0]
    images = ecr.list_images(repositoryName=r["id"]).get("imageIds", [])
    return {
        "arn": repo["repositoryArn"],
        "created": str(repo.get("createdAt")),
        "images": sorted({f"{i.get('imageTag', '')}@{i.get('imageDigest')}" for i in images}),
    }


def _bucket(aws: Aws, r: dict[str, Any]) -> dict[str, Any]:
    created = {b["Name"]: str(b.get("CreationDate")) for b in aws("s3").list_buckets()["Buckets"]}
    if r["id"] not in created:
        raise LookupError(f"bucket {r['id']} not found")
    return {"created": created[r["id"]]}


def _push_marker(aws: Aws, r: Resource) -> None:
    """An image pushed before the promotion, which must still be there after it."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 0,
            "digest": "sha256:" + "1" * 64,
        },
        "layers": [],
        "annotations": {"coldreach.marker": f"{r.urn} kept its images"},
    }
    aws("ecr").put_image(
        repositoryName=str(r.id), imageManifest=json.dumps(manifest), imageTag=MARKER_TAG
    )


READERS: dict[str, Callable[[Aws, dict[str, Any]], dict[str, Any]]] = {
    t.RDS_INSTANCE: _rds,
    t.REPLICATION_GROUP: _redis,
    t.SECRET: _secret,
    t.ECR_REPOSITORY: _repository,
    t.BUCKET: _bucket,
}
"""How each stateful type the emulator holds is read; the others are rendered, not deployed."""


def capture(deployment: Deployment, aws: Aws) -> dict[str, Any]:
    """Writes the data markers, then records every stateful resource as the APIs show it."""
    resources = []
    for r in sorted(deployment, key=lambda r: r.urn):
        if r.type not in STATEFUL or r.type not in READERS or not r.id:
            continue
        if r.type == t.ECR_REPOSITORY:
            _push_marker(aws, r)
        entry = {"urn": r.urn, "type": r.type, "name": r.name, "id": r.id}
        resources.append({**entry, "seen": READERS[r.type](aws, entry)})
    return {"stack": deployment.stack, "phase": deployment.output("phase"), "resources": resources}


def write(path: Path, baseline: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(baseline, indent=2, default=str) + "\n")


def read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except OSError as err:
        raise UserError(f"cannot read the baseline {path}: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not JSON: {err}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("resources"), list):
        raise UserError(f"{path}: not a baseline written by `local rehearse --baseline`")
    unknown = {e.get("type") for e in doc["resources"]} - set(READERS)
    if unknown:
        raise UserError(f"{path}: resource types verify cannot read: {sorted(map(str, unknown))}")
    return doc


def check_kept(baseline: dict[str, Any], aws: Aws) -> list[Finding]:
    """One row per stateful resource of the baseline: same identity, same data."""
    out: list[Finding] = []
    for entry in baseline["resources"]:
        label = f"{entry['name']} ({entry['id']})"
        check = f"kept.{entry['type'].split(':')[1].split('/')[0]}"
        try:
            now = READERS[entry["type"]](aws, entry)
        except Exception as error:  # a missing resource is what this check exists to report
            out.append(Finding(check, label, FAIL, f"gone: {type(error).__name__}: {error}"))
            continue
        differs = sorted(k for k, v in entry["seen"].items() if now.get(k) != v)
        out.append(
            verdict(
                check,
                label,
                not differs,
                "same " + ", ".join(entry["seen"]),
                "changed: "
                + ", ".join(f"{k} {entry['seen'][k]!r} -> {now.get(k)!r}" for k in differs),
            )
        )
    return out
