"""Secrets read by ARN at start (openapi_server/aws_secrets.py), as the phase-3 pods are told
them: database credentials into the shard and directory URLs, the unsubscribe key, the
refusals, the errors (never a secret's value), and the environment each Deployment of the
real program gets, checked against what the app reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from openapi_server import aws_secrets, tracing
from openapi_server.config import ConfigError, Settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

from coldreach.evaluation import evaluate_stack
from coldreach.local import moto_server
from policies import tokens as t

REGION = "eu-west-1"
PASSWORD = "p@ss:w/rd%?#"  # every character a URL must escape
SHARD_2_PASSWORD = "second-shard-password-0123456789"
UNSUBSCRIBE = "u" * 48


def _credentials(password: str, username: str = "coldreach") -> str:
    """The JSON components/database.py stores per instance."""
    return json.dumps(
        {"engine": "postgres", "host": "h", "port": 5432, "dbname": "coldreach",
         "username": username, "password": password}
    )  # fmt: skip


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)


def _secret(client: Any, name: str, value: str) -> str:
    return client.create_secret(Name=name, SecretString=value)["ARN"]


def _pod_env(shard_1_arn: str, shard_2_arn: str, unsubscribe_arn: str) -> dict[str, str]:
    """What environment.py gives the sender at dbIamAuth off/roles (shortened)."""
    return {
        "AWS_REGION": REGION,
        "DB_HOST": "shard1.rds",
        "DB_NAME": "coldreach",
        "DB_DIRECTORY": "postgresql://shard1.rds:5432/coldreach_directory",
        "DB_DIRECTORY_SECRET_ARN": shard_1_arn,
        "DB_SHARD_1": "postgresql://shard1.rds:5432/coldreach_shard1",
        "DB_SHARD_1_SECRET_ARN": shard_1_arn,
        "DB_SHARD_2": "postgresql://shard2.rds:5432/coldreach",
        "DB_SHARD_2_SECRET_ARN": shard_2_arn,
        "MAILER": "ses",
        "MAIL_FROM": "Cold Reach <no-reply@example.com>",
        "UNSUBSCRIBE_SECRET_ARN": unsubscribe_arn,
    }


def test_every_secret_variable_is_read_into_the_value_the_app_uses(aws: Any) -> None:
    shard_1 = _secret(aws, "db-credentials", _credentials(PASSWORD))
    shard_2 = _secret(aws, "shard2-credentials", _credentials(SHARD_2_PASSWORD))
    unsubscribe = _secret(aws, "unsubscribe-key-secret", UNSUBSCRIBE)
    reads: list[str] = []
    aws_read = aws_secrets.aws_reader(REGION)

    def counting(arn: str) -> str:
        reads.append(arn)
        return aws_read(arn)

    s = Settings.from_env(_pod_env(shard_1, shard_2, unsubscribe), read_secret=counting)
    # MAILER=ses starts: the key came from its secret.
    assert s.mailer == "ses" and s.unsubscribe_secret == UNSUBSCRIBE
    one, two = s.db_shards
    assert (one.username, one.password, one.host, one.database) == (
        "coldreach", PASSWORD, "shard1.rds", "coldreach_shard1"
    )  # fmt: skip
    assert (two.username, two.password, two.host) == ("coldreach", SHARD_2_PASSWORD, "shard2.rds")
    directory = s.database_url
    assert (directory.database, directory.username, directory.password) == (
        "coldreach_directory", "coldreach", PASSWORD
    )  # fmt: skip
    # The directory and shard 1 share one instance and one secret: read once.
    assert sorted(reads) == sorted([shard_1, shard_2, unsubscribe])
    # Through the default reader (boto3 in AWS_REGION) as the processes run it.
    again = Settings.from_env(_pod_env(shard_1, shard_2, unsubscribe))
    assert again.db_shards == s.db_shards and again.unsubscribe_secret == UNSUBSCRIBE


def test_the_unsubscribe_key_is_the_whole_secret_string_as_ecs_injects_it(aws: Any) -> None:
    """The ECS tasks get the whole string (`valueFrom` is the bare ARN): a pod must sign and
    verify with the same bytes, even when they look like JSON."""
    looks_like_json = json.dumps({"key": "k" * 32})
    arn = _secret(aws, "unsubscribe-key-secret", looks_like_json)
    s = Settings.from_env({"AWS_REGION": REGION, "UNSUBSCRIBE_SECRET_ARN": arn})
    assert s.unsubscribe_secret == looks_like_json


def test_a_database_secret_must_be_the_json_credentials_and_its_value_is_never_shown(
    aws: Any,
) -> None:
    plain = _secret(aws, "plain", PASSWORD)
    env = {"AWS_REGION": REGION, "DB_SHARD_1": "postgresql://h/db", "DB_SHARD_1_SECRET_ARN": plain}
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env)
    message = str(err.value)
    assert message.startswith("DB_SHARD_1_SECRET_ARN: secret ") and plain in message
    assert "JSON object of database credentials" in message and PASSWORD not in message
    no_password = _secret(aws, "no-password", json.dumps({"username": "coldreach"}))
    with pytest.raises(ConfigError, match="holds no password"):
        Settings.from_env(env | {"DB_SHARD_1_SECRET_ARN": no_password})


def test_the_urls_user_is_kept_and_another_users_secret_is_refused(aws: Any) -> None:
    arn = _secret(aws, "db-credentials", _credentials(PASSWORD, username="coldreach"))
    env = {"AWS_REGION": REGION, "DB_SHARD_1_SECRET_ARN": arn}
    s = Settings.from_env(env | {"DB_SHARD_1": "postgresql://coldreach@h/db"})
    assert (s.db_shards[0].username, s.db_shards[0].password) == ("coldreach", PASSWORD)
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env | {"DB_SHARD_1": "postgresql://coldreach_app@h/db"})
    assert "DB_SHARD_1 names user 'coldreach_app'" in str(err.value)
    assert PASSWORD not in str(err.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"UNSUBSCRIBE_SECRET": UNSUBSCRIBE, "UNSUBSCRIBE_SECRET_ARN": "arn:x"},
            "UNSUBSCRIBE_SECRET and UNSUBSCRIBE_SECRET_ARN are both set",
        ),
        (
            {"DB_SHARD_1": "postgresql://u:pw@h/db", "DB_SHARD_1_SECRET_ARN": "arn:x"},
            "DB_SHARD_1 has a password and DB_SHARD_1_SECRET_ARN is set",
        ),
        (
            {"DB_SHARD_1": "postgresql://u@h/db", "DB_SHARD_2_SECRET_ARN": "arn:x"},
            "DB_SHARD_2_SECRET_ARN is set but DB_SHARD_2",
        ),
        (
            {
                "DB_IAM_AUTH": "1",
                "DB_USER": "coldreach_app",
                "DB_SHARD_1": "postgresql://coldreach_app@h/db",
                "DB_SHARD_1_SECRET_ARN": "arn:x",
            },
            "DB_SHARD_1_SECRET_ARN is set with DB_IAM_AUTH=1",
        ),
        ({"REDIS_URL_SECRET_ARN": "arn:x"}, "REDIS_URL_SECRET_ARN is not a secret the app reads"),
    ],
    ids=["unsubscribe-both", "url-password-and-arn", "arn-without-url", "iam-and-arn", "unknown"],
)
def test_ambiguous_or_unknown_secret_variables_are_refused_before_any_read(
    env: dict[str, str], message: str
) -> None:
    def never(arn: str) -> str:
        raise AssertionError(f"read {arn}")

    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env, read_secret=never)


def test_aws_errors_name_the_variable_the_arn_and_the_code() -> None:
    client = boto3.client(
        "secretsmanager", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:shard2-credentials-AbCdEf"
    env = {"DB_SHARD_1": "postgresql://h/db", "DB_SHARD_1_SECRET_ARN": arn}
    for code in ("AccessDeniedException", "ResourceNotFoundException"):
        with Stubber(client) as stub:
            stub.add_client_error("get_secret_value", service_error_code=code, http_status_code=400)
            with pytest.raises(ConfigError) as err:
                Settings.from_env(env, read_secret=aws_secrets.aws_reader(REGION, client))
        assert str(err.value) == f"DB_SHARD_1_SECRET_ARN: cannot read secret {arn} ({code})"


def test_resolved_credentials_sign_in_to_postgresql(aws: Any, pg_url: URL) -> None:
    """The password's reserved characters survive into a working connection URL."""
    arn = _secret(aws, "db-credentials", _credentials(PASSWORD, username=pg_url.username or ""))
    bare = pg_url.set(username=None, password=None).render_as_string(hide_password=False)
    s = Settings.from_env({"AWS_REGION": REGION, "DB_SHARD_1": bare, "DB_SHARD_1_SECRET_ARN": arn})
    [shard] = s.db_shards
    assert shard.password == PASSWORD and shard.host == pg_url.host
    engine = create_engine(shard)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("select current_user")).scalar() == pg_url.username
    finally:
        engine.dispose()


