"""The master password's rotation, as Secrets Manager runs it: four steps, one call each.

This file is the Lambda function's code (components/rotation.py packages it with
pg8000, a pure-Python PostgreSQL driver; the runtime provides boto3). The program
never imports it. It follows the single-user scheme of AWS's rotation templates:
the master user changes its own password, so every connection made with the
previous one fails from `finishSecret` on; nothing but the `bootstrap` task and a
break-glass operator uses it once the services sign in with IAM tokens.

Secrets Manager calls `lambda_handler` with `{"SecretId", "ClientRequestToken",
"Step"}` for `createSecret`, `setSecret`, `testSecret` and `finishSecret`. A step
that fails is retried by Secrets Manager; each step is safe to repeat.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
from collections.abc import Callable
from typing import Any

import boto3
import pg8000.native

log = logging.getLogger()
log.setLevel(logging.INFO)

# RDS refuses '/', '@', '"' and spaces in a master password; quotes and backslashes are
# left out too, so the value survives any shell or connection string it meets.
EXCLUDED_CHARACTERS = "/@\"' \\`"
PASSWORD_LENGTH = 32
CONNECT_TIMEOUT_S = 5

Secret = dict[str, Any]


def tls_context() -> ssl.SSLContext | None:
    """Encrypted, as the instance requires (`rds.force_ssl`); the server's certificate is
    not verified, because the RDS CA bundle is not in the runtime's trust store (the
    app's own `DB_SSLMODE=require` makes the same choice). DB_TLS=disable only for a
    local PostgreSQL without TLS."""
    if os.environ.get("DB_TLS", "require") == "disable":
        return None
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def connect(secret: Secret) -> pg8000.native.Connection | None:
    """A connection with the secret's credentials, or None if they are refused."""
    try:
        return pg8000.native.Connection(
            user=secret["username"],
            password=secret["password"],
            host=secret["host"],
            port=int(secret.get("port", 5432)),
            database=secret.get("dbname", "postgres"),
            ssl_context=tls_context(),
            timeout=CONNECT_TIMEOUT_S,
        )
    except (pg8000.native.InterfaceError, pg8000.native.DatabaseError) as exc:
        log.info("sign-in as %s refused: %s", secret.get("username"), type(exc).__name__)
        return None


def alter_password_sql(username: str, password: str) -> str:
    """The one statement that changes the password; both values quoted by the driver."""
    ident, value = pg8000.native.identifier(username), pg8000.native.literal(password)
    return f"ALTER USER {ident} WITH PASSWORD {value}"


def _get(client: Any, arn: str, stage: str, token: str | None = None) -> Secret:
    kwargs: dict[str, str] = {"SecretId": arn, "VersionStage": stage}
    if token is not None:
        kwargs["VersionId"] = token
    secret = json.loads(client.get_secret_value(**kwargs)["SecretString"])
    missing = {"host", "username", "password"} - set(secret)
    if missing:
        raise ValueError(f"{stage} of the secret lacks {sorted(missing)}")
    return secret


def create_secret(client: Any, arn: str, token: str) -> None:
    """AWSPENDING: the current credentials with a new random password (once per token)."""
    current = _get(client, arn, "AWSCURRENT")
    try:
        _get(client, arn, "AWSPENDING", token)
        return
    except client.exceptions.ResourceNotFoundException:
        pass
    password = client.get_random_password(
        PasswordLength=PASSWORD_LENGTH, ExcludeCharacters=EXCLUDED_CHARACTERS
    )["RandomPassword"]
    client.put_secret_value(
        SecretId=arn,
        ClientRequestToken=token,
        SecretString=json.dumps({**current, "password": password}),
        VersionStages=["AWSPENDING"],
    )
    log.info("createSecret: pending version %s", token)


def set_secret(client: Any, arn: str, token: str) -> None:
    """The database takes the pending password, signed in with the current one (or the
    previous one, when an earlier run changed the password but did not finish)."""
    pending = _get(client, arn, "AWSPENDING", token)
    conn = connect(pending)
    if conn is not None:
        conn.close()
        log.info("setSecret: the pending password already works")
        return
    for stage in ("AWSCURRENT", "AWSPREVIOUS"):
        try:
            known = _get(client, arn, stage)
        except client.exceptions.ResourceNotFoundException:
            continue
        if (known["username"], known["host"]) != (pending["username"], pending["host"]):
            raise ValueError(f"{stage} names another user or host than AWSPENDING")
        conn = connect(known)
        if conn is None:
            continue
        try:
            conn.run(alter_password_sql(pending["username"], pending["password"]))
        finally:
            conn.close()
        log.info("setSecret: password changed, signed in with %s", stage)
        return
    raise ValueError("setSecret: neither the current nor the previous password signs in")


def test_secret(client: Any, arn: str, token: str) -> None:
    conn = connect(_get(client, arn, "AWSPENDING", token))
    if conn is None:
        raise ValueError("testSecret: the pending password does not sign in")
    try:
        conn.run("SELECT 1")
    finally:
        conn.close()


def finish_secret(client: Any, arn: str, token: str) -> None:
    versions = client.describe_secret(SecretId=arn)["VersionIdsToStages"]
    current = next((v for v, stages in versions.items() if "AWSCURRENT" in stages), None)
    if current == token:
        return
    client.update_secret_version_stage(
        SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=current
    )
    log.info("finishSecret: version %s is current", token)


STEPS: dict[str, Callable[..., None]] = {
    "createSecret": create_secret,
    "setSecret": set_secret,
    "testSecret": test_secret,
    "finishSecret": finish_secret,
}


def secrets_client() -> Any:
    # The interface endpoint's own DNS name: its private DNS is off, so nothing else in
    # the VPC changes route (components/rotation.py).
    return boto3.client("secretsmanager", endpoint_url=os.environ.get("SECRETS_MANAGER_ENDPOINT"))


def lambda_handler(event: dict[str, str], context: object, client: Any = None) -> None:
    client = client or secrets_client()
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}")
    metadata = client.describe_secret(SecretId=arn)
    if not metadata.get("RotationEnabled"):
        raise ValueError(f"rotation is not enabled on {arn}")
    stages = metadata["VersionIdsToStages"].get(token)
    if stages is None:
        raise ValueError(f"version {token} is not a version of {arn}")
    if "AWSCURRENT" in stages:
        log.info("%s: version %s is already current", step, token)
        return
    if "AWSPENDING" not in stages:
        raise ValueError(f"version {token} is not pending rotation")
    STEPS[step](client, arn, token)
