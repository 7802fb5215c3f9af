"""Phase 3 answers exactly as the monolith.

First, one scenario run twice and compared call by call; then the existing black-box
test files, run unchanged against the edge.

The scenario covers the black-box behaviour users rely on: status codes and error bodies
of every client, task and email operation, idempotency (replay, reuse with another
body), tenancy (another workspace's objects are 404), unsubscribe (then sends are
suppressed), the daily quota (429 + Retry-After), and sending exactly once. It runs
against the monolith and against the edge backed by both gRPC services (in-process, on
127.0.0.1:0), each time on a freshly truncated database so ids match, and the two
recordings must be identical apart from timestamps and provider message ids.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from app_helpers import bearer, issue_key, wait_for
from app_recording import RecordingMailer
from fastapi.testclient import TestClient
from openapi_server.apikeys import get_or_create_workspace
from openapi_server.config import Settings
from openapi_server.db import Database
from openapi_server.main import create_app
from openapi_server.unsubscribe import make_token
from rpc_harness import ANSWER_DEADLINE_S, running_services
from sqlalchemy import text

TERMINAL = ("sent", "failed", "suppressed")
VOLATILE = ("created_at", "updated_at")


def _normal(value: Any) -> Any:
    """Timestamps differ between runs; provider ids are random: keep only their presence."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in VOLATILE:
                out[k] = "<time>"
            elif k == "provider_message_id":
                out[k] = v is not None
            else:
                out[k] = _normal(v)
        return out
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


class Recorder:
    def __init__(self, api: TestClient) -> None:
        self.api = api
        self.log: list[tuple[str, int, Any, dict[str, Any]]] = []

    def __call__(self, label: str, method: str, path: str, **kwargs: Any) -> Any:
        r = self.api.request(method, path, **kwargs)
        headers = {
            "Idempotent-Replayed": r.headers.get("Idempotent-Replayed"),
            "Retry-After": "Retry-After" in r.headers,
        }
        body = (
            r.json() if r.headers.get("content-type", "").startswith("application/json") else None
        )
        self.log.append((label, r.status_code, _normal(body), headers))
        return body


def _truncate(db: Database) -> None:
    tables = (
        "sns_notifications, suppressions, email_messages, tasks, clients, api_keys,"
        " send_counts, workspace_unsubscribes, workspaces"
    )
    with db.primary.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


