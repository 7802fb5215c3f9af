"""Where the app's images live: one ECR repository and the image that goes into it."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

# Images kept per repository; older tagged images and any untagged layer expire.
KEEP_IMAGES = 30


class Registry(pulumi.ComponentResource):
    """An ECR repository: scan on push, immutable tags, a lifecycle policy.

    Tags are immutable, so a tag names one image forever: deploys refer to a
    content hash, never to `latest`.
    """

    repository: aws.ecr.Repository

    def __init__(
        self, name: str, protect: bool, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("coldreach:registry:Registry", name, None, opts)
        self.repository = aws.ecr.Repository(
            f"{name}-repo",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                scan_on_push=True
            ),
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="AES256")
            ],
            force_delete=not protect,
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=self.repository.name,
            policy=json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": "Drop untagged layers after a week",
                            "selection": {
                                "tagStatus": "untagged",
                                "countType": "sinceImagePushed",
                                "countUnit": "days",
                                "countNumber": 7,
                            },
                            "action": {"type": "expire"},
                        },
                        {
                            "rulePriority": 2,
                            "description": f"Keep the newest {KEEP_IMAGES} images",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": KEEP_IMAGES,
                            },
                            "action": {"type": "expire"},
                        },
                    ]
                }
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs(
            {"repository_url": self.repository.repository_url, "arn": self.repository.arn}
        )


@dataclass
class AppImageArgs:
    registry: Registry
    context: Path
    """The directory with the app's Dockerfile."""
    image: str | None = None
    """A ready image reference; when set nothing is built."""


# What app/.dockerignore keeps out of the build context. The tag hashes exactly the
# context docker-build sends, or a rebuild would push new bytes under an old tag,
# which the immutable repository refuses.
IGNORED = frozenset({"__pycache__", ".venv", "var", ".pytest_cache"})
IGNORED_SUFFIXES = (".pyc",)


def source_hash(context: Path) -> str:
    """A short digest of the build context, used as the immutable image tag."""
    digest = hashlib.sha256()
    for path in sorted(context.rglob("*")):
        parts = set(path.relative_to(context).parts)
        if path.is_file() and not parts & IGNORED and not path.name.endswith(IGNORED_SUFFIXES):
            digest.update(str(path.relative_to(context)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class AppImage(pulumi.ComponentResource):
    """The app's container image: built from `app/` and pushed to the registry, or given.

    `ref` is what task definitions use: for a build it is pinned by digest, so
    a deploy always runs exactly the image that was pushed.
    """

    ref: pulumi.Output[str]

    def __init__(
        self, name: str, args: AppImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("coldreach:registry:AppImage", name, None, opts)
        if args.image is not None:
            self.ref = pulumi.Output.from_input(args.image)
        else:
            repo = args.registry.repository
            auth = aws.ecr.get_authorization_token_output(
                registry_id=repo.registry_id, opts=pulumi.InvokeOptions(parent=self)
            )
            tag = source_hash(args.context)
            # Relative to where the program runs: an absolute path would differ
            # between checkouts, and docker-build rebuilds (and pushes under the same
            # tag, refused by the immutable repository) whenever its inputs differ.
            context = Path(os.path.relpath(args.context))
            image = docker_build.Image(
                f"{name}-build",
                context=docker_build.BuildContextArgs(location=str(context)),
                dockerfile=docker_build.DockerfileArgs(location=str(context / "Dockerfile")),
                platforms=[docker_build.Platform.LINUX_AMD64],
                push=True,
                tags=[repo.repository_url.apply(lambda url: f"{url}:{tag}")],
                registries=[
                    docker_build.RegistryArgs(
                        address=repo.repository_url,
                        username=auth.user_name,
                        password=auth.password,
                    )
                ],
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.ref = image.ref
        self.register_outputs({"ref": self.ref})
