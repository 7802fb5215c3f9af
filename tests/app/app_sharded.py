"""Helpers for tests on two shards and a directory: the edge in front of the in-process
phase-3 services, clients placed on each shard, and an operator's shard variables."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest
from app_helpers import authorize
from app_sns_signing import Signer
from fastapi.testclient import TestClient
from openapi_server.config import Settings
from openapi_server.main import create_app
from openapi_server.sharding import ShardRouter
from rpc_harness import Services
from sqlalchemy.engine import URL


@contextmanager
def sharded_edge(
    services: Services, settings: Settings, signer: Signer | None = None
) -> Iterator[TestClient]:
    """The HTTP API in front of `services`, authorized in workspace `acme`."""
    app = create_app(
        services.edge_settings(settings.with_(queue_backend="inline")),
        sns_fetcher=signer.fetch_cert if signer else None,
    )
    with TestClient(app) as api:
        yield authorize(api, "acme")


def clients_on_shards(api: TestClient, router: ShardRouter, per_shard: int) -> dict[str, list[int]]:
    """New clients (addresses c<i>@example.com) until each shard has `per_shard`."""
    by_shard: dict[str, list[int]] = {"1": [], "2": []}
    i = 0
    while min(len(ids) for ids in by_shard.values()) < per_shard:
        r = api.post("/clients", json={"name": f"C{i}", "email": f"c{i}@example.com"})
        assert r.status_code == 201, r.text
        by_shard[router.shard_of(r.json()["id"])].append(r.json()["id"])
        i += 1
    return by_shard


def accept(api: TestClient, client_id: int) -> int:
    """A send accepted for `client_id` (202, queued); the message's id."""
    r = api.post("/email/send", json={"client_id": client_id, "subject": "S", "body": "B"})
    assert r.status_code == 202 and r.json()["status"] == "queued", r.text
    return r.json()["id"]


def shard_env(monkeypatch: pytest.MonkeyPatch, shards: Sequence[URL], directory: URL) -> None:
    """The database variables of a phase-3 shell: DB_SHARD_n and DB_DIRECTORY only."""
    for name in ("DATABASE_URL", "DATABASE_READ_URL", "DB_HOST", "DB_NAME", "PHASE"):
        monkeypatch.delenv(name, raising=False)
    for n, url in enumerate(shards, start=1):
        monkeypatch.setenv(f"DB_SHARD_{n}", url.render_as_string(hide_password=False))
    monkeypatch.setenv("DB_DIRECTORY", directory.render_as_string(hide_password=False))