def scenario(api: TestClient, settings: Settings, mailer: RecordingMailer) -> Recorder:
    db = api.app.state.ctx.db  # type: ignore[attr-defined]
    a, b = bearer(issue_key(api, "a")), bearer(issue_key(api, "b"))
    with db.session() as s:
        get_or_create_workspace(s, "a").daily_send_quota = 4
        s.commit()
    call = Recorder(api)

    call("no credentials", "GET", "/clients")
    c1 = call(
        "create",
        "POST",
        "/clients",
        headers=a,
        json={"name": "Ann", "email": "Ann@Example.com", "company": "Acme"},
    )
    call(
        "create taken address",
        "POST",
        "/clients",
        headers=a,
        json={"name": "X", "email": "ann@example.COM"},
    )
    call(
        "same address, other workspace",
        "POST",
        "/clients",
        headers=b,
        json={"name": "Bo", "email": "ann@example.com"},
    )
    call("create bad email", "POST", "/clients", headers=a, json={"name": "X", "email": "nope"})
    call(
        "create extra field",
        "POST",
        "/clients",
        headers=a,
        json={"name": "X", "email": "x@example.com", "vip": True},
    )
    c2 = call(
        "create second",
        "POST",
        "/clients",
        headers=a,
        json={"name": "Cy", "email": "cy@example.com"},
    )
    call("list", "GET", "/clients", headers=a, params={"limit": 10})
    call("list page 2", "GET", "/clients", headers=a, params={"limit": 1, "offset": 1})
    call("list other workspace", "GET", "/clients", headers=b)
    call("list bad limit", "GET", "/clients", headers=a, params={"limit": 0})
    call("get", "GET", f"/clients/{c1['id']}", headers=a)
    call("get missing", "GET", "/clients/999999", headers=a)
    call("get other workspace's", "GET", f"/clients/{c1['id']}", headers=b)
    call("patch company null", "PATCH", f"/clients/{c2['id']}", headers=a, json={"company": None})
    call("patch name", "PATCH", f"/clients/{c2['id']}", headers=a, json={"name": "Cyd"})
    call(
        "patch email taken",
        "PATCH",
        f"/clients/{c2['id']}",
        headers=a,
        json={"email": "ANN@example.com"},
    )
    call("patch name null", "PATCH", f"/clients/{c2['id']}", headers=a, json={"name": None})
    call("patch other workspace's", "PATCH", f"/clients/{c2['id']}", headers=b, json={"name": "Z"})

    t1 = call(
        "task",
        "POST",
        "/tasks",
        headers=a,
        json={"client_id": c1["id"], "title": "Call", "due_at": "2027-01-02T03:04:05.678901+02:00"},
    )
    call("task no due", "POST", "/tasks", headers=a, json={"client_id": c2["id"], "title": "Mail"})
    call(
        "task missing client", "POST", "/tasks", headers=a, json={"client_id": 999999, "title": "X"}
    )
    call(
        "task other workspace's client",
        "POST",
        "/tasks",
        headers=b,
        json={"client_id": c1["id"], "title": "X"},
    )
    call(
        "task bad due",
        "POST",
        "/tasks",
        headers=a,
        json={"client_id": c1["id"], "title": "X", "due_at": 5},
    )
    call("tasks", "GET", "/tasks", headers=a)
    call("tasks of client", "GET", "/tasks", headers=a, params={"client_id": c1["id"]})
    call("tasks other workspace", "GET", "/tasks", headers=b)
    call("get task", "GET", f"/tasks/{t1['id']}", headers=a)
    call("get task other workspace", "GET", f"/tasks/{t1['id']}", headers=b)
    call(
        "patch task", "PATCH", f"/tasks/{t1['id']}", headers=a, json={"done": True, "due_at": None}
    )
    call("patch task title", "PATCH", f"/tasks/{t1['id']}", headers=a, json={"title": "Call back"})
    call("patch task missing", "PATCH", "/tasks/999999", headers=a, json={"done": True})

    mail = {"client_id": c1["id"], "subject": "Hi", "body": "Hello"}
    k1 = {**a, "Idempotency-Key": "k1"}
    e1 = call("send", "POST", "/email/send", headers=k1, json=mail)
    # Replays answer the message's current status: wait until it stops changing.
    wait_for(lambda: api.get(f"/email/{e1['id']}", headers=a).json()["status"] in TERMINAL)
    call("send replay", "POST", "/email/send", headers=k1, json=mail)
    call("send key reused", "POST", "/email/send", headers=k1, json={**mail, "body": "Other"})
    call(
        "send missing client", "POST", "/email/send", headers=a, json={**mail, "client_id": 999999}
    )
    call("send other workspace's client", "POST", "/email/send", headers=b, json=mail)
    call("send bad subject", "POST", "/email/send", headers=a, json={**mail, "subject": "a\nb"})
    call("email status", "GET", f"/email/{e1['id']}", headers=a)
    call("email other workspace", "GET", f"/email/{e1['id']}", headers=b)
    call("email missing", "GET", "/email/999999", headers=a)

    token = make_token(settings.unsubscribe_secret, c2["id"], "cy@example.com", 3600)
    call("unsubscribe", "POST", f"/unsubscribe/{token}")
    call("unsubscribe again", "POST", f"/unsubscribe/{token}")
    call("unsubscribe bad token", "POST", f"/unsubscribe/{c2['id']}.1.abc")
    e2 = call(
        "send to unsubscribed",
        "POST",
        "/email/send",
        headers=a,
        json={**mail, "client_id": c2["id"]},
    )
    call("unsubscribed status", "GET", f"/email/{e2['id']}", headers=a)
    call("client after unsubscribe", "GET", f"/clients/{c2['id']}", headers=a)

    for n in range(4):  # quota 4: one used by e1; the suppressed send costs nothing
        call(
            f"send {n} against quota",
            "POST",
            "/email/send",
            headers=a,
            json={**mail, "body": f"n{n}"},
        )

    # Sent before its client is deleted (the delete takes the client's messages with it):
    # with Kafka between the request and the send, delivery is not immediate.
    wait_for(lambda: len(mailer.calls) >= 4, timeout=30)
    call("delete", "DELETE", f"/clients/{c1['id']}", headers=a)
    call("get deleted", "GET", f"/clients/{c1['id']}", headers=a)
    call("delete again", "DELETE", f"/clients/{c1['id']}", headers=a)
    call("delete other workspace's", "DELETE", f"/clients/{c2['id']}", headers=b)
    call("tasks after delete", "GET", "/tasks", headers=a)

    wait_for(lambda: len(mailer.calls) >= 4)
    assert max(mailer.per_message().values()) == 1  # each message sent once
    return call


