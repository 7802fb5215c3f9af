"""QUEUE_BACKEND=kafka on librdkafka's mock cluster and this machine's PostgreSQL.

The outbox row commits with the message; relays publish every row (several at once,
none twice in the normal case); consumers store offsets only after the outcome is in
the database; retries come back through the sweeper; poison records go to the DLQ.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from app_helpers import authorize, bearer, create_database, drop_database, wait_for
from app_kafka import fresh_kafka, read_topic, running_consumer
from app_recording import RecordingMailer
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from fastapi.testclient import TestClient
from openapi_server.apikeys import create_key
from openapi_server.cli import main as cli_main
from openapi_server.config import ConfigError, Settings
from openapi_server.db import Database, EmailMessage, utcnow
from openapi_server.kafka.clients import MockCluster, base_config, msk_iam_token
from openapi_server.kafka.offsets import PartitionOffsets
from openapi_server.kafka.outbox import stage, stage_due
from openapi_server.kafka.records import PoisonRecord, SendRecord, carrier_of, decode
from openapi_server.kafka.relay import Claimed, Relay, RelayThread
from openapi_server.kafka.topics import AdminTopics, AutoCreatedTopics, Topics, topic_admin
from openapi_server.mailer import TransientMailerError
from openapi_server.main import create_app
from openapi_server.migrate import upgrade
from openapi_server.pipeline import Pipeline
from openapi_server.principal import SCOPES
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import text

# -- pure pieces -------------------------------------------------------------------------


def test_offsets_never_pass_a_record_still_in_flight() -> None:
    p = PartitionOffsets()
    for offset in (5, 6, 7, 8):
        p.started(offset)
    assert p.finished(7) is None  # 5 and 6 are not done: nothing may be committed
    assert p.finished(6) is None
    assert p.finished(5) == 8  # 5..7 done, 8 still in flight: next to read is 8
    assert p.in_flight == 1
    assert p.finished(8) == 9
    p.started(9)
    p.started(10)
    assert p.finished(10) is None
    assert p.finished(9) == 11


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "empty"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"message_id": "7", "client_id": 1}', "message_id must be an integer"),
        (b'{"message_id": 7}', "client_id must be an integer"),
        (b'{"message_id": 0, "client_id": 1}', "message_id must be an integer"),
        (b'{"message_id": 2147483648, "client_id": 1}', "message_id must be an integer"),
        (b'{"message_id": true, "client_id": 1}', "message_id must be an integer"),
        (b'{"v": 2, "message_id": 7, "client_id": 1}', "unknown record version"),
    ],
)
def test_records_that_cannot_be_acted_on_are_poison(value: bytes, reason: str) -> None:
    with pytest.raises(PoisonRecord, match=reason):
        decode(value)


def test_record_round_trip_is_keyed_by_client() -> None:
    record = SendRecord(message_id=42, client_id=7)
    assert record.key == b"7"
    assert decode(record.value()) == record
    assert json.loads(record.value()) == {"v": 1, "message_id": 42, "client_id": 7}


def test_kafka_settings_are_checked_at_start() -> None:
    env = {"QUEUE_BACKEND": "kafka"}
    with pytest.raises(ConfigError, match="KAFKA_BOOTSTRAP_SERVERS"):
        Settings.from_env(env)
    with pytest.raises(ConfigError, match="KAFKA_SEND_TOPIC"):
        Settings.from_env(env | {"KAFKA_MOCK_BROKERS": "1", "KAFKA_SEND_TOPIC": "bad topic"})
    with pytest.raises(ConfigError, match="must differ"):
        Settings.from_env(env | {"KAFKA_MOCK_BROKERS": "1", "KAFKA_DLQ_TOPIC": "email.send.v1"})
    s = Settings.from_env(env | {"KAFKA_BOOTSTRAP_SERVERS": "b-1:9098", "KAFKA_AUTH": "iam"})
    assert s.kafka.tls and s.kafka.create_topics and s.kafka.send_topic == "email.send.v1"
    # The mock cluster cannot create topics through the admin API.
    assert not Settings.from_env(env | {"KAFKA_MOCK_BROKERS": "1"}).kafka.create_topics


def test_msk_iam_uses_oauthbearer_with_a_signed_token_in_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    settings = Settings.from_env(
        {
            "QUEUE_BACKEND": "kafka",
            "KAFKA_BOOTSTRAP_SERVERS": "b-1.msk.example:9098",
            "KAFKA_AUTH": "iam",
            "AWS_REGION": "eu-west-1",
        }
    )
    conf = base_config(settings, "test")
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["sasl.mechanisms"] == "OAUTHBEARER"
    token, expiry = conf["oauth_cb"]("")
    import base64
    from urllib.parse import parse_qs, urlparse

    url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    parsed = urlparse(url)
    assert parsed.hostname == "kafka.eu-west-1.amazonaws.com"
    query = parse_qs(parsed.query)
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Credential"][0].startswith("AKIDEXAMPLE/")
    # librdkafka wants seconds since the epoch; the signer returns milliseconds.
    assert time.time() < expiry < time.time() + 3600
    assert msk_iam_token("eu-west-1")[1] < 1e11


# -- the outbox ------------------------------------------------------------------------


def _outbox(db: Database) -> list[Any]:
    with db.primary.connect() as conn:
        return list(conn.execute(text("SELECT * FROM kafka_outbox ORDER BY id")))


def _message_status(db: Database, mid: int) -> str:
    with db.primary.connect() as conn:
        return conn.execute(
            text("SELECT status FROM email_messages WHERE id = :id"), {"id": mid}
        ).scalar_one()


@pytest.fixture
def held_kafka_api(kafka_settings: Settings):
    """The API on the Kafka backend with its relay stopped: the test publishes."""
    with TestClient(create_app(kafka_settings, mailer=RecordingMailer())) as api:
        authorize(api)
        api.app.state.ctx.queue.stop()  # type: ignore[attr-defined]
        yield api


def _new_client(api: TestClient, email: str) -> int:
    return api.post("/clients", json={"name": "K", "email": email}).json()["id"]


def test_send_writes_the_outbox_row_in_the_message_transaction(
    held_kafka_api: TestClient,
) -> None:
    api = held_kafka_api
    db: Database = api.app.state.ctx.db  # type: ignore[attr-defined]
    cid = _new_client(api, "o@example.com")
    payload = {"client_id": cid, "subject": "S", "body": "B"}
    first = api.post("/email/send", json=payload, headers={"Idempotency-Key": "k1"})
    again = api.post("/email/send", json=payload, headers={"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 202
    rows = _outbox(db)
    assert [(r.message_id, r.client_id, r.published_at) for r in rows] == [
        (first.json()["id"], cid, None)
    ]  # one row: the replay wrote nothing

    # A suppressed message is final at once: nothing to publish.
    with db.primary.begin() as conn:  # the address bounced
        conn.execute(
            text(
                "INSERT INTO suppressions (email_key, reason, created_at)"
                " VALUES ('o@example.com', 'bounced', now())"
            )
        )
    assert api.post("/email/send", json=payload).json()["status"] == "suppressed"
    # A request the database refuses leaves neither a message nor an outbox row.
    assert api.post("/email/send", json=payload | {"client_id": 999_999}).status_code == 404
    assert len(_outbox(db)) == 1


@pytest.fixture(params=["postgresql", "sqlite"])
def any_kafka_settings(request: pytest.FixtureRequest, kafka_mock: MockCluster) -> Settings:
    """Kafka on this machine's PostgreSQL, and on the embedded SQLite (local runs)."""
    if request.param == "postgresql":
        return request.getfixturevalue("kafka_settings")
    sqlite: Settings = request.getfixturevalue("sqlite_settings")
    return sqlite.with_(queue_backend="kafka", kafka=fresh_kafka(kafka_mock.bootstrap_servers))


