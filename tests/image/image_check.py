"""Builds app/Dockerfile and runs the image the way ECS on Fargate and EKS run it.

    python tests/image/image_check.py [--stack staging] [--phase N ...]

One build, then each `--phase` (default: the stack file's) against it; `make
image-check` runs phases 2 and 3 of staging.

Phases 1-2, the ECS task definitions:

Each task definition of the offline plan (`coldreach plan --json`) runs with its
own command, environment and user, on a read-only root filesystem, with an empty
volume at /tmp that is root-owned 0755 unless the image declares `VOLUME /tmp`,
in which case the image's /tmp is copied in with its ownership and mode (the AWS
"bind mounts" page for Fargate). Pointed at a throwaway database on the local
PostgreSQL, the one-off tasks run to completion first (`bootstrap` creates the
database roles, `migrate` must bring the schema to head; without them, the web task
with the migrate command stands in), then the web task must answer /healthz and
/readyz, and the worker's own health command must pass. A task that signs in with an
RDS IAM token signs in here as the same database user without one: the local
PostgreSQL trusts local connections and has no TLS, which a token requires.

Phase 3, the Kubernetes Deployments that run the app image (`api`, `clients`,
`campaigns`, `sender`; Jaeger's runs another image): each container starts with its own
args (`command` would replace the ENTRYPOINT), as runAsUser:runAsGroup, on a read-only
root, with each emptyDir the pod mounts as the kubelet makes it (empty, mode 0777 plus
the fsGroup's setgid, group fsGroup, sizeLimit as the tmpfs size; nothing copied from the
image), and the pod's environment with these substitutions, each forced by what is not
here:
- DB_SHARD_n and DB_DIRECTORY: throwaway databases on the local PostgreSQL (two shards
  and a directory), signed in as the URL's user or `postgres`; DB_HOST/DB_PORT/DB_NAME
  (shard 1, not read with shards) point at shard 1 too.
- every *_SECRET_ARN: dropped, as Secrets Manager is not here: the local PostgreSQL
  trusts local connections, and UNSUBSCRIBE_SECRET_ARN becomes UNSUBSCRIBE_SECRET with
  a random value.
- DB_IAM_AUTH=1: 0, the same user without a token (as in phase 2).
- KAFKA_BOOTSTRAP_SERVERS: librdkafka's mock cluster (3 brokers), started by this
  process on loopback; KAFKA_AUTH iam -> none (plaintext, the mock has no IAM). Topics
  are auto-created by the mock (KAFKA_CREATE_TOPICS=0 stays).
- MAILER ses -> console (no SES).
- OTEL_EXPORTER_OTLP_ENDPOINT: dropped, so no spans are exported (no Jaeger here).
- ports: every pod here shares this machine's network, so each listening workload's
  container port moves to a free loopback port, in PORT/GRPC_PORT, in its args
  (`--port 8000`) and in its probe; peers' `dns:///<name>.<ns>.svc.cluster.local:<port>`
  become `dns:///127.0.0.1:<that workload's port>`; PUBLIC_BASE_URL is the edge's.
Any value still naming an AWS endpoint, an ARN or a cluster DNS name fails the check.
The schema is made as the promotion to phase 3 makes it (docs/promotion-3.md): the
phase-2 database gets its one-off tasks (bootstrap, migrate) from the plan's ECS task
definitions, then `coldreach-app migrate-shards`, run in the image, copies it onto the
shards, creating shard 1 and the directory, and migrates both shards and the directory
(the pods keep AUTO_MIGRATE off). The bootstrap task of each database migrate-shards made
(`bootstrap-shard-<n>`, `bootstrap-directory`) then runs on it, and the app's role must be
able to connect to it and write its tables. Then the pods start, services before their callers:
each must pass its readiness probe as the kubelet runs it (gRPC: grpc.health.v1 Check on
the probe's port and service; HTTP: GET on its path, and /readyz; exec: the command
beside it) and, when it listens, the image's own HEALTHCHECK command inside it. Last, a
key from `coldreach-app create-key` in the image (on the directory), then POST /clients,
/tasks and /email/send through the edge, until the email is `sent` by the sender: edge
-> gRPC -> Kafka -> sender, inside the image as the pods run it.

Docker builds the image when an engine answers; otherwise buildah (chroot
isolation) builds it on a Debian base made by mmdebstrap, cached under
var/image-check/. Either way the image's root is run without an engine:
`unshare -m`, a read-only bind mount of the root, a tmpfs at /tmp, `chroot
--userspec`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
CACHE = ROOT / "var" / "image-check"
IMAGE = "localhost/coldreach-app:image-check"
TASK_TYPE = "aws:ecs/taskDefinition:TaskDefinition"
MIGRATE_COMMAND = ("python", "-m", "openapi_server.migrate")
# The base stands in for python:3.11-slim-bookworm: the same Debian release and
# Python minor version, with what the Dockerfile runs (venv, groupadd, useradd).
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3", "passwd")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
READY_TIMEOUT_S = 90.0


@dataclass
class ImageConfig:
    """The parts of an OCI image config that decide how a container starts."""

    env: dict[str, str]
    cmd: list[str]
    entrypoint: list[str]
    workdir: str
    volumes: set[str]
    healthcheck: list[str] | None = None
    """HEALTHCHECK's command (Docker format only; OCI configs have none)."""

    @classmethod
    def from_oci(cls, config: Mapping[str, Any]) -> ImageConfig:
        test = (config.get("Healthcheck") or {}).get("Test") or []
        return cls(
            env=dict(e.split("=", 1) for e in config.get("Env") or []),
            cmd=list(config.get("Cmd") or []),
            entrypoint=list(config.get("Entrypoint") or []),
            workdir=config.get("WorkingDir") or "/",
            volumes=set(config.get("Volumes") or {}),
            healthcheck=list(test[1:]) if test[:1] == ["CMD"] else None,
        )


