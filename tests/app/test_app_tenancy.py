"""The tenancy matrix, generated from the OpenAPI document.

Every operation is called four ways: without credentials (401), with a key of the
owner's workspace lacking the operation's scope (403), with a key of another
workspace holding every scope (404 for the owner's objects; lists show nothing of
theirs), and with the owner's key (2xx). After each call the workspaces that should
be untouched are compared row by row with a snapshot taken before it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from app_helpers import bearer, issue_key, wait_for
from app_recording import RecordingMailer
from fastapi.testclient import TestClient
from openapi_server.principal import SCOPES
from sqlalchemy import text

PUBLIC = {
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/unsubscribe/{token}"),
    ("post", "/unsubscribe/{token}"),
    ("post", "/webhooks/ses"),
}
TENANT_TABLES = ("clients", "tasks", "email_messages", "send_counts", "workspace_unsubscribes")
_serial = itertools.count()


class Owned:
    """A fresh client, task and message of the owner's workspace, made through the API."""

    def __init__(self, api: TestClient, key: str) -> None:
        n = next(_serial)
        auth = bearer(key)
        self.client = api.post(
            "/clients", json={"name": "Owner", "email": f"o{n}@example.com"}, headers=auth
        ).json()["id"]
        self.task = api.post(
            "/tasks", json={"client_id": self.client, "title": "T"}, headers=auth
        ).json()["id"]
        self.email = api.post(
            "/email/send",
            json={"client_id": self.client, "subject": "S", "body": "B"},
            headers=auth,
        ).json()["id"]

    def path(self, template: str) -> str:
        return template.format(client_id=self.client, task_id=self.task, email_id=self.email)


# How to call each operation on the owner's objects. A new operation fails
# test_every_operation_is_in_the_matrix until it is added here.
Request = Callable[[Owned], dict[str, Any]]
REQUESTS: dict[tuple[str, str], Request] = {
    ("post", "/clients"): lambda o: {
        "json": {"name": "New", "email": f"new{next(_serial)}@example.com"}
    },
    ("get", "/clients"): lambda o: {"params": {"limit": 200}},
    ("get", "/clients/{client_id}"): lambda o: {},
    ("patch", "/clients/{client_id}"): lambda o: {"json": {"name": "Changed"}},
    ("delete", "/clients/{client_id}"): lambda o: {},
    ("post", "/tasks"): lambda o: {"json": {"client_id": o.client, "title": "New"}},
    ("get", "/tasks"): lambda o: {"params": {"client_id": o.client}},
    ("get", "/tasks/{task_id}"): lambda o: {},
    ("patch", "/tasks/{task_id}"): lambda o: {"json": {"done": True}},
    ("post", "/email/send"): lambda o: {
        "json": {"client_id": o.client, "subject": "S", "body": "B"},
        "headers": {"Idempotency-Key": f"k{next(_serial)}"},
    },
    ("get", "/email/{email_id}"): lambda o: {},
}
# Operations that take no object of the owner: another workspace gets a 2xx in its own.
OWN_WORKSPACE_ONLY = {("post", "/clients"), ("get", "/clients"), ("get", "/tasks")}


def operations(api: TestClient) -> dict[tuple[str, str], dict[str, Any]]:
    document = api.app.openapi()  # type: ignore[attr-defined]
    return {
        (method, path): op
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    }


def required_scope(op: dict[str, Any]) -> str | None:
    security = op.get("security")
    if security == []:
        return None
    assert security and len(security) == 1, op.get("operationId")
    (scopes,) = security[0].values()
    assert len(scopes) == 1 and scopes[0] in SCOPES, op.get("operationId")
    return scopes[0]


def snapshot(api: TestClient, workspace: str) -> dict[str, list[tuple]]:
    db = api.app.state.ctx.db  # type: ignore[attr-defined]
    with db.primary.connect() as conn:
        ws = conn.execute(
            text("SELECT id FROM workspaces WHERE name = :n"), {"n": workspace}
        ).scalar_one()
        return {
            table: [
                tuple(row)
                for row in conn.execute(
                    text(f"SELECT * FROM {table} WHERE workspace_id = :ws ORDER BY 1, 2"),
                    {"ws": ws},
                )
            ]
            for table in TENANT_TABLES
        }


