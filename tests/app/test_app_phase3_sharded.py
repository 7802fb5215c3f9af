"""The phase-3 services on two PostgreSQL shards and a directory, behind the HTTP edge.

Clients land on both shards by bucket; ids come from the directory's allocator, so an id
names one row across shards; lookups by task or email id and workspace-wide lists go
across shards; a workspace's client addresses stay unique through the directory's index;
the daily quota and unsubscribes are global; a bucket being moved answers 503 with
Retry-After, and sends go through the per-shard outbox, Kafka (the mock cluster) and a
consumer that claims on the client's shard.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path

import boto3
import pytest
from app_helpers import authorize, wait_for
from app_recording import RecordingMailer
from botocore.stub import Stubber
from fastapi.testclient import TestClient
from openapi_server.apikeys import get_or_create_workspace
from openapi_server.config import Settings
from openapi_server.db import Client, EmailMessage, OutboxRecord, Task
from openapi_server.mailer import SesMailer
from openapi_server.main import create_app
from openapi_server.sharding import MOVING, ShardRouter, bucket_of
from openapi_server.sharding.directory import BucketMapRow, ClientEmailIndex, place_bucket
from openapi_server.unsubscribe import make_token
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind
from rpc_harness import Services, running_services
from sqlalchemy import delete, func, select

TERMINAL = ("sent", "failed", "suppressed")


def _rows(services: Services, model: type, **where: object) -> dict[str, set[int]]:
    """Ids of `model` rows per shard."""
    out: dict[str, set[int]] = {}
    for name, db in services.databases.items():
        with db.session() as s:
            stmt = select(model.id)  # type: ignore[attr-defined]
            for column, value in where.items():
                stmt = stmt.where(getattr(model, column) == value)
            out[name] = set(s.scalars(stmt))
    return out


def _edge(services: Services, settings: Settings) -> TestClient:
    return TestClient(create_app(services.edge_settings(settings.with_(queue_backend="inline"))))


def test_clients_tasks_and_email_across_two_shards(sharded: Settings) -> None:
    mailer = RecordingMailer()
    with running_services(sharded, mailer=mailer, consume=True) as services:
        router: ShardRouter = services.sessions.router  # type: ignore[attr-defined]
        with _edge(services, sharded) as api:
            authorize(api, "acme")
            with api.app.state.ctx.db.session() as s:  # type: ignore[attr-defined]
                get_or_create_workspace(s, "acme").daily_send_quota = 3
                s.commit()
            made = [
                api.post("/clients", json={"name": f"C{i}", "email": f"c{i}@example.com"})
                for i in range(16)
            ]
            assert [r.status_code for r in made] == [201] * 16
            ids = [r.json()["id"] for r in made]
            assert len(set(ids)) == 16

            # Each client on exactly the shard its bucket maps to, and both shards used.
            placed = _rows(services, Client)
            assert placed["1"] and placed["2"] and not placed["1"] & placed["2"]
            for cid in ids:
                assert cid in placed[router.shard_of(cid)]

            # Unique per workspace across shards: the directory's index refuses the address
            # whichever shard the new id would land on (each attempt takes a fresh id).
            for _ in range(4):
                taken = api.post("/clients", json={"name": "X", "email": "C3@Example.com"})
                assert taken.status_code == 409, taken.text
            assert _rows(services, Client) == placed  # nothing written

            # Lists merge the shards in id order; pages never repeat or skip a client.
            full = api.get("/clients", params={"limit": 50}).json()
            assert full["total"] == 16 and [c["id"] for c in full["items"]] == sorted(ids)
            paged = [
                c["id"]
                for off in range(0, 16, 5)
                for c in api.get("/clients", params={"limit": 5, "offset": off}).json()["items"]
            ]
            assert paged == sorted(ids)

            # Tasks on clients of both shards; found by id wherever they live.
            one = next(c for c in ids if router.shard_of(c) == "1")
            two = next(c for c in ids if router.shard_of(c) == "2")
            tasks = [
                api.post("/tasks", json={"client_id": cid, "title": f"T{cid}"}).json()
                for cid in (one, two, two)
            ]
            assert _rows(services, Task)["2"] == {tasks[1]["id"], tasks[2]["id"]}
            got = api.get(f"/tasks/{tasks[2]['id']}")
            assert got.status_code == 200 and got.json()["client_id"] == two
            patched = api.patch(f"/tasks/{tasks[1]['id']}", json={"done": True})
            assert patched.status_code == 200 and patched.json()["done"] is True
            listed = api.get("/tasks").json()
            assert [t["id"] for t in listed["items"]] == sorted(t["id"] for t in tasks)
            assert listed["total"] == 3
            assert api.get("/tasks", params={"client_id": two}).json()["total"] == 2
            assert api.get("/tasks/999999999").status_code == 404

            # Sends on both shards: outbox on the client's shard, Kafka, consumer, mailer.
            sent = []
            for cid in (one, two):
                r = api.post("/email/send", json={"client_id": cid, "subject": "S", "body": "B"})
                assert r.status_code == 202, r.text
                sent.append(r.json()["id"])
            for mid in sent:
                wait_for(
                    lambda mid=mid: api.get(f"/email/{mid}").json()["status"] in TERMINAL,
                    timeout=30,
                )
                assert api.get(f"/email/{mid}").json()["status"] == "sent"
            assert _rows(services, EmailMessage) == {"1": {sent[0]}, "2": {sent[1]}}
            outboxes = _rows(services, OutboxRecord)
            assert outboxes["1"] and outboxes["2"]
            assert sorted(mailer.per_message()) == sorted(sent)

            # Unsubscribe and the quota are global (the directory), not per shard.
            email = api.get(f"/clients/{two}").json()["email"]
            token = make_token(sharded.unsubscribe_secret, two, email, 3600)
            assert api.post(f"/unsubscribe/{token}").status_code == 200
            assert api.get(f"/clients/{two}").json()["status"] == "unsubscribed"
            suppressed = api.post(
                "/email/send", json={"client_id": two, "subject": "S", "body": "again"}
            )
            assert suppressed.json()["status"] == "suppressed"
            third = api.post("/email/send", json={"client_id": one, "subject": "S", "body": "3"})
            assert third.status_code == 202
            other = next(c for c in ids if router.shard_of(c) == "2" and c != two)
            over = api.post("/email/send", json={"client_id": other, "subject": "S", "body": "4"})
            assert over.status_code == 429 and "Retry-After" in over.headers

            # Deleting a client frees its address in the workspace.
            assert api.delete(f"/clients/{one}").status_code == 204
            again = api.post(
                "/clients", json={"name": "Back", "email": f"c{ids.index(one)}@example.com"}
            )
            assert again.status_code == 201
            with router.directory() as d:
                holders = d.scalars(select(ClientEmailIndex.client_id)).all()
            assert sorted(holders) == sorted([*(c for c in ids if c != one), again.json()["id"]])


def test_a_moving_bucket_is_503_with_retry_after_and_reads_go_on(sharded: Settings) -> None:
    with running_services(sharded) as services:
        router: ShardRouter = services.sessions.router  # type: ignore[attr-defined]
        with _edge(services, sharded) as api:
            authorize(api, "moving")
            cid = api.post("/clients", json={"name": "M", "email": "m@example.com"}).json()["id"]
            with router.directory() as d:
                place_bucket(d, bucket_of(cid), router.shard_of(cid), MOVING)
                d.commit()
            try:
                for method, path, body in (
                    ("PATCH", f"/clients/{cid}", {"name": "N"}),
                    ("POST", "/tasks", {"client_id": cid, "title": "T"}),
                    ("POST", "/email/send", {"client_id": cid, "subject": "S", "body": "B"}),
                    ("DELETE", f"/clients/{cid}", None),
                ):
                    r = api.request(method, path, json=body)
                    assert r.status_code == 503, (path, r.status_code, r.text)
                    assert int(r.headers["Retry-After"]) >= 1
                    assert r.json()["detail"][0]["type"] == "bucket_moving"
                assert api.get(f"/clients/{cid}").json()["name"] == "M"
            finally:
                with router.directory() as d:
                    d.execute(delete(BucketMapRow))
                    d.commit()
            assert api.patch(f"/clients/{cid}", json={"name": "N"}).status_code == 200
            with router.shards()[router.shard_of(cid)].session() as s:
                mine = select(func.count()).select_from(Task).where(Task.client_id == cid)
                assert s.scalar(mine) == 0  # the refused task left nothing behind


def test_create_task_on_shards_refuses_a_missing_client_and_a_silent_client_service(
    sharded: Settings,
) -> None:
    """On shards CreateTask draws the task's id while GetClient runs: a missing client
    (404) and a Client Service that is down (503) still write nothing."""
    with running_services(sharded) as services, _edge(services, sharded) as api:
        authorize(api, "missing")
        r = api.post("/tasks", json={"client_id": 987654, "title": "T"})
        assert r.status_code == 404, r.text
        assert r.json()["detail"][0]["loc"] == ["body", "client_id"]
        cid = api.post("/clients", json={"name": "C", "email": "c@example.com"}).json()["id"]
        assert api.post("/tasks", json={"client_id": cid, "title": "T"}).status_code == 201
        services.clients.stop(0)  # the Client Service is gone; the Campaign Service is not
        r = api.post("/tasks", json={"client_id": cid, "title": "T"})
        assert r.status_code == 503, r.text
        assert sum(map(len, _rows(services, Task).values())) == 1


def test_an_idempotency_key_reused_for_a_client_on_another_shard_is_refused(
    sharded: Settings,
) -> None:
    with running_services(sharded) as services:
        router: ShardRouter = services.sessions.router  # type: ignore[attr-defined]
        with _edge(services, sharded) as api:
            authorize(api, "keys")
            made = [
                api.post("/clients", json={"name": "K", "email": f"k{i}@example.com"}).json()["id"]
                for i in range(8)
            ]
            one = next(c for c in made if router.shard_of(c) == "1")
            two = next(c for c in made if router.shard_of(c) == "2")
            mail = {"subject": "S", "body": "B"}
            keyed = {"Idempotency-Key": "k-1"}
            first = api.post("/email/send", headers=keyed, json={**mail, "client_id": one})
            assert first.status_code == 202
            replay = api.post("/email/send", headers=keyed, json={**mail, "client_id": one})
            assert replay.headers.get("Idempotent-Replayed") == "true"
            assert replay.json()["id"] == first.json()["id"]
            reused = api.post("/email/send", headers=keyed, json={**mail, "client_id": two})
            assert reused.status_code == 422, reused.text
            assert reused.json()["detail"][0]["type"] == "idempotency_key_reused"
            assert _rows(services, EmailMessage)["2"] == set()


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """The process's SDK provider (installed once per process: the relay, the consumer and
    the sender trace through the global one) with an exporter of this test's own."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    yield provider, exporter
    processor.shutdown()