@dataclass(frozen=True)
class Mount:
    """A writable volume on the read-only root: a tmpfs at `path`, the image's content of
    `path` copied in when `copy`."""

    path: str
    options: str
    copy: bool = False


@dataclass
class Task:
    """One container of a task definition as ECS would start it, or of a Deployment's pod
    as the kubelet would (`workloads_from_plan`)."""

    name: str
    user: str
    command: list[str] | None
    environment: dict[str, str]
    secrets: list[str]
    health_command: list[str] | None
    tmp_volume: bool
    read_only_root: bool
    port: int | None = None
    entrypoint: list[str] | None = None
    """A pod's `command` (replaces the image's ENTRYPOINT); ECS task definitions have none."""
    empty_dirs: list[Mount] | None = None
    """A pod's emptyDir volumes; None: ECS's /tmp volume (see `Sandbox.mounts`)."""
    probe: dict[str, Any] | None = None
    """A pod's readiness probe, as the kubelet runs it."""

    @property
    def one_off(self) -> bool:
        """Run by an operator to completion (`aws ecs run-task`), not kept up by a service."""
        return self.port is None and self.health_command is None and self.command is not None


def tasks_from_plan(plan: Mapping[str, Any]) -> list[Task]:
    """The app container of every task definition in `plan --json` output."""
    found: list[Task] = []
    for resource in plan["resources"]:
        if resource["type"] != TASK_TYPE:
            continue
        inputs = resource["inputs"]
        volumes = {v["name"] for v in inputs.get("volumes", [])}
        for container in json.loads(inputs["containerDefinitions"]):
            mounts = container.get("mountPoints", [])
            health = container.get("healthCheck", {}).get("command")
            ports = container.get("portMappings", [])
            found.append(
                Task(
                    name=resource["name"],
                    user=container["user"],
                    command=container.get("command"),
                    environment={e["name"]: e["value"] for e in container.get("environment", [])},
                    secrets=[s["name"] for s in container.get("secrets", [])],
                    health_command=health[1:] if health and health[0] == "CMD" else None,
                    tmp_volume=any(
                        m["containerPath"] == "/tmp" and m["sourceVolume"] in volumes
                        for m in mounts
                    ),
                    read_only_root=bool(container.get("readonlyRootFilesystem")),
                    port=ports[0]["containerPort"] if ports else None,
                )
            )
    return found


def run(cmd: Sequence[str], **kwargs: Any) -> str:
    return subprocess.run(list(cmd), check=True, text=True, stdout=subprocess.PIPE, **kwargs).stdout


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


# ---- building -------------------------------------------------------------------------


def ca_bundle() -> Path:
    return Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")


def base_key() -> str:
    """What makes the base: the release, the packages and the CA bundle pip trusts."""
    digest = hashlib.sha256(json.dumps([SUITE, BASE_PACKAGES, PATH]).encode())
    digest.update(ca_bundle().read_bytes())
    return digest.hexdigest()[:16]


def buildah_base() -> str:
    key = base_key()
    name = f"localhost/coldreach-image-check-base:{key}"
    if (
        subprocess.run(
            ["buildah", "inspect", "--type", "image", name], capture_output=True
        ).returncode
        == 0
    ):
        return name
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CACHE / f"base-{key}.tar"
    if not tarball.exists():
        print(f"image-check: mmdebstrap {SUITE} base ({key})", flush=True)
        partial = tarball.with_suffix(".partial.tar")
        run(
            [
                "mmdebstrap", "--quiet", "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                "--aptopt=APT::Install-Recommends false",
                "--dpkgopt=path-exclude=/usr/share/{doc,man,locale}/*",
                SUITE, str(partial),
            ]
        )  # fmt: skip
        partial.rename(tarball)
    container = run(["buildah", "from", "scratch"]).strip()
    try:
        run(["buildah", "add", "--quiet", container, str(tarball), "/"])
        # pip inside the build trusts exactly the CA bundle this machine trusts.
        bundle = "/etc/ssl/certs/ca-certificates.crt"
        run(["buildah", "copy", "--quiet", container, str(ca_bundle()), bundle])
        run(
            [
                "buildah", "config",
                "--env", f"PATH={PATH}", "--env", f"SSL_CERT_FILE={bundle}",
                "--env", f"PIP_CERT={bundle}", "--cmd", "python3", container,
            ]
        )  # fmt: skip
        run(["buildah", "commit", "--quiet", container, name])
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True)
    return name