@pytest.fixture
def tenants(make_client):
    mailer = RecordingMailer()
    api = make_client(mailer, workspace=None)
    api.app.state.ctx.queue.stop()  # messages stay queued: snapshots do not move underneath
    keys = {
        "owner": issue_key(api, "owner"),
        "intruder": issue_key(api, "intruder"),
    }
    # The intruder has a client with an address the owner also uses: per-workspace uniqueness.
    r = api.post(
        "/clients",
        json={"name": "Same address", "email": "shared@example.com"},
        headers=bearer(keys["intruder"]),
    )
    assert r.status_code == 201
    r = api.post(
        "/clients",
        json={"name": "Same address", "email": "Shared@Example.com"},
        headers=bearer(keys["owner"]),
    )
    assert r.status_code == 201, "address uniqueness must be per workspace"
    return api, keys, mailer


def test_every_operation_is_in_the_matrix(tenants) -> None:
    api, _, _ = tenants
    ops = operations(api)
    public = {key for key, op in ops.items() if required_scope(op) is None}
    assert public == PUBLIC
    assert set(ops) - PUBLIC == set(REQUESTS)


@pytest.mark.parametrize(("method", "path"), sorted(REQUESTS))
def test_tenancy_matrix(tenants, method: str, path: str) -> None:
    api, keys, _ = tenants
    op = operations(api)[(method, path)]
    scope = required_scope(op)
    assert scope is not None
    owned = Owned(api, keys["owner"])
    url = owned.path(path)

    def call(headers: dict[str, str]):
        request = REQUESTS[(method, path)](owned)
        request["headers"] = {**request.get("headers", {}), **headers}
        return api.request(method.upper(), url, **request)

    before = snapshot(api, "owner")

    r = call({})
    assert r.status_code == 401, r.text
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert snapshot(api, "owner") == before

    wrong = issue_key(api, "owner", tuple(s for s in SCOPES if s != scope))
    r = call(bearer(wrong))
    assert r.status_code == 403, r.text
    assert f'scope="{scope}"' in r.headers["WWW-Authenticate"]
    assert snapshot(api, "owner") == before

    r = call(bearer(keys["intruder"]))
    if (method, path) in OWN_WORKSPACE_ONLY:
        assert 200 <= r.status_code < 300, r.text
        if method == "get":
            assert r.json()["items"] == [] or all(
                item["id"] != owned.client and item.get("client_id") != owned.client
                for item in r.json()["items"]
            )
    else:
        assert r.status_code == 404, r.text  # never 403: that would confirm it exists
    assert snapshot(api, "owner") == before

    others = snapshot(api, "intruder")
    r = call(bearer(keys["owner"]))
    assert 200 <= r.status_code < 300, r.text
    if method == "get" and "items" in r.json():
        assert r.json()["items"], "the owner sees its own objects"
    assert snapshot(api, "intruder") == others


def test_the_worker_sends_each_workspace_s_mail_to_its_own_client(tenants) -> None:
    """Two workspaces with the same address: each message goes out once, from its own row."""
    api, keys, mailer = tenants
    ctx = api.app.state.ctx
    ids = {}
    for name in ("owner", "intruder"):
        clients = api.get("/clients", headers=bearer(keys[name])).json()["items"]
        shared = next(c for c in clients if c["email"].lower() == "shared@example.com")
        ids[name] = api.post(
            "/email/send",
            json={"client_id": shared["id"], "subject": f"from {name}", "body": "B"},
            headers=bearer(keys[name]),
        ).json()["id"]
    for mid in ids.values():
        ctx.pipeline.process(mid)
    wait_for(lambda: len(mailer.calls) == 2)
    subjects = {c.message_id: c.subject for c in mailer.calls}
    assert subjects == {ids["owner"]: "from owner", ids["intruder"]: "from intruder"}
    # Each workspace reads its own message's status, and only its own.
    for name, other in (("owner", "intruder"), ("intruder", "owner")):
        assert api.get(f"/email/{ids[name]}", headers=bearer(keys[name])).status_code == 200
        assert api.get(f"/email/{ids[other]}", headers=bearer(keys[name])).status_code == 404


def test_idempotency_keys_are_per_workspace(tenants) -> None:
    api, keys, _ = tenants
    made = {}
    for name in ("owner", "intruder"):
        client = api.post(
            "/clients", json={"name": "I", "email": "idem@example.com"}, headers=bearer(keys[name])
        ).json()["id"]
        made[name] = api.post(
            "/email/send",
            json={"client_id": client, "subject": "S", "body": "B"},
            headers={**bearer(keys[name]), "Idempotency-Key": "same-key"},
        )
    assert made["owner"].status_code == made["intruder"].status_code == 202
    assert made["owner"].json()["id"] != made["intruder"].json()["id"]
    assert "Idempotent-Replayed" not in made["intruder"].headers