def test_api_relay_consumer_end_to_end(any_kafka_settings: Settings) -> None:
    # The brokers are up: a generous readiness bound, so a loaded machine's slow first
    # metadata answer is not taken for an unreachable broker.
    kafka_settings = any_kafka_settings.with_(broker_timeout_s=30.0)
    mailer = RecordingMailer()
    with TestClient(create_app(kafka_settings, mailer=mailer)) as api:
        authorize(api)
        ctx = api.app.state.ctx  # type: ignore[attr-defined]
        ctx.queue.check()  # readiness: the brokers answer
        assert api.get("/readyz").status_code == 200
        cid = _new_client(api, "e2e@example.com")
        mid = api.post("/email/send", json={"client_id": cid, "subject": "S", "body": "B"}).json()[
            "id"
        ]
        with running_consumer(kafka_settings, ctx.pipeline):
            wait_for(lambda: api.get(f"/email/{mid}").json()["status"] == "sent", timeout=30)
        assert mailer.per_message() == {mid: 1}
        (row,) = _outbox(ctx.db)
        assert row.published_at is not None and row.lease_until is None
    (record,) = read_topic(
        kafka_settings.kafka.bootstrap_servers, kafka_settings.kafka.send_topic, expected=1
    )
    assert record.key() == str(cid).encode()
    assert decode(record.value()) == SendRecord(mid, cid)