def build() -> tuple[str, str]:
    """Builds the image; returns the tool used and the image name."""
    if docker_available():
        run(["docker", "build", "--quiet", "-t", IMAGE, "-f", str(APP / "Dockerfile"), str(APP)])
        return "docker", IMAGE
    base = buildah_base()
    run(
        [
            # Docker format keeps the HEALTHCHECK, as the deployed image has it.
            "buildah", "bud", "--quiet", "--isolation", "chroot", "--layers", "--format", "docker",
            "--build-arg", f"PYTHON_IMAGE={base}",
            "-t", IMAGE, "-f", str(APP / "Dockerfile"), str(APP),
        ]
    )  # fmt: skip
    return "buildah", IMAGE


@contextmanager
def image_root(tool: str, image: str) -> Iterator[tuple[Path, ImageConfig, int]]:
    """The image's root filesystem on this machine, its config and its size in bytes."""
    if tool == "docker":
        info = json.loads(run(["docker", "image", "inspect", image]))[0]
        container = run(["docker", "create", image]).strip()
        root = Path(tempfile.mkdtemp(prefix="image-check-root-"))
        try:
            export = subprocess.Popen(["docker", "export", container], stdout=subprocess.PIPE)
            run(["tar", "-x", "--numeric-owner", "-C", str(root)], stdin=export.stdout)
            export.wait()
            yield root, ImageConfig.from_oci(info["Config"]), int(info["Size"])
        finally:
            subprocess.run(["docker", "rm", container], capture_output=True)
            shutil.rmtree(root, ignore_errors=True)
        return
    info = json.loads(run(["buildah", "inspect", "--type", "image", image]))
    size = sum(int(layer["size"]) for layer in json.loads(info["Manifest"])["layers"])
    container = run(["buildah", "from", "--pull-never", image]).strip()
    try:
        root = Path(run(["buildah", "mount", container]).strip())
        # The OCI config has no HEALTHCHECK; the Docker one (--format docker) keeps it.
        docker = (info.get("Docker") or {}).get("config") or {}
        config = {**info["OCIv1"]["config"], "Healthcheck": docker.get("Healthcheck")}
        yield root, ImageConfig.from_oci(config), size
    finally:
        subprocess.run(["buildah", "umount", container], capture_output=True)
        subprocess.run(["buildah", "rm", container], capture_output=True)


# ---- running as ECS runs a task --------------------------------------------------------

# Runs inside a private mount namespace: $1 the image root, $2 the number of volumes, then
# per volume its path, tmpfs options, 1 to copy the image's content in, and a staging
# directory; the rest is `chroot` arguments.
SANDBOX = r"""
set -eu
root=$1 n=$2; shift 2
mount --make-rprivate /
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
while [ "$n" -gt 0 ]; do
  path=$1 options=$2 copy=$3 stage=$4; shift 4
  mount -t tmpfs -o "$options" tmpfs "$stage"
  if [ "$copy" = 1 ]; then cp -a "$root$path/." "$stage/"; fi
  mount --bind "$stage" "$root$path"
  n=$((n - 1))
done
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
exec chroot "$@"
"""