# --- through the commands: exit status 2, one line, no traceback, no value ------------------


@pytest.fixture(scope="module")
def secrets_server() -> Iterator[tuple[str, str]]:
    """A moto server the commands reach through AWS_ENDPOINT_URL, holding shard 1's secret."""
    with moto_server() as url:
        client = boto3.client(
            "secretsmanager", region_name=REGION, endpoint_url=url,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        yield url, _secret(client, "db-credentials", _credentials(PASSWORD))


@pytest.mark.parametrize(
    "command",
    [
        ["coldreach-app", "create-key", "--workspace", "w"],
        ["coldreach-app", "serve-clients"],
        ["coldreach-app", "consume"],
        ["-c", "import openapi_server.main"],  # what uvicorn does first
    ],
    ids=["create-key", "serve-clients", "consume", "api"],
)
def test_a_missing_secret_stops_every_command_with_a_configuration_error(
    tmp_path: Path, secrets_server: tuple[str, str], command: list[str]
) -> None:
    url, shard_1 = secrets_server
    missing = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:shard2-credentials-AbCdEf"
    env = {
        "PATH": os.environ["PATH"],
        "DATA_DIR": str(tmp_path),
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "DB_SHARD_1": "postgresql://127.0.0.1:5432/coldreach_shard1",
        "DB_SHARD_1_SECRET_ARN": shard_1,  # read first, and fine
        "DB_SHARD_2": "postgresql://127.0.0.1:5432/coldreach",
        "DB_SHARD_2_SECRET_ARN": missing,
    }
    if command[0] == "coldreach-app":
        argv = [str(Path(sys.executable).with_name("coldreach-app")), *command[1:]]
    else:
        argv = [sys.executable, *command]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    # The last line (the servers log botocore's INFO lines before it).
    assert proc.stderr.splitlines()[-1] == (
        f"configuration error: DB_SHARD_2_SECRET_ARN: cannot read secret {missing} "
        "(ResourceNotFoundException)"
    )
    assert "Traceback" not in proc.stderr
    assert PASSWORD not in proc.stderr + proc.stdout


# --- the infrastructure and the app agree on every name -------------------------------------

ALLOWED = {
    "OTEL_SERVICE_NAME": "the OpenTelemetry SDK reads it (tracing.provider_from_env), not Settings",
}
"""Names the pods get that Settings does not read, each with the reader."""


class _Recording(Mapping[str, str]):
    """An environment that remembers the names read from it (not those merely listed)."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.held = dict(values)
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.read.add(name)
        return self.held[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.held)

    def __len__(self) -> int:
        return len(self.held)


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def _app_pods(stack: str, iam: str) -> dict[str, tuple[dict[str, str], set[str]]]:
    """Each Deployment running the app's image (not Jaeger): its environment, and the
    secrets its Pod Identity role may read."""
    d = evaluate_stack(stack, 3, overrides={"cold-reach:dbIamAuth": iam})
    roles = {r.out("arn"): r.id for r in d.of_type("aws:iam/role:Role")}
    policies = {p.get("role"): json.loads(p.get("policy"))
                for p in d.of_type("aws:iam/rolePolicy:RolePolicy")}  # fmt: skip
    readable: dict[str, set[str]] = {}
    for association in d.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation"):
        statements = policies[roles[association.get("roleArn")]]["Statement"]
        readable[association.get("serviceAccount")] = {
            resource
            for statement in statements
            if "secretsmanager:GetSecretValue" in _listed(statement["Action"])
            for resource in _listed(statement["Resource"])
        }
    registries = tuple(r.out("repositoryUrl") for r in d.of_type("aws:ecr/repository:Repository"))
    found: dict[str, tuple[dict[str, str], set[str]]] = {}
    for deployment in d.of_type(t.K8S_DEPLOYMENT):
        name = deployment.get("metadata")["name"]
        for container in deployment.get("spec")["template"]["spec"]["containers"]:
            if str(container["image"]).startswith(registries):
                env = {e["name"]: str(e["value"]) for e in container.get("env", [])}
                found[name] = (env, readable.get(name, set()))
    return found


@pytest.mark.parametrize("iam", ["roles", "on"])
def test_every_variable_a_phase_3_pod_gets_is_one_the_app_reads(iam: str) -> None:
    """The staging plan's Deployments (components/workloads/environment.py): with their
    secrets read, each pod's environment loads, every shard and the directory can sign in,
    and no name is ignored (unless allowed here, with the reason)."""
    pods = _app_pods("staging", iam)
    assert sorted(pods) == ["api", "campaigns", "clients", "sender"]
    for name, (env, readable) in pods.items():
        values = {v: (UNSUBSCRIBE if k == "UNSUBSCRIBE_SECRET_ARN" else _credentials(PASSWORD))
                  for k, v in env.items() if k.endswith("_SECRET_ARN")}  # fmt: skip
        assert bool(values) == (name in ("api", "sender") or iam == "roles"), name
        # The pod reads exactly the secrets its role may read: no AccessDenied at start.
        assert set(values) == readable, name
        resolved = aws_secrets.resolve(env, values.__getitem__)
        recording = _Recording(resolved)
        s = Settings.from_env(recording)
        tracing.configured(recording)
        read = recording.read | (set(env) - set(resolved))  # the ARNs, consumed by resolve
        unread = sorted(set(env) - read - set(ALLOWED))
        assert not unread, f"{name} pods get variables the app never reads: {unread}"
        assert s.db_shards and all(u.username for u in (*s.db_shards, s.database_url)), name
        if iam == "roles":
            assert all(u.password == PASSWORD for u in (*s.db_shards, s.database_url)), name
        else:
            assert s.db_iam_auth and not any(u.password for u in s.db_shards), name
        if "UNSUBSCRIBE_SECRET_ARN" in env:
            assert s.unsubscribe_secret == UNSUBSCRIBE
    for allowed in ALLOWED:
        assert any(allowed in env for env, _ in pods.values()), f"{allowed} is allowed but unused"