def test_readiness_reports_an_unreachable_broker(kafka_settings: Settings) -> None:
    closed = _closed_port()
    settings = kafka_settings.with_(kafka=fresh_kafka(f"127.0.0.1:{closed}"), broker_timeout_s=0.5)
    with TestClient(create_app(settings, mailer=RecordingMailer())) as api:
        r = api.get("/readyz")
        assert r.status_code == 503 and "broker unavailable" in r.text


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_relays_publish_every_row_and_none_twice(
    kafka_settings: Settings, held_kafka_api: TestClient
) -> None:
    api = held_kafka_api
    db: Database = api.app.state.ctx.db  # type: ignore[attr-defined]
    cid = _new_client(api, "relay@example.com")
    ws = _workspace_of(db, cid)
    n = 3000
    _bulk_messages(db, ws, [cid] * n)
    # Leases outlive the gate's hang guard: a lapsed lease would hand leased rows to the
    # other relay and look like a double publish.
    settings = kafka_settings.with_(
        kafka=replace(kafka_settings.kafka, outbox_batch=200, outbox_lease_s=120.0)
    )
    # Each relay holds its first batch until the other has claimed one too, so neither
    # can drain the outbox before the other has started, and the second claim is made
    # while the first relay's rows are leased and unpublished.
    turn = threading.Lock()
    gate = threading.Barrier(2, timeout=60)  # the timeout is a hang guard only
    relays = [RelayThread(_GatedRelay(settings, {"default": db}, turn, gate)) for _ in range(2)]
    for r in relays:
        r.start()
    try:
        wait_for(lambda: _unpublished(db) == 0, timeout=60, interval=0.2)
    finally:
        for r in relays:
            r.stop()
    assert not gate.broken  # both relays met at the gate
    with db.primary.connect() as conn:
        rows = conn.execute(
            text("SELECT leased_by, count(*) FROM kafka_outbox GROUP BY leased_by")
        ).all()
    by_relay = {relay: count for relay, count in rows}
    assert sum(by_relay.values()) == n
    assert len(by_relay) == 2, by_relay  # both relays took part
    records = read_topic(settings.kafka.bootstrap_servers, settings.kafka.send_topic, expected=n)
    counts = Counter(decode(m.value()).message_id for m in records)
    assert len(counts) == n and max(counts.values()) == 1


class _GatedRelay(Relay):
    """A relay that, after claiming its first batch, waits for the other relay's first.

    The first claims are made one after the other (`turn`): the second is committed
    while the first relay's rows are leased, unpublished and no longer row-locked, so
    only the lease keeps the second relay off them.
    """

    def __init__(
        self,
        settings: Settings,
        databases: dict[str, Database],
        turn: threading.Lock,
        gate: threading.Barrier,
    ) -> None:
        super().__init__(settings, databases)
        self.turn = turn
        self.gate = gate
        self.gated = False

    def _claim(self, db: Database) -> list[Claimed]:
        if self.gated:
            return super()._claim(db)
        with self.turn:
            rows = super()._claim(db)
        if rows:
            self.gated = True
            self.gate.wait()
        return rows


def _workspace_of(db: Database, cid: int) -> int:
    with db.primary.connect() as conn:
        return conn.execute(
            text("SELECT workspace_id FROM clients WHERE id = :id"), {"id": cid}
        ).scalar_one()


def _unpublished(db: Database) -> int:
    with db.primary.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM kafka_outbox WHERE published_at IS NULL")
        ).scalar_one()