class Sandbox:
    """One task's container: a process in its own mount namespace, chrooted into the image."""

    def __init__(self, root: Path, config: ImageConfig, task: Task, env: Mapping[str, str]):
        self.root, self.config, self.task, self.env = root, config, task, env
        self.stages: list[Path] = []
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed by stop)
        self.process: subprocess.Popen[str] | None = None

    def argv(self, command: Sequence[str]) -> list[str]:
        """`chroot` arguments: the task's user, a clean environment, the image's workdir."""
        env = [f"{k}={v}" for k, v in sorted(self.env.items())]
        return [
            f"--userspec={self.task.user}", str(self.root),
            "/usr/bin/env", "-i", f"--chdir={self.config.workdir}", *env, *command,
        ]  # fmt: skip

    def command(self) -> list[str]:
        """ECS: `command` replaces CMD. Kubernetes: `args` replaces CMD, and `command`
        replaces ENTRYPOINT and, without `args`, CMD too."""
        task = self.task
        if task.entrypoint is not None:
            return [*task.entrypoint, *(task.command or [])]
        return [*self.config.entrypoint, *(task.command or self.config.cmd)]

    def mounts(self) -> list[Mount]:
        """ECS's /tmp volume is root-owned 0755 and empty unless the image declares `VOLUME
        /tmp` (then the image's /tmp is copied in); a pod's are its emptyDirs."""
        if self.task.empty_dirs is not None:
            return self.task.empty_dirs
        declared = "/tmp" in self.config.volumes
        return [Mount("/tmp", "mode=0755,uid=0,gid=0,size=256m", declared)]

    def start(self, command: Sequence[str] | None = None) -> subprocess.Popen[str]:
        if not (self.task.tmp_volume and self.task.read_only_root):
            raise SystemExit(f"{self.task.name}: expected a read-only root and a /tmp volume")
        volumes: list[str] = []
        for mount in self.mounts():
            stage = Path(tempfile.mkdtemp(prefix="image-check-vol-"))
            self.stages.append(stage)
            volumes += [mount.path, mount.options, "1" if mount.copy else "0", str(stage)]
        self.process = subprocess.Popen(
            ["unshare", "-m", "sh", "-c", SANDBOX, "sandbox", str(self.root),
             str(len(self.stages)), *volumes, *self.argv(command or self.command())],
            stdout=self.log, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        return self.process

    def exec(self, command: Sequence[str]) -> int:
        """Runs `command` beside the task, in its namespace (as the ECS health check does)."""
        assert self.process is not None
        return subprocess.run(
            ["nsenter", "-t", str(self.process.pid), "-m", "chroot", *self.argv(command)],
            capture_output=True,
        ).returncode

    def output(self, limit: int = 4000) -> str:
        self.log.seek(0)
        return self.log.read()[-limit:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        for stage in self.stages:
            shutil.rmtree(stage, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False


def wait_for(check: Callable[[], bool], sandbox: Sandbox, what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if check():
            return
        if sandbox.process is not None and sandbox.process.poll() is not None:
            break
        time.sleep(1)
    raise CheckFailed(f"{sandbox.task.name}: {what} never passed\n{sandbox.output()}")


class CheckFailed(Exception):
    pass


def probe(sandbox: Sandbox, port: int) -> list[str]:
    """What ECS and the load balancer would probe: the HTTP health paths, the health command."""
    task, passed = sandbox.task, []
    if task.port is not None:
        for path in ("/healthz", "/readyz"):
            url = f"http://127.0.0.1:{port}{path}"
            wait_for(lambda url=url: http_ok(url), sandbox, f"GET {path}")
            passed.append(f"{task.name}: GET {path} 200")
    if task.health_command is not None:
        health = task.health_command
        wait_for(lambda: sandbox.exec(health) == 0, sandbox, "health command")
        passed.append(f"{task.name}: health command {' '.join(health)} passes")
    if not passed:
        raise CheckFailed(f"{task.name}: nothing probes this task")
    return passed


@dataclass
class LocalServices:
    """What replaces the stack's data tier and secrets: local PostgreSQL and Redis."""

    database: str
    port: int
    queue: str
    token: str

    def environment(self, task: Task) -> dict[str, str]:
        local = {
            "DB_HOST": "127.0.0.1",
            "DB_READ_HOST": "127.0.0.1",
            "DB_PORT": "5432",
            "DB_NAME": self.database,
            "PORT": str(self.port),
            "CELERY_QUEUE": self.queue,
        }
        secret_values = {
            "DB_USER": "postgres",
            "DB_PASSWORD": "",
            "UNSUBSCRIBE_SECRET": self.token,
            "REDIS_URL": "redis://127.0.0.1:6379/0",
        }
        missing = [s for s in task.secrets if s not in secret_values]
        if missing:
            raise CheckFailed(f"{task.name}: no local value for the secrets {missing}")
        env = {**task.environment, **{s: secret_values[s] for s in task.secrets}}
        env.update({k: v for k, v in local.items() if k in env or k == "CELERY_QUEUE"})
        if env.get("DB_IAM_AUTH") == "1":
            env["DB_IAM_AUTH"] = "0"  # same user, no token (see the module's docstring)
        return env


@contextmanager
def throwaway_database() -> Iterator[str]:
    name = f"image_check_{secrets.token_hex(6)}"
    psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c"]
    run([*psql, f"CREATE DATABASE {name}"])
    try:
        yield name
    finally:
        subprocess.run([*psql, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=False)


def check_tasks(root: Path, config: ImageConfig, tasks: list[Task]) -> list[str]:
    by_name = {t.name: t for t in tasks}
    web = by_name.get("web-task")
    if web is None:
        raise CheckFailed("the plan renders no web task definition")
    results: list[str] = []
    with throwaway_database() as database:
        local = LocalServices(database, free_port(), f"image-check-{secrets.token_hex(4)}",
                              secrets.token_hex(16))  # fmt: skip

        # The one-off tasks in the order the runbook runs them (bootstrap, then migrate);
        # without a migrate task, the web task definition with the migrate command.
        one_off = sorted((t for t in tasks if t.one_off), key=lambda t: t.name != "bootstrap-task")
        if not any(t.name == "migrate-task" for t in one_off):
            one_off.append(web)
        for task in one_off:
            command = MIGRATE_COMMAND if task is web else None
            run_once = Sandbox(root, config, task, {**config.env, **local.environment(task)})
            try:
                code = run_once.start(command).wait(timeout=120)
                if code != 0:
                    raise CheckFailed(f"{task.name} exited {code}\n{run_once.output()}")
            finally:
                run_once.stop()
            results.append(f"{task.name}: {' '.join(command or task.command or [])} exited 0")
        head = run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-tAc",
                    "SELECT version_num FROM alembic_version"]).strip()  # fmt: skip
        if head != head_revision():
            raise CheckFailed(f"migration left the database at {head!r}, not {head_revision()}")
        results.append(f"migration: database at {head}")

        for task in (t for t in tasks if not t.one_off):
            sandbox = Sandbox(root, config, task, {**config.env, **local.environment(task)})
            try:
                sandbox.start()
                results += probe(sandbox, local.port)
            finally:
                sandbox.stop()
    return results


# ---- phase 3: the Kubernetes Deployments ------------------------------------------------

DEPLOYMENT_TYPE = "kubernetes:apps/v1:Deployment"
IMAGE_BUILD_TYPE = "docker-build:index:Image"
CLUSTER_DOMAIN = ".svc.cluster.local"
# What must not reach a process here: an AWS endpoint, an ARN, a cluster DNS name.
AWS_ONLY = ("amazonaws.com", "arn:aws:", CLUSTER_DOMAIN)
EMPTY_DIR_DEFAULT_SIZE = "256m"
SENT_TIMEOUT_S = 60.0


def app_image(plan: Mapping[str, Any]) -> str:
    """The reference the plan builds from app/ (the Deployments of other images, such as
    Jaeger's, are not this image's to run)."""
    for resource in plan["resources"]:
        context = resource["inputs"].get("context") or {}
        if resource["type"] == IMAGE_BUILD_TYPE and context.get("location") == "app":
            return resource["id"]
    raise CheckFailed("the plan builds no app image")


def _size(limit: str | None) -> str:
    """A Kubernetes quantity (64Mi, 1Gi) as a tmpfs size."""
    if not limit:
        return EMPTY_DIR_DEFAULT_SIZE
    for suffix, unit in (("Ki", "k"), ("Mi", "m"), ("Gi", "g")):
        if limit.endswith(suffix):
            return limit[: -len(suffix)] + unit
    return limit


def workloads_from_plan(plan: Mapping[str, Any]) -> list[Task]:
    """The app container of every Deployment that runs the app image, as the kubelet would
    start it: its command/args, runAsUser:runAsGroup (container over pod), its emptyDir
    volumes (0777, group fsGroup with setgid, sized by sizeLimit: what the kubelet makes),
    its environment and its readiness probe."""
    image = app_image(plan)
    found: list[Task] = []
    for resource in plan["resources"]:
        if resource["type"] != DEPLOYMENT_TYPE:
            continue
        pod = resource["inputs"]["spec"]["template"]["spec"]
        pod_security = pod.get("securityContext") or {}
        empty_dirs = {v["name"]: v["emptyDir"] for v in pod.get("volumes", []) if "emptyDir" in v}
        for container in pod["containers"]:
            if container["image"] != image:
                continue
            security = {**pod_security, **(container.get("securityContext") or {})}
            if "runAsUser" not in security:
                raise CheckFailed(f"{resource['name']}: no runAsUser (the image's USER runs)")
            group = security.get("runAsGroup", security["runAsUser"])
            fs_group = pod_security.get("fsGroup")
            mounts: list[Mount] = []
            for m in container.get("volumeMounts", []):
                if m["name"] not in empty_dirs:
                    raise CheckFailed(f"{resource['name']}: no local stand-in for volume {m}")
                gid, mode = (fs_group, "2777") if fs_group is not None else (0, "0777")
                size = _size(empty_dirs[m["name"]].get("sizeLimit"))
                mounts.append(Mount(m["mountPath"], f"mode={mode},uid=0,gid={gid},size={size}"))
            ports = container.get("ports", [])
            found.append(
                Task(
                    name=resource["inputs"]["metadata"]["name"],
                    user=f"{security['runAsUser']}:{group}",
                    command=container.get("args"),
                    environment={e["name"]: e["value"] for e in container.get("env", [])},
                    secrets=[],
                    health_command=None,
                    tmp_volume=any(m.path == "/tmp" for m in mounts),
                    read_only_root=bool(security.get("readOnlyRootFilesystem")),
                    port=ports[0]["containerPort"] if ports else None,
                    entrypoint=container.get("command"),
                    empty_dirs=mounts,
                    probe=container.get("readinessProbe"),
                )
            )
    return found


@dataclass
class ShardedServices:
    """What replaces phase 3's data tier and AWS: databases on the local PostgreSQL, the
    mock Kafka cluster of this process, a free loopback port per listening workload."""

    directory: str
    shards: list[str]
    kafka: str
    ports: dict[str, int]
    """Workload name -> the local port its container port moves to."""
    token: str

    def url(self, database: str, original: str) -> str:
        from sqlalchemy.engine import make_url

        user = make_url(original).username or "postgres"
        return f"postgresql://{user}@127.0.0.1:5432/{database}"

    def peer(self, address: str) -> str:
        """dns:///<name>.<namespace>.svc.cluster.local:<port> -> dns:///127.0.0.1:<port>."""
        host = address.removeprefix("dns:///").rsplit(":", 1)[0]
        name = host.split(".", 1)[0]
        if not host.endswith(CLUSTER_DOMAIN) or name not in self.ports:
            raise CheckFailed(f"no local stand-in for the peer address {address}")
        return f"dns:///127.0.0.1:{self.ports[name]}"

    def environment(self, task: Task) -> dict[str, str]:
        env = dict(task.environment)
        for name in [n for n in env if n.endswith("_SECRET_ARN")]:
            del env[name]
        if "UNSUBSCRIBE_SECRET_ARN" in task.environment:
            env["UNSUBSCRIBE_SECRET"] = self.token
        for name, value in task.environment.items():
            if name.startswith("DB_SHARD_") and name[9:].isdigit():
                env[name] = self.url(self.shards[int(name[9:]) - 1], value)
            elif name == "DB_DIRECTORY":
                env[name] = self.url(self.directory, value)
            elif name.endswith("_SERVICE_ADDR"):
                env[name] = self.peer(value)
        if "DB_HOST" in env:
            env |= {"DB_HOST": "127.0.0.1", "DB_PORT": "5432", "DB_NAME": self.shards[0]}
        if env.get("DB_IAM_AUTH") == "1":
            env["DB_IAM_AUTH"] = "0"
        if "KAFKA_BOOTSTRAP_SERVERS" in env:
            env["KAFKA_BOOTSTRAP_SERVERS"] = self.kafka
        if env.get("KAFKA_AUTH") == "iam":
            env["KAFKA_AUTH"] = "none"
        if env.get("MAILER") == "ses":
            env["MAILER"] = "console"
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        if task.name in self.ports:
            for name in ("PORT", "GRPC_PORT"):
                if name in env:
                    env[name] = str(self.ports[task.name])
        if "PUBLIC_BASE_URL" in env and "api" in self.ports:
            env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{self.ports['api']}"
        left = {k: v for k, v in env.items() if any(a in v for a in AWS_ONLY)}
        if left:
            raise CheckFailed(f"{task.name}: no local stand-in for {sorted(left)}")
        return env

    def args(self, task: Task) -> list[str] | None:
        """The container port moves wherever the args name it (`--port 8000`)."""
        if task.command is None or task.port is None:
            return task.command
        local = str(self.ports[task.name])
        return [local if a == str(task.port) else a for a in task.command]


@contextmanager
def throwaway_databases(*roles: str) -> Iterator[dict[str, str]]:
    """Database names per role, none created: the step that creates them does (and each
    is dropped afterwards, created or not)."""
    tag = secrets.token_hex(5)
    names = {role: f"image_check_{tag}_{role}" for role in roles}
    psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c"]
    try:
        yield names
    finally:
        for name in names.values():
            subprocess.run([*psql, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=False)


def psql_value(database: str, query: str) -> str:
    return run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-tAc", query]).strip()


def grpc_serving(port: int, service: str = "") -> bool:
    """The kubelet's gRPC probe: grpc.health.v1.Health/Check, SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        check = health_pb2_grpc.HealthStub(channel).Check  # pyright: ignore[reportAttributeAccessIssue]
        try:
            reply = check(health_pb2.HealthCheckRequest(service=service), timeout=3)
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def kubelet_probe(sandbox: Sandbox, local_port: int | None) -> list[str]:
    """The pod's readiness probe against the container, then the image's own HEALTHCHECK
    command inside it (what Docker and ECS would run) for the listening workloads."""
    task, probe = sandbox.task, sandbox.task.probe
    if probe is None:
        raise CheckFailed(f"{task.name}: the pod declares no probe")
    passed: list[str] = []
    kind = next((k for k in ("grpc", "httpGet") if k in probe), None)
    port = local_port or 0
    if kind is not None and (not port or probe[kind]["port"] != task.port):
        raise CheckFailed(f"{task.name}: the probe's port is not the container's {probe}")
    if "grpc" in probe:
        service = probe["grpc"].get("service", "")
        wait_for(lambda: grpc_serving(port, service), sandbox, "gRPC health check")
        passed.append(f"{task.name}: gRPC health check (service {service!r}) SERVING")
    elif "httpGet" in probe:
        for path in dict.fromkeys((probe["httpGet"]["path"], "/readyz")):
            url = f"http://127.0.0.1:{port}{path}"
            wait_for(lambda url=url: http_ok(url), sandbox, f"GET {path}")
            passed.append(f"{task.name}: GET {path} 200")
    elif "exec" in probe:
        command = probe["exec"]["command"]
        wait_for(lambda: sandbox.exec(command) == 0, sandbox, "exec probe")
        passed.append(f"{task.name}: exec probe {' '.join(command)} passes")
    else:
        raise CheckFailed(f"{task.name}: no local way to run the probe {probe}")
    health = sandbox.config.healthcheck
    if port and health is not None:
        if sandbox.exec(health) != 0:
            raise CheckFailed(f"{task.name}: the image's HEALTHCHECK {health} fails")
        passed.append(f"{task.name}: the image's HEALTHCHECK {' '.join(health)} passes")
    return passed


def api_call(base: str, key: str, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        f"{base}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise CheckFailed(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from None


def one_off(root: Path, config: ImageConfig, task: Task, env: Mapping[str, str],
            command: Sequence[str]) -> str:  # fmt: skip
    """`command` run to completion in `task`'s container; its output."""
    sandbox = Sandbox(root, config, task, env)
    try:
        code = sandbox.start(command).wait(timeout=180)
        output = sandbox.output(20000)
    finally:
        sandbox.stop()
    if code != 0:
        raise CheckFailed(f"{task.name}: {' '.join(command)} exited {code}\n{output[-4000:]}")
    return output


def check_workloads(
    root: Path, config: ImageConfig, workloads: list[Task], tasks: list[Task]
) -> list[str]:
    from openapi_server.kafka.clients import MockCluster

    by_name = {w.name: w for w in workloads}
    missing = {"api", "clients", "campaigns", "sender"} - set(by_name)
    if missing:
        raise CheckFailed(f"the plan renders no Deployment for {sorted(missing)}")
    kafka = MockCluster(3)
    try:
        return _check_workloads(root, config, by_name, tasks, kafka.bootstrap_servers)
    finally:
        kafka.close()


def _check_workloads(
    root: Path, config: ImageConfig, by_name: dict[str, Task], tasks: list[Task], kafka: str
) -> list[str]:
    results: list[str] = []
    with throwaway_databases("source", "shard1", "shard2", "directory") as db:
        ports = {w.name: free_port() for w in by_name.values() if w.port is not None}
        local = ShardedServices(db["directory"], [db["shard1"], db["shard2"]],
                                kafka, ports, secrets.token_hex(16))  # fmt: skip
        api = by_name["api"]

        # The schema as the promotion to phase 3 makes it (docs/promotion-3.md): the
        # phase-2 database migrated by its one-off tasks, then `migrate-shards` copies it
        # onto the shards, creating shard 1 and the directory, and migrates both shards
        # and the directory. The pods themselves run with AUTO_MIGRATE off.
        run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-c",
             f"CREATE DATABASE {db['source']}"])  # fmt: skip
        phase2 = LocalServices(db["source"], free_port(), "unused", local.token)
        one_offs = [t for t in tasks if t.one_off]
        # The bootstraps of the databases migrate-shards creates run after it, on them.
        later = {t.name: _bootstrapped_database(t.name) for t in one_offs}
        later = {name: db_name for name, db_name in later.items() if db_name is not None}
        steps = sorted(
            (t for t in one_offs if t.name not in later), key=lambda t: t.name != "bootstrap-task"
        )
        if not any(t.name == "migrate-task" for t in steps):
            raise CheckFailed("the phase-3 plan renders no migrate task for the phase-2 database")
        for task in steps:
            one_off(root, config, task, {**config.env, **phase2.environment(task)},
                    task.command or config.cmd)  # fmt: skip
            results.append(f"{task.name}: {' '.join(task.command or [])} exited 0 (phase-2 db)")
        source = f"postgresql://postgres@127.0.0.1:5432/{db['source']}"
        shard_urls = [f"postgresql://postgres@127.0.0.1:5432/{db[n]}" for n in ("shard1", "shard2")]
        migrate_shards = [
            "coldreach-app", "migrate-shards", "--source", source,
            "--shard", shard_urls[0], "--shard", shard_urls[1],
            "--directory", f"postgresql://postgres@127.0.0.1:5432/{db['directory']}",
        ]  # fmt: skip
        # As the master user, from the image, with the edge's user and volumes.
        one_off(root, config, api, {**config.env, "PATH": config.env.get("PATH", PATH)},
                migrate_shards)  # fmt: skip
        head = head_revision()
        for name in ("shard1", "shard2", "directory"):
            at = psql_value(db[name], "SELECT version_num FROM alembic_version")
            if at != head:
                raise CheckFailed(f"migrate-shards left {name} at {at!r}, not {head}")
        directory_head = psql_value(
            db["directory"], "SELECT version_num FROM alembic_version_directory"
        )
        results.append(
            f"migrate-shards: shard1, shard2 and the directory at {head} "
            f"(directory chain at {directory_head})"
        )
        for task in (t for t in one_offs if t.name in later):
            target = db[later[task.name]]
            env = LocalServices(target, free_port(), "unused", local.token).environment(task)
            one_off(root, config, task, {**config.env, **env}, task.command or config.cmd)
            role = task.environment.get("DB_APP_USER", "coldreach_app")
            granted = psql_value(
                target,
                f"SELECT has_database_privilege('{role}', current_database(), 'CONNECT')"
                f" AND has_table_privilege('{role}', 'clients', 'INSERT')",
            )
            if granted != "t":
                raise CheckFailed(f"{task.name}: {role} cannot connect to and write {target}")
            results.append(
                f"{task.name}: exited 0; {role} connects to and writes {later[task.name]}"
            )

        # The pods, services before their callers, the edge last.
        running: dict[str, Sandbox] = {}
        try:
            for name in ("clients", "campaigns", "sender", "api"):
                workload = by_name[name]
                env = {**config.env, **local.environment(workload)}
                sandbox = Sandbox(
                    root, config, replace(workload, command=local.args(workload)), env
                )
                running[name] = sandbox
                sandbox.start()
                results += kubelet_probe(sandbox, ports.get(name))
            results += end_to_end(root, config, running["api"], ports["api"], local)
        except CheckFailed as failure:
            logs = "\n".join(f"--- {n}\n{s.output(1500)}" for n, s in running.items())
            raise CheckFailed(f"{failure}\n{logs}") from None
        finally:
            for sandbox in reversed(list(running.values())):
                sandbox.stop()
    return results


def _bootstrapped_database(task_name: str) -> str | None:
    """The local database a phase-3 bootstrap task stands for: `bootstrap-shard-<n>-task`
    is shard n's, `bootstrap-directory-task` the directory's; None for any other task."""
    match = re.fullmatch(r"bootstrap-(shard-(\d+)|directory)-task", task_name)
    if match is None:
        return None
    return f"shard{match.group(2)}" if match.group(2) else "directory"


def end_to_end(
    root: Path, config: ImageConfig, api: Sandbox, port: int, local: ShardedServices
) -> list[str]:
    """A key made in the image against the directory, then a client, a task and an email
    through the edge, until the sender (Kafka consumer) marks the email sent."""
    output = one_off(root, config, api.task, api.env,
                     ["coldreach-app", "create-key", "--workspace", "image-check",
                      "--scope", "read,write,send"])  # fmt: skip
    key = [line for line in output.splitlines() if line.strip()][-1].strip()
    base = f"http://127.0.0.1:{port}"
    client = api_call(base, key, "POST", "/clients",
                      {"name": "Image Check", "email": "image-check@example.com"})  # fmt: skip
    task = api_call(base, key, "POST", "/tasks", {"client_id": client["id"], "title": "call"})
    send = {"client_id": client["id"], "subject": "Hello", "body": "From the image"}
    email = api_call(base, key, "POST", "/email/send", send)
    deadline, status = time.monotonic() + SENT_TIMEOUT_S, None
    while time.monotonic() < deadline:
        status = api_call(base, key, "GET", f"/email/{email['id']}")["status"]
        if status in ("sent", "failed", "suppressed"):
            break
        time.sleep(0.5)
    if status != "sent":
        raise CheckFailed(f"email {email['id']} is {status!r}, not 'sent'")
    return [
        f"end to end: create-key, client {client['id']}, task {task['id']}, "
        f"email {email['id']} sent (edge -> gRPC -> Kafka -> sender, console mailer)"
    ]


def head_revision() -> str:
    """The newest migration in app/ (the image must migrate the database to it)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(APP / "src" / "openapi_server" / "migrations"))
    [head] = ScriptDirectory.from_config(config).get_heads()
    return head


def plan(stack: str, phase: int | None = None) -> dict[str, Any]:
    # The console script of the environment this runs in (`make image-check` uses uv run).
    at = ["--phase", str(phase)] if phase is not None else []
    out = run(["coldreach", "plan", "--stack", stack, *at, "--json"], cwd=ROOT)
    return json.loads(out)


def check_phase(root: Path, config: ImageConfig, rendered: Mapping[str, Any]) -> list[str]:
    """Phases 1-2: the ECS task definitions. Phase 3: the Deployments on the app image
    (with the phase-2 database's one-off tasks for the schema)."""
    tasks = tasks_from_plan(rendered)
    if rendered.get("phase", 0) >= 3:
        return check_workloads(root, config, workloads_from_plan(rendered), tasks)
    return check_tasks(root, config, tasks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stack", default="staging", help="stack whose plan is run")
    parser.add_argument(
        "--phase",
        type=int,
        action="append",
        help="phase of the plan (default: the stack file's); repeat to check several "
        "against one build",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    plans = [plan(args.stack, phase) for phase in (args.phase or [None])]
    tool, image = build()
    built = time.monotonic()
    results: list[str] = []
    try:
        with image_root(tool, image) as (root, config, size):
            for rendered in plans:
                began = time.monotonic()
                lines = check_phase(root, config, rendered)
                results += [f"phase {rendered.get('phase')}: {line}" for line in lines]
                results.append(f"phase {rendered.get('phase')}: {time.monotonic() - began:.0f} s")
    except CheckFailed as failure:
        for line in results:
            print(f"image-check: {line}")
        print(f"image-check FAILED: {failure}", file=sys.stderr)
        return 1
    for line in results:
        print(f"image-check: {line}")
    print(
        f"image-check: passed ({tool}; image {size / 1e6:.0f} MB; build "
        f"{built - started:.0f} s, total {time.monotonic() - started:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
