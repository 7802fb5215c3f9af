"""Secrets named by ARN in the environment, read from Secrets Manager at start.

On ECS the task definition injects credentials (`DB_USER`, `DB_PASSWORD`,
`UNSUBSCRIBE_SECRET`) from Secrets Manager. Kubernetes pods get no such injection: the
phase-3 workloads are told which secret to read instead (components/workloads/environment.py)
and their Pod Identity role may read exactly those ARNs. `resolve` turns each supported
`<NAME>_SECRET_ARN` into the value the settings already understand, before they are parsed:

- `DB_DIRECTORY_SECRET_ARN`, `DB_SHARD_<n>_SECRET_ARN`: the database's credentials secret
  (JSON with `username` and `password`, as components/database.py stores it) gives the
  password of the URL in `DB_DIRECTORY` / `DB_SHARD_<n>`, and its user if the URL names none.
- `UNSUBSCRIBE_SECRET_ARN`: the whole secret string becomes `UNSUBSCRIBE_SECRET`, exactly as
  ECS injects it, so links signed by the ECS tasks verify on the pods and back.

Refused, because either reading would be a guess: an ARN beside an explicit value (a URL
with a password, `UNSUBSCRIBE_SECRET`), an ARN without the URL it completes, a database
ARN with `DB_IAM_AUTH=1` (the pods sign in with tokens or with the secret, never both), and
any other `*_SECRET_ARN` name. Error messages name the variable, the ARN and AWS's error
code; never a secret's value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.engine import URL, make_url

SUFFIX = "_SECRET_ARN"
_DATABASE = re.compile(r"DB_DIRECTORY|DB_SHARD_[0-9]+")
SUPPORTED = ("DB_DIRECTORY_SECRET_ARN", "DB_SHARD_<n>_SECRET_ARN", "UNSUBSCRIBE_SECRET_ARN")

UNSUBSCRIBE = "UNSUBSCRIBE_SECRET_ARN"

SecretReader = Callable[[str], str]
"""Reads the secret string of an ARN; raises `SecretUnreadable` with AWS's error code."""


class SecretError(ValueError):
    """A secret variable is refused or its secret cannot be used; the message names it."""


class SecretUnreadable(Exception):
    """Secrets Manager did not return the secret; the argument is AWS's error code."""

    @property
    def code(self) -> str:
        return str(self.args[0])


def aws_reader(region: str, client: Any = None) -> SecretReader:
    """GetSecretValue through boto3, with the pod's (or task's) own credentials."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    if client is None:
        config = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 3})
        client = boto3.client("secretsmanager", region_name=region, config=config)

    def read(arn: str) -> str:
        try:
            answer = client.get_secret_value(SecretId=arn)
        except ClientError as exc:
            raise SecretUnreadable(exc.response.get("Error", {}).get("Code") or "error") from None
        except BotoCoreError as exc:  # no credentials, endpoint unreachable, ...
            raise SecretUnreadable(type(exc).__name__) from None
        value = answer.get("SecretString")
        if not isinstance(value, str):
            raise SecretUnreadable("NoSecretString")
        return value

    return read


def _target(name: str) -> str:
    """The variable a secret's ARN stands for: UNSUBSCRIBE_SECRET, DB_SHARD_2, ..."""
    return "UNSUBSCRIBE_SECRET" if name == UNSUBSCRIBE else name.removesuffix(SUFFIX)


def _region(env: Mapping[str, str]) -> str:
    return (
        env.get("AWS_REGION", "").strip()
        or env.get("AWS_DEFAULT_REGION", "").strip()
        or "us-east-1"
    )


def _iam(env: Mapping[str, str]) -> bool:
    return env.get("DB_IAM_AUTH", "").strip().lower() in ("1", "true", "yes", "on")


def resolve(env: Mapping[str, str], read: SecretReader | None = None) -> Mapping[str, str]:
    """`env` with every `*_SECRET_ARN` read and replaced by the value it stands for.

    Without any such variable `env` itself comes back and nothing is read. `read` defaults
    to Secrets Manager in `AWS_REGION`; each ARN is read once.
    """
    names = sorted(n for n in env if n.endswith(SUFFIX) and env[n].strip())
    if not names:
        return env
    for name in names:
        if name != UNSUBSCRIBE and not _DATABASE.fullmatch(_target(name)):
            raise SecretError(
                f"{name} is not a secret the app reads (it reads {', '.join(SUPPORTED)})"
            )
    databases = [n for n in names if n != UNSUBSCRIBE]
    if databases and _iam(env):
        raise SecretError(
            f"{databases[0]} is set with DB_IAM_AUTH=1: sign-in is by IAM token or by the "
            "secret's password, not both; unset one"
        )
    # Every refusal before the first read: a refused start reads no secret.
    wanted: list[tuple[str, str, URL | None]] = []
    for name in names:
        target = _target(name)
        explicit = env.get(target, "").strip()
        if name == UNSUBSCRIBE:
            if explicit:
                raise SecretError(f"{target} and {name} are both set; set one")
            wanted.append((name, target, None))
            continue
        if not explicit:
            raise SecretError(f"{name} is set but {target} (the URL it completes) is not")
        try:
            url = make_url(explicit)
        except Exception:
            raise SecretError(f"{target} is not a valid database URL") from None
        if url.password is not None:
            raise SecretError(f"{target} has a password and {name} is set; set one")
        wanted.append((name, target, url))

    reader = read or aws_reader(_region(env))
    read_once: dict[str, str] = {}
    out = {k: v for k, v in env.items() if not k.endswith(SUFFIX)}
    for name, target, url in wanted:
        arn = env[name].strip()
        if arn not in read_once:
            try:
                read_once[arn] = reader(arn)
            except SecretUnreadable as exc:
                raise SecretError(f"{name}: cannot read secret {arn} ({exc.code})") from None
        secret = read_once[arn]
        out[target] = secret if url is None else _with_credentials(target, url, name, arn, secret)
    return out


def _with_credentials(target: str, url: URL, name: str, arn: str, secret: str) -> str:
    """The URL with the password (and, if it names none, the user) of the JSON secret."""
    try:
        credentials = json.loads(secret)
    except ValueError:
        credentials = None
    if not isinstance(credentials, dict):
        raise SecretError(
            f"{name}: secret {arn} is not a JSON object of database credentials "
            "(username, password)"
        )
    password, username = credentials.get("password"), credentials.get("username")
    if not isinstance(password, str) or not password:
        raise SecretError(f"{name}: secret {arn} holds no password")
    if url.username is None:
        if not isinstance(username, str) or not username:
            raise SecretError(f"{name}: secret {arn} holds no username and {target} names none")
        url = url.set(username=username)
    elif username is not None and username != url.username:
        raise SecretError(
            f"{target} names user {url.username!r} but {name} holds another user's credentials"
        )
    return url.set(password=password).render_as_string(hide_password=False)