def _bulk_messages(db: Database, workspace_id: int, client_ids: list[int]) -> list[int]:
    """Queued messages with their outbox rows, as the API writes them, in one transaction."""
    with db.primary.begin() as conn:
        ids = [
            r.id
            for r in conn.execute(
                text(
                    "INSERT INTO email_messages (workspace_id, client_id, to_address, subject,"
                    " body, status, attempts, needs_reconciliation, enqueued_at, created_at,"
                    " updated_at)"
                    " SELECT :ws, c.id, c.email, 'S', 'B', 'queued', 0, false, now(), now(), now()"
                    " FROM unnest(CAST(:cids AS int[])) WITH ORDINALITY AS u(cid, n)"
                    " JOIN clients c ON c.id = u.cid ORDER BY u.n RETURNING id, client_id"
                ),
                {"ws": workspace_id, "cids": client_ids},
            )
        ]
        conn.execute(
            text(
                "INSERT INTO kafka_outbox (message_id, client_id, created_at, attempts)"
                " SELECT id, client_id, now(), 0 FROM email_messages WHERE id = ANY(:ids)"
            ),
            {"ids": ids},
        )
    return ids


def test_retry_comes_back_through_the_sweeper_when_due(
    kafka_settings: Settings, held_kafka_api: TestClient
) -> None:
    api = held_kafka_api
    ctx = api.app.state.ctx  # type: ignore[attr-defined]
    mailer = RecordingMailer(failures=[TransientMailerError("throttled")])
    settings = kafka_settings.with_(retry_backoff_base_s=0.5, sweep_interval_s=0.1)
    pipeline = Pipeline(ctx.db, mailer, settings)
    cid = _new_client(api, "retry@example.com")
    mid = api.post("/email/send", json={"client_id": cid, "subject": "S", "body": "B"}).json()["id"]
    relay = RelayThread(Relay(settings, {"default": ctx.db}, sweep=True))
    relay.start()
    try:
        with running_consumer(settings, pipeline):
            wait_for(lambda: _message_status(ctx.db, mid) == "sent", timeout=30)
    finally:
        relay.stop()
    assert mailer.per_message() == {mid: 2}
    rows = _outbox(ctx.db)
    assert len(rows) == 2  # the request's record and the retry's, staged when due
    assert rows[1].created_at >= rows[0].created_at + timedelta(seconds=0.25)


def test_sweeper_stages_only_due_or_lost_rows(
    kafka_settings: Settings, held_kafka_api: TestClient
) -> None:
    api = held_kafka_api
    db: Database = api.app.state.ctx.db  # type: ignore[attr-defined]
    cid = _new_client(api, "sweep@example.com")
    ids = _bulk_messages(db, _workspace_of(db, cid), [cid] * 5)
    now = utcnow()
    with db.primary.begin() as conn:
        # Only the last one's outbox row is still unpublished (Kafka was unreachable).
        conn.execute(text("DELETE FROM kafka_outbox WHERE message_id <> :last"), {"last": ids[4]})
        updates = {
            ids[0]: (now - timedelta(seconds=5), now - timedelta(seconds=1)),  # retry due
            ids[1]: (now - timedelta(seconds=5), now + timedelta(seconds=60)),  # retry not due
            ids[2]: (now - timedelta(hours=1), None),  # its record was lost long ago
            ids[3]: (now, None),  # just enqueued: its record is on its way
            ids[4]: (now - timedelta(hours=1), None),  # old, but its row is still waiting
        }
        for mid, (enqueued, due) in updates.items():
            conn.execute(
                text(
                    "UPDATE email_messages SET enqueued_at = :e, next_attempt_at = :d WHERE id = :i"
                ),
                {"e": enqueued, "d": due, "i": mid},
            )
    with db.primary.begin() as conn:
        report = stage_due(conn, sending_timeout_s=300, requeue_after_s=600, now=now)
    assert report.staged == 2
    assert sorted(r.message_id for r in _outbox(db)) == [ids[0], ids[2], ids[4]]
    with db.primary.begin() as conn:  # staged rows are marked: a second pass adds nothing
        assert stage_due(conn, sending_timeout_s=300, requeue_after_s=600, now=now).staged == 0