def _ses(settings: Settings) -> tuple[SesMailer, Stubber]:
    client = boto3.client(
        "sesv2", region_name="eu-west-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    stub = Stubber(client)
    stub.add_response("send_email", {"MessageId": "ses-1"})
    stub.activate()
    return SesMailer(
        settings.with_(aws_region="eu-west-1", mail_from="sales@reach.example.com"), client=client
    ), stub


def test_one_send_is_one_trace_from_http_through_kafka_to_ses(
    sharded: Settings, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    mailer, stub = _ses(sharded)
    with running_services(sharded, provider=provider, mailer=mailer, consume=True) as services:
        edge = services.edge_settings(sharded.with_(queue_backend="inline"))
        with TestClient(create_app(edge, tracer_provider=provider)) as api:
            authorize(api, "traced")
            cid = api.post("/clients", json={"name": "T", "email": "t@example.com"}).json()["id"]
            exporter.clear()
            r = api.post("/email/send", json={"client_id": cid, "subject": "S", "body": "B"})
            assert r.status_code == 202, r.text
            mid = r.json()["id"]
            wait_for(lambda: api.get(f"/email/{mid}").json()["status"] != "queued", timeout=30)
            assert api.get(f"/email/{mid}").json()["status"] == "sent", api.get(
                f"/email/{mid}"
            ).text
            stub.assert_no_pending_responses()
    finished = exporter.get_finished_spans()
    topic = sharded.kafka.send_topic

    def one(name: str, kind: SpanKind) -> ReadableSpan:
        found = [s for s in finished if s.name == name and s.kind == kind]
        assert len(found) == 1, (name, kind, [(s.name, s.kind) for s in finished])
        return found[0]

    http = one("POST /email/send", SpanKind.SERVER)
    send_rpc = "/coldreach.campaigns.v1.CampaignService/SendEmail"
    chain = [
        http,
        one(send_rpc, SpanKind.CLIENT),  # the edge's call
        one(send_rpc, SpanKind.SERVER),  # the Campaign Service (stages the outbox row)
        one(f"{topic} publish", SpanKind.PRODUCER),  # the relay of the client's shard
        one(f"{topic} process", SpanKind.CONSUMER),  # the consumer
        one("email send", SpanKind.INTERNAL),  # the worker's pipeline
        one("SESV2.SendEmail", SpanKind.CLIENT),  # the mailer's SES call
    ]
    trace_id = _ctx(http).trace_id
    assert {_ctx(s).trace_id for s in chain} == {trace_id}
    for parent, child in itertools.pairwise(chain):
        # Each hop is under the one before it (through HTTP middleware spans at most).
        ancestors = _ancestors(child, finished)
        assert _ctx(parent).span_id in ancestors, (parent.name, child.name)
    ses = chain[-1]
    assert ses.attributes is not None and ses.attributes["rpc.system"] == "aws-api"
    # Nothing of this send started a trace of its own (the status polls are their own).
    of_send = {s.name for s in chain}
    others = {(s.name, s.kind) for s in finished if _ctx(s).trace_id != trace_id}
    assert not {name for name, _ in others} & (of_send - {"POST /email/send"}), others


def _ctx(span: ReadableSpan) -> SpanContext:
    assert span.context is not None
    return span.context


def _ancestors(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> set[int]:
    by_id = {_ctx(s).span_id: s for s in spans}
    out: set[int] = set()
    parent = span.parent
    while parent is not None:
        out.add(parent.span_id)
        above = by_id.get(parent.span_id)
        parent = above.parent if above is not None else None
    return out


def test_settings_as_the_kubernetes_workloads_set_them() -> None:
    """The names the phase-3 Kubernetes workloads set: shards and directory without
    passwords, IAM sign-in, the gRPC port in GRPC_PORT, Kafka on MSK."""
    shard = "postgresql://coldreach_app@shard{n}.rds:5432/coldreach"
    env = {
        "AWS_REGION": "eu-west-1",
        "GRPC_PORT": "50052",
        "DB_HOST": "shard1.rds",  # today's name for shard 1: not where global data lives
        "DB_NAME": "coldreach",
        "DB_DIRECTORY": "postgresql://coldreach_app@shard1.rds:5432/coldreach_directory",
        "DB_SHARD_1": shard.format(n=1),
        "DB_SHARD_2": shard.format(n=2),
        "DB_IAM_AUTH": "1",
        "DB_USER": "coldreach_app",
        "QUEUE_BACKEND": "kafka",
        "KAFKA_BOOTSTRAP_SERVERS": "b-1.msk:9098",
        "KAFKA_AUTH": "iam",
        "KAFKA_CREATE_TOPICS": "0",
    }
    s = Settings.from_env(env)
    assert s.grpc_port == 50052
    assert s.database_url.database == "coldreach_directory"  # API keys, workspaces
    assert [u.host for u in s.db_shards] == ["shard1.rds", "shard2.rds"]
    for url in (*s.db_shards, s.database_url):
        assert url.query["sslmode"] == "require" and url.username == "coldreach_app"
    assert s.kafka.auth == "iam" and not s.kafka.create_topics


def test_phase_3_on_one_machine_defaults_to_sqlite_shards(tmp_path: Path) -> None:
    s = Settings.from_env({"PHASE": "3", "DATA_DIR": str(tmp_path)})
    assert [u.database for u in s.db_shards] == [
        str(tmp_path / "shard1.db"),
        str(tmp_path / "shard2.db"),
    ]
    assert s.database_url.database == str(tmp_path / "directory.db") and s.auto_migrate
    # Phases 1 and 2 keep their one database.
    assert Settings.from_env({"DATA_DIR": str(tmp_path)}).db_shards == ()
    assert Settings.from_env({"PHASE": "3", "DATABASE_URL": "postgresql://h/d"}).db_shards == ()
