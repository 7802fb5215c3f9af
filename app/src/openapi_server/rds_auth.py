"""RDS IAM authentication: a short-lived token as the password of each new connection.

`generate_db_auth_token` presigns locally (no network call) with the task's role
credentials, which botocore refreshes; a token is valid for 15 minutes and only for
opening a connection, so one is made per connection and never cached. An open
connection outlives its token.
"""

from __future__ import annotations

from typing import Any, Protocol


class TokenSource(Protocol):
    def __call__(self, host: str, port: int, user: str) -> str: ...


class RdsAuthToken:
    def __init__(self, region: str, client: Any | None = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("rds", region_name=region)
        self.region = region
        self.client = client

    def __call__(self, host: str, port: int, user: str) -> str:
        return str(
            self.client.generate_db_auth_token(
                DBHostname=host, Port=port, DBUsername=user, Region=self.region
            )
        )