@contextmanager
def _monolith(settings: Settings, mailer: RecordingMailer) -> Iterator[TestClient]:
    with TestClient(create_app(settings, mailer=mailer)) as api:
        yield api


@contextmanager
def _edge(settings: Settings, mailer: RecordingMailer) -> Iterator[TestClient]:
    settings = settings.with_(grpc_deadline_s=ANSWER_DEADLINE_S)  # answers, not deadlines
    with running_services(settings, mailer=mailer) as services:
        edge = services.edge_settings(settings)
        with TestClient(create_app(edge)) as api:
            assert api.app.state.ctx.remote is not None  # type: ignore[attr-defined]
            yield api


def test_phase3_edge_answers_exactly_as_the_monolith(pg_settings: Settings, clean_pg: None) -> None:
    recordings = []
    for mode in (_monolith, _edge):
        db = Database(pg_settings)
        _truncate(db)
        db.dispose()
        mailer = RecordingMailer()
        with mode(pg_settings, mailer) as api:
            recordings.append((scenario(api, pg_settings, mailer).log, len(mailer.calls)))
    (monolith, sent_monolith), (edge, sent_edge) = recordings
    assert len(monolith) == len(edge)
    for want, got in zip(monolith, edge, strict=True):
        assert got == want, f"{want[0]}: monolith {want[1:]} != edge {got[1:]}"
    assert sent_edge == sent_monolith
    # The scenario really exercises the error paths it claims to.
    statuses = {label: status for label, status, _, _ in monolith}
    assert statuses["create taken address"] == 409
    assert statuses["task missing client"] == 404
    assert statuses["send key reused"] == 422
    assert statuses["send 3 against quota"] == 429
    assert statuses["unsubscribe"] == 200
    assert statuses["no credentials"] == 401


@contextmanager
def _sharded_edge(settings: Settings, mailer: RecordingMailer) -> Iterator[TestClient]:
    """The services on the ShardRouter (two shards, a directory), sending through the
    shards' outboxes, Kafka and a consumer; the edge on the directory."""
    with running_services(settings, mailer=mailer, consume=True) as services:
        edge = services.edge_settings(settings.with_(queue_backend="inline"))
        with TestClient(create_app(edge)) as api:
            yield api


NOT_FOUND = re.compile(r"\b(client|task|email) [0-9]+ not found")


