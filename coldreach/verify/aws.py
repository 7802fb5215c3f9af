"""boto3 clients for the checks, against AWS or an emulator."""

from __future__ import annotations

import os
from typing import Any

from boto3.session import Session
from botocore.config import Config

from coldreach.runtime.emulator import EMULATOR_CREDENTIALS


class Aws:
    """boto3 clients for one region, optionally against an emulator's endpoint."""

    def __init__(
        self, region: str, endpoint_url: str | None = None, *, emulator: bool | None = None
    ) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.emulator = endpoint_url is not None if emulator is None else emulator
        """True for moto (a server, or in-process under `mock_aws`): the package doc of
        coldreach/verify/ says which checks read less there."""
        credentials: dict[str, str] = {}
        if endpoint_url and not os.environ.get("AWS_ACCESS_KEY_ID"):
            # An emulator accepts any key; never go looking for real ones for it.
            credentials = EMULATOR_CREDENTIALS
        self._session = Session(region_name=region, **credentials)
        self._clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(
                service,  # pyright: ignore[reportArgumentType]
                endpoint_url=self.endpoint_url,
                config=Config(retries={"max_attempts": 3, "mode": "standard"}),
            )
        return self._clients[service]


def paginate(client: Any, method: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    if client.can_paginate(method):
        items: list[dict[str, Any]] = []
        for page in client.get_paginator(method).paginate(**kwargs):
            items += page.get(key, [])
        return items
    return getattr(client, method)(**kwargs).get(key, [])
