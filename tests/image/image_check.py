"""Builds app/Dockerfile and runs the image the way ECS on Fargate runs it.

    python tests/image/image_check.py [--stack staging]

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
from dataclasses import dataclass
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

    @classmethod
    def from_oci(cls, config: Mapping[str, Any]) -> ImageConfig:
        return cls(
            env=dict(e.split("=", 1) for e in config.get("Env") or []),
            cmd=list(config.get("Cmd") or []),
            entrypoint=list(config.get("Entrypoint") or []),
            workdir=config.get("WorkingDir") or "/",
            volumes=set(config.get("Volumes") or {}),
        )


@dataclass
class Task:
    """One container of a task definition, as ECS would start it."""

    name: str
    user: str
    command: list[str] | None
    environment: dict[str, str]
    secrets: list[str]
    health_command: list[str] | None
    tmp_volume: bool
    read_only_root: bool
    port: int | None = None

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
        yield root, ImageConfig.from_oci(info["OCIv1"]["config"]), size
    finally:
        subprocess.run(["buildah", "umount", container], capture_output=True)
        subprocess.run(["buildah", "rm", container], capture_output=True)


# ---- running as ECS runs a task --------------------------------------------------------

# Runs inside a private mount namespace: $1 the image root, $2 1 when the image
# declares VOLUME /tmp, $3 a staging directory; the rest is `chroot` arguments.
SANDBOX = r"""
set -eu
root=$1 declared=$2 stage=$3; shift 3
mount --make-rprivate /
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount -t tmpfs -o mode=0755,uid=0,gid=0,size=256m tmpfs "$stage"
if [ "$declared" = 1 ]; then cp -a "$root/tmp/." "$stage/"; fi
mount --bind "$stage" "$root/tmp"
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
exec chroot "$@"
"""


class Sandbox:
    """One task's container: a process in its own mount namespace, chrooted into the image."""

    def __init__(self, root: Path, config: ImageConfig, task: Task, env: Mapping[str, str]):
        self.root, self.config, self.task, self.env = root, config, task, env
        self.stage = Path(tempfile.mkdtemp(prefix="image-check-tmp-"))
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
        return [*self.config.entrypoint, *(self.task.command or self.config.cmd)]

    def start(self, command: Sequence[str] | None = None) -> subprocess.Popen[str]:
        if not (self.task.tmp_volume and self.task.read_only_root):
            raise SystemExit(f"{self.task.name}: expected a read-only root and a /tmp volume")
        declared = "1" if "/tmp" in self.config.volumes else "0"
        self.process = subprocess.Popen(
            ["unshare", "-m", "sh", "-c", SANDBOX, "sandbox", str(self.root), declared,
             str(self.stage), *self.argv(command or self.command())],
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

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()[-4000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.stage, ignore_errors=True)


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


def head_revision() -> str:
    """The newest migration in app/ (the image must migrate the database to it)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(APP / "src" / "openapi_server" / "migrations"))
    [head] = ScriptDirectory.from_config(config).get_heads()
    return head


def plan(stack: str) -> dict[str, Any]:
    # The console script of the environment this runs in (`make image-check` uses uv run).
    out = run(["coldreach", "plan", "--stack", stack, "--json"], cwd=ROOT)
    return json.loads(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="staging", help="stack whose plan is run")
    args = parser.parse_args(argv)
    started = time.monotonic()
    tasks = tasks_from_plan(plan(args.stack))
    tool, image = build()
    built = time.monotonic()
    try:
        with image_root(tool, image) as (root, config, size):
            results = check_tasks(root, config, tasks)
    except CheckFailed as failure:
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
