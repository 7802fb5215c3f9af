"""Where the app's images live: one ECR repository and the image that goes into it."""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

# Images kept per repository; older tagged images and any untagged layer expire.
KEEP_IMAGES = 30
IMAGE_PLATFORM = docker_build.Platform.LINUX_AMD64
IMAGE_ARCHITECTURE = "x86_64"
"""What the app image runs on: ECS task definitions and EKS nodes must match it."""


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


# The tag hashes exactly the files a build sends (the context minus what its
# .dockerignore excludes, by Docker's matching rules), or a rebuild elsewhere would
# push new bytes under an old tag, which the immutable repository refuses.


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """One .dockerignore pattern, as Docker matches it against a context-relative path.

    Go's filepath.Match plus `**`: `*` and `?` never cross a `/`, `**` spans any
    number of directories (none included), and a pattern is anchored at the root of
    the context, so `__pycache__` excludes only the top-level one.
    """
    out, i = "^", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                out, i = out + "(?:.*/)?", i + 1
            else:
                out += ".*"
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out += re.escape(c)
            else:
                body = pattern[i + 1 : end]
                out += "[" + ("^" + body[1:] if body.startswith("^") else body) + "]"
                i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out + "$")


def ignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """(excludes, regex) per line of a .dockerignore, in order; comments and blanks skipped."""
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        excludes = not line.startswith("!")
        pattern = posixpath.normpath(line.lstrip("!").strip()).lstrip("/")
        rules.append((excludes, _pattern_regex(pattern)))
    return rules


def ignored(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker leaves `path` out: the last rule matching it or a parent decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for excludes, regex in rules:
        if any(regex.match(p) for p in prefixes):
            result = excludes
    return result


def context_files(context: Path) -> list[Path]:
    """The files a build of `context` sends, honouring its .dockerignore."""
    dockerignore = context / ".dockerignore"
    rules = ignore_rules(dockerignore.read_text()) if dockerignore.exists() else []
    return [
        path
        for path in sorted(context.rglob("*"))
        if path.is_file() and not ignored(path.relative_to(context).as_posix(), rules)
    ]


def source_hash(context: Path) -> str:
    """A short digest of the build context, used as the immutable image tag."""
    digest = hashlib.sha256()
    for path in context_files(context):
        digest.update(path.relative_to(context).as_posix().encode())
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
                platforms=[IMAGE_PLATFORM],
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
