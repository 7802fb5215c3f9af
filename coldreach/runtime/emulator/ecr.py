"""ECR, and the image pushed to it."""

from __future__ import annotations

import json

from coldreach.runtime.emulator.backend import MotoBackend, handles
from coldreach.runtime.emulator.call import Call, Outputs, UnsupportedResource, aws_tags, drop_none
from policies import tokens as t


@handles(t.ECR_REPOSITORY)
def repository(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    name = b.name(c)
    encryption = (c.get("encryptionConfigurations") or [{}])[0]
    repo = b.client("ecr").create_repository(
        **drop_none(
            {
                "repositoryName": name,
                "imageTagMutability": c.get("imageTagMutability"),
                "imageScanningConfiguration": (
                    {"scanOnPush": bool(c.get("imageScanningConfiguration")["scanOnPush"])}
                    if c.get("imageScanningConfiguration")
                    else None
                ),
                "encryptionConfiguration": (
                    drop_none(
                        {
                            "encryptionType": encryption.get("encryptionType"),
                            "kmsKey": encryption.get("kmsKey"),
                        }
                    )
                    if encryption
                    else None
                ),
                "tags": aws_tags(c.get("tags")) or None,
            }
        )
    )["repository"]
    return name, {
        "arn": repo["repositoryArn"],
        "registryId": repo["registryId"],
        "repositoryUrl": repo["repositoryUri"],
    }


@handles(t.ECR_LIFECYCLE)
def ecr_lifecycle(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    result = b.client("ecr").put_lifecycle_policy(
        repositoryName=c.get("repository"), lifecyclePolicyText=c.get("policy")
    )
    return c.get("repository"), {"registryId": result["registryId"]}


@handles(t.DOCKER_IMAGE)
def image(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    """Not built: a placeholder manifest is pushed under the program's tag, so the
    repository holds an image with that tag and the digest the services run."""
    tags = [str(t) for t in c.get("tags", [])]
    if not tags:
        raise UnsupportedResource(f"{c.type} without tags", c.name)
    repo_url, tag = tags[0].rsplit(":", 1)
    repository = repo_url.split("/", 1)[1]
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 0,
                "digest": "sha256:" + "0" * 64,
            },
            "layers": [],
            "annotations": {"coldreach.placeholder": f"{c.name}: not built offline"},
        }
    )
    ecr = b.client("ecr")
    image = ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=tag)
    digest = image["image"]["imageId"]["imageDigest"]
    ref = f"{repo_url}@{digest}"
    return ref, {"digest": digest, "ref": ref}