def test_poison_record_goes_to_the_dlq_and_the_partition_moves_on(
    kafka_settings: Settings, held_kafka_api: TestClient
) -> None:
    api = held_kafka_api
    ctx = api.app.state.ctx  # type: ignore[attr-defined]
    kafka = kafka_settings.kafka
    cid = _new_client(api, "poison@example.com")
    mid = api.post("/email/send", json={"client_id": cid, "subject": "S", "body": "B"}).json()["id"]
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    # Same key as the good record: the same partition, the poison first.
    producer.produce(kafka.send_topic, key=str(cid).encode(), value=b"{not json")
    producer.flush(10)
    mailer = RecordingMailer()
    pipeline = Pipeline(ctx.db, mailer, kafka_settings)
    relay = RelayThread(Relay(kafka_settings, {"default": ctx.db}))
    with running_consumer(kafka_settings, pipeline, sessions=lambda _cid: ctx.db.session()) as c:
        relay.start()
        try:
            wait_for(lambda: _message_status(ctx.db, mid) == "sent", timeout=30)
            wait_for(lambda: c.dead_lettered == 1, timeout=10)
        finally:
            relay.stop()
    assert mailer.per_message() == {mid: 1}
    (dead,) = read_topic(kafka.bootstrap_servers, kafka.dlq_topic, expected=1)
    assert dead.value() == b"{not json"
    headers = carrier_of(dead.headers())
    assert "not JSON" in headers["coldreach.dlq.reason"]
    # The group's committed offset is past both records of that partition.
    partition = int(headers["coldreach.dlq.source"].split("/")[1])
    check = Consumer({"bootstrap.servers": kafka.bootstrap_servers, "group.id": kafka.group_id})
    (committed,) = check.committed([TopicPartition(kafka.send_topic, partition)], timeout=10)
    check.close()
    assert committed.offset == 2


# -- an accepted request is never lost -------------------------------------------------


def test_api_killed_before_publishing_loses_nothing(
    kafka_settings: Settings, kafka_mock: MockCluster, tmp_path: Path
) -> None:
    """The API commits, cannot reach Kafka, is SIGKILLed; a relay elsewhere publishes later."""
    db = Database(kafka_settings.with_(db_pool_size=1, db_max_overflow=0))
    with db.session() as s:
        key = create_key(s, "killed", frozenset(SCOPES))
    port = _closed_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DB_", "DATABASE_", "KAFKA_"))
    } | {
        "DATABASE_URL": kafka_settings.database_url.render_as_string(hide_password=False),
        "QUEUE_BACKEND": "kafka",
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{_closed_port()}",  # no broker there
        "KAFKA_SEND_TOPIC": kafka_settings.kafka.send_topic,
        "KAFKA_OUTBOX_LEASE_S": "5",  # how long its claim on the row outlives it
        "AUTO_MIGRATE": "0",
        "DATA_DIR": str(tmp_path),
        "UNSUBSCRIBE_SECRET": kafka_settings.unsubscribe_secret,
    }
    log = (tmp_path / "api.log").open("wb")
    api = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "openapi_server.main:app", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        import httpx

        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _up(base), timeout=30, interval=0.2)
        with httpx.Client(base_url=base, headers=bearer(key), timeout=10) as http:
            cid = http.post("/clients", json={"name": "K", "email": "k@example.com"}).json()["id"]
            r = http.post("/email/send", json={"client_id": cid, "subject": "S", "body": "B"})
            assert r.status_code == 202
            mid = r.json()["id"]
        time.sleep(0.5)  # the API's relay has tried (and cannot deliver)
    finally:
        os.killpg(api.pid, signal.SIGKILL)
        api.wait()
    assert [(r.message_id, r.published_at) for r in _outbox(db)] == [(mid, None)]
    assert _message_status(db, mid) == "queued"

    # Another process's relay (a consumer's, here this test's) publishes it after the
    # dead API's lease runs out; the fleet sends it once.
    mailer = RecordingMailer()
    relay = RelayThread(Relay(kafka_settings, {"default": db}))
    relay.start()
    try:
        with running_consumer(kafka_settings, Pipeline(db, mailer, kafka_settings)):
            wait_for(lambda: _message_status(db, mid) == "sent", timeout=60)
    finally:
        relay.stop()
        db.dispose()
    assert mailer.per_message() == {mid: 1}