def _without_ids(value: Any) -> Any:
    """Ids differ by design (one allocator for every table across shards, instead of a
    sequence per table): compare everything else."""
    if isinstance(value, dict):
        return {
            k: "<id>" if k in ("id", "client_id") and isinstance(v, int) else _without_ids(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_without_ids(v) for v in value)
    if isinstance(value, str):
        return NOT_FOUND.sub(r"\1 <id> not found", value)
    return value


def test_phase3_on_two_shards_answers_as_the_monolith(
    pg_settings: Settings, clean_pg: None, sharded: Settings
) -> None:
    db = Database(pg_settings)
    _truncate(db)
    db.dispose()
    recordings = []
    for mode, settings in ((_monolith, pg_settings), (_sharded_edge, sharded)):
        mailer = RecordingMailer()
        with mode(settings, mailer) as api:
            recordings.append((scenario(api, settings, mailer).log, len(mailer.calls)))
    (monolith, sent_monolith), (edge, sent_edge) = recordings
    assert len(monolith) == len(edge)
    for want, got in zip(monolith, edge, strict=True):
        assert _without_ids(got) == _without_ids(want), f"{want[0]}: {want[1:]} != {got[1:]}"
    assert sent_edge == sent_monolith
    # The scenario's rows really are spread: clients, tasks and messages on both shards.
    placed: dict[str, int] = {}
    for n, url in enumerate(sharded.db_shards, start=1):
        shard = Database(sharded.with_(database_url=url))
        with shard.session() as s:
            placed[str(n)] = s.scalar(
                text(
                    "SELECT (SELECT count(*) FROM tasks) + (SELECT count(*) FROM email_messages)"
                    " + (SELECT count(*) FROM clients)"
                )
            )
        shard.dispose()
    assert placed["1"] > 0 and placed["2"] > 0, placed


# The black-box files whose every test must pass unchanged against the phase-3 edge.
BLACK_BOX = (
    "test_app_clients.py",
    "test_app_tasks.py",
    "test_app_input.py",
    "test_app_email.py",
    "test_app_quotas.py",
    "test_app_tenancy.py",
    "test_app_unsubscribe.py",
)


# Soak: every black-box test again, each behind its own services (minutes); the two-shard
# scenario above keeps the edge's answers checked against the monolith in `make test`.
@pytest.mark.soak
def test_the_black_box_suites_pass_against_the_phase3_edge() -> None:
    """The same files the monolith passes, with COLDREACH_TEST_PHASE=3 (see conftest.py)."""
    here = Path(__file__).parent
    env = {**os.environ, "COLDREACH_TEST_PHASE": "3"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *(str(here / f) for f in BLACK_BOX),
            *("-o", "addopts=", "-q", "-p", "no:cacheprovider"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:]
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in summary and "skipped" not in summary, summary


# GRPC_DEADLINE_S against services that do not answer, and the slack on top of it that the
# answer may take on a loaded machine (a hang guard: without the deadline it never comes).
DEADLINE_S = 2.0
HANG_SLACK_S = 8.0


@pytest.mark.parametrize("fault", ["down", "stalled"])
def test_services_that_do_not_answer_are_503_at_the_edge_within_the_deadline(
    pg_settings: Settings, clean_pg: None, fault: str
) -> None:
    """Never a 404 ("no such client") and never a hang: the service did not answer.

    Down: connection refused. Stalled: the port accepts connections, nothing answers.
    """
    stall = socket.socket()
    stall.bind(("127.0.0.1", 0))
    stall.listen(16)
    nowhere = f"127.0.0.1:{stall.getsockname()[1]}"
    if fault == "down":
        stall.close()
    edge = pg_settings.with_(
        client_service_addr=nowhere, campaign_service_addr=nowhere, grpc_deadline_s=DEADLINE_S
    )
    with stall, TestClient(create_app(edge)) as api:
        headers = bearer(issue_key(api, "a"))
        for method, path, body, service in (
            ("GET", "/clients", None, "client service"),
            ("GET", "/clients/1", None, "client service"),
            ("POST", "/tasks", {"client_id": 1, "title": "T"}, "campaign service"),
            (
                "POST",
                "/email/send",
                {"client_id": 1, "subject": "S", "body": "B"},
                "campaign service",
            ),
        ):
            started = time.monotonic()
            r = api.request(method, path, json=body, headers=headers)
            # The edge's deadline is the only bound (a stalled peer never answers): the
            # answer comes within it, with seconds of slack for a loaded machine.
            elapsed = time.monotonic() - started
            assert elapsed < DEADLINE_S + HANG_SLACK_S, (path, f"took {elapsed:.2f}s")
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert r.json()["detail"][0]["msg"] == f"{service} unavailable"