def _up(base: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


# -- trace context across the Kafka hop --------------------------------------------------


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Finished spans of this test; the SDK provider is installed once per process."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    yield exporter
    processor.shutdown()


def test_one_trace_spans_request_outbox_relay_and_consumer(
    kafka_settings: Settings, held_kafka_api: TestClient, spans: InMemorySpanExporter
) -> None:
    api = held_kafka_api
    ctx = api.app.state.ctx  # type: ignore[attr-defined]
    cid = _new_client(api, "trace@example.com")
    ws = _workspace_of(ctx.db, cid)
    tracer = trace.get_tracer("test")
    # What the request handler does, in the request's span.
    with tracer.start_as_current_span("POST /email/send") as request_span, ctx.db.session() as s:
        msg = EmailMessage(
            workspace_id=ws,
            client_id=cid,
            to_address="trace@example.com",
            subject="S",
            body="B",
            status="queued",
            attempts=0,
            needs_reconciliation=False,
            enqueued_at=utcnow(),
        )
        s.add(msg)
        stage(s, msg)
        s.commit()
        mid = msg.id
    trace_id = request_span.get_span_context().trace_id
    (row,) = _outbox(ctx.db)
    assert json.loads(row.headers)["traceparent"].split("-")[1] == f"{trace_id:032x}"

    relay = RelayThread(Relay(kafka_settings, {"default": ctx.db}))
    relay.start()
    try:
        with running_consumer(kafka_settings, Pipeline(ctx.db, RecordingMailer(), kafka_settings)):
            wait_for(lambda: _message_status(ctx.db, mid) == "sent", timeout=30)
    finally:
        relay.stop()
    finished = {s.name: s for s in spans.get_finished_spans()}
    publish = finished[f"{kafka_settings.kafka.send_topic} publish"]
    process = finished[f"{kafka_settings.kafka.send_topic} process"]
    assert publish.kind is SpanKind.PRODUCER and process.kind is SpanKind.CONSUMER
    assert {publish.context.trace_id, process.context.trace_id} == {trace_id}
    assert (
        publish.parent is not None
        and publish.parent.span_id == request_span.get_span_context().span_id
    )
    assert process.parent is not None and process.parent.span_id == publish.context.span_id
    assert process.attributes is not None and process.attributes["coldreach.outcome"] == "sent"


# -- topics and the command ----------------------------------------------------------------


class _Future:
    def __init__(self, error: KafkaError | None) -> None:
        self.error = error

    def result(self, timeout: float | None = None) -> None:
        if self.error is not None:
            raise KafkaException(self.error)


class _Admin:
    """Stands in for the admin client of a real cluster (the mock has no CreateTopics)."""

    def __init__(self, errors: dict[str, KafkaError]) -> None:
        self.errors = errors
        self.asked: list[Any] = []

    def create_topics(self, topics: list[Any], request_timeout: float) -> dict[str, _Future]:
        self.asked = topics
        return {t.topic: _Future(self.errors.get(t.topic)) for t in topics}


def test_topics_are_created_through_the_admin_api_unless_on_the_mock() -> None:
    env = {"QUEUE_BACKEND": "kafka", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    settings = Settings.from_env(env | {"KAFKA_PARTITIONS": "12"})
    exists = KafkaError(KafkaError.TOPIC_ALREADY_EXISTS)
    admin = _Admin({"email.send.v1": exists})
    AdminTopics(settings, admin=admin).ensure(Topics.from_settings(settings))  # type: ignore[arg-type]
    assert [(t.topic, t.num_partitions, t.replication_factor) for t in admin.asked] == [
        ("email.send.v1", 12, 2),
        ("email.send.dlq.v1", 12, 2),
    ]
    denied = _Admin({"email.send.dlq.v1": KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)})
    with pytest.raises(KafkaException):
        AdminTopics(settings, admin=denied).ensure(Topics.from_settings(settings))  # type: ignore[arg-type]
    assert isinstance(topic_admin(settings), AdminTopics)
    mock = Settings.from_env({"QUEUE_BACKEND": "kafka", "KAFKA_MOCK_BROKERS": "1"})
    assert isinstance(topic_admin(mock), AutoCreatedTopics)


def test_consume_refuses_another_queue_backend(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QUEUE_BACKEND", "celery")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    assert cli_main(["consume"]) == 2


# -- one outbox per database, records routed by client ------------------------------------


def _seed_shard(db: Database, client_ids: list[int], per_client: int) -> list[int]:
    """Clients with these ids (as a shard holds them), queued messages and outbox rows."""
    with db.primary.begin() as conn:
        ws = conn.execute(
            text("INSERT INTO workspaces (name, created_at) VALUES ('w', now()) RETURNING id")
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO clients (id, workspace_id, name, email, email_key, status,"
                " created_at, updated_at) SELECT g, :ws, 'c', 'c' || g || '@example.com',"
                " 'c' || g || '@example.com', 'active', now(), now()"
                " FROM unnest(CAST(:ids AS int[])) g"
            ),
            {"ws": ws, "ids": client_ids},
        )
        ids = list(
            conn.execute(
                text(
                    "INSERT INTO email_messages (workspace_id, client_id, to_address, subject,"
                    " body, status, attempts, needs_reconciliation, enqueued_at, created_at,"
                    " updated_at) SELECT :ws, c.id, c.email, 'S', 'B', 'queued', 0, false,"
                    " now(), now(), now() FROM clients c, generate_series(1, :k)"
                    " RETURNING id"
                ),
                {"ws": ws, "k": per_client},
            ).scalars()
        )
        conn.execute(
            text(
                "INSERT INTO kafka_outbox (message_id, client_id, created_at, attempts)"
                " SELECT id, client_id, now(), 0 FROM email_messages"
            )
        )
    return ids


def test_records_reach_the_database_of_their_client(kafka_settings: Settings) -> None:
    """Two databases (as two shards), each with its outbox; the consumer routes by client_id."""
    second_url = create_database()
    upgrade(Settings(database_url=second_url, auto_migrate=False))
    first = Database(kafka_settings)
    second = Database(kafka_settings.with_(database_url=second_url))
    try:
        even, odd = list(range(2, 42, 2)), list(range(1, 41, 2))
        on_first = _seed_shard(first, even, 3)
        on_second = _seed_shard(second, odd, 3)
        # Message ids overlap between the databases: only the client id tells them apart.
        assert set(on_first) & set(on_second)

        def session_for(client_id: int) -> Any:
            return (first if client_id % 2 == 0 else second).session()

        mailer = RecordingMailer()
        relay = RelayThread(Relay(kafka_settings, {"shard1": first, "shard2": second}))
        relay.start()
        try:
            pipeline = Pipeline(first, mailer, kafka_settings)
            with running_consumer(kafka_settings, pipeline, sessions=session_for):
                for db in (first, second):
                    wait_for(lambda db=db: _statuses_of(db) == {"sent": 60}, timeout=60)
        finally:
            relay.stop()
        sent_to = Counter(call.to for call in mailer.calls)
        assert sent_to == Counter(
            {f"c{cid}@example.com": 3 for cid in even + odd}
        )  # each message once, from its own database
        assert _unpublished(first) == _unpublished(second) == 0
    finally:
        first.dispose()
        second.dispose()
        drop_database(second_url)


def _statuses_of(db: Database) -> dict[str, int]:
    with db.primary.connect() as conn:
        rows = conn.execute(text("SELECT status, count(*) FROM email_messages GROUP BY status"))
        return {status: count for status, count in rows}


def test_a_record_whose_processing_keeps_failing_is_dead_lettered(
    kafka_settings: Settings, held_kafka_api: TestClient
) -> None:
    api = held_kafka_api
    ctx = api.app.state.ctx  # type: ignore[attr-defined]
    kafka = kafka_settings.kafka
    cid = _new_client(api, "nowhere@example.com")
    mid = api.post("/email/send", json={"client_id": cid, "subject": "S", "body": "B"}).json()["id"]

    def session_for(client_id: int) -> Any:
        raise LookupError(f"no database for client {client_id}")

    relay = RelayThread(Relay(kafka_settings, {"default": ctx.db}))
    mailer = RecordingMailer()
    pipeline = Pipeline(ctx.db, mailer, kafka_settings)
    with running_consumer(kafka_settings, pipeline, sessions=session_for) as consumer:
        relay.start()
        try:
            wait_for(lambda: consumer.dead_lettered == 1, timeout=30)
        finally:
            relay.stop()
    (dead,) = read_topic(kafka.bootstrap_servers, kafka.dlq_topic, expected=1)
    assert decode(dead.value()) == SendRecord(mid, cid)
    assert (
        "LookupError: no database for client" in carrier_of(dead.headers())["coldreach.dlq.reason"]
    )
    assert mailer.calls == [] and _message_status(ctx.db, mid) == "queued"  # the sweeper's now
