"""POST /email/send and GET /email/{id}: 202, idempotency keys, suppression, primary reads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from app_helpers import authorize, wait_for
from app_recording import RecordingMailer
from fastapi.testclient import TestClient
from openapi_server.config import Settings
from openapi_server.main import create_app
from sqlalchemy import text
from sqlalchemy.engine import URL


def _client(api: TestClient, email: str = "lead@example.com") -> int:
    return api.post("/clients", json={"name": "Lead", "email": email}).json()["id"]


def _status(api: TestClient, email_id: int) -> dict:
    r = api.get(f"/email/{email_id}")
    assert r.status_code == 200
    return r.json()


def test_send_is_202_queued_then_sent_once_with_unsubscribe_headers(make_client) -> None:
    mailer = RecordingMailer()
    api = make_client(mailer)
    cid = _client(api)
    r = api.post("/email/send", json={"client_id": cid, "subject": "Hello", "body": "Hi there"})
    assert r.status_code == 202
    assert r.json()["status"] == "queued"
    email_id = r.json()["id"]
    done = wait_for(lambda: (s := _status(api, email_id))["status"] == "sent" and s)
    assert done["attempts"] == 1
    assert done["provider_message_id"].startswith("rec-")
    assert done["needs_reconciliation"] is False
    assert mailer.per_message() == {email_id: 1}
    sent = mailer.calls[0]
    assert sent.to == "lead@example.com" and sent.subject == "Hello"
    assert sent.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = sent.headers["List-Unsubscribe"]
    assert link.startswith("<https://reach.example.com/unsubscribe/") and link.endswith(">")
    assert link.strip("<>") in sent.body  # the opt-out is in the body as well


def test_idempotency_key_replays_and_rejects_other_payloads(make_client) -> None:
    mailer = RecordingMailer()
    api = make_client(mailer)
    cid = _client(api)
    payload = {"client_id": cid, "subject": "S", "body": "B"}
    first = api.post("/email/send", json=payload, headers={"Idempotency-Key": "k-1"})
    again = api.post("/email/send", json=payload, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers

    other = api.post(
        "/email/send", json={**payload, "body": "changed"}, headers={"Idempotency-Key": "k-1"}
    )
    assert other.status_code == 422
    assert other.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]

    third = api.post("/email/send", json=payload, headers={"Idempotency-Key": "k-2"})
    no_key = api.post("/email/send", json=payload)
    assert len({first.json()["id"], third.json()["id"], no_key.json()["id"]}) == 3
    wait_for(lambda: len(mailer.calls) == 3)
    assert set(mailer.per_message().values()) == {1}

    bad = api.post("/email/send", json=payload, headers={"Idempotency-Key": "has space"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == [
        "header",
        "Idempotency-Key",
    ]


def test_concurrent_requests_with_one_key_create_one_message(make_client) -> None:
    mailer = RecordingMailer()
    api = make_client(mailer)
    cid = _client(api)
    payload = {"client_id": cid, "subject": "S", "body": "B"}
    ids: list[int] = []
    barrier = threading.Barrier(8)

    def post() -> None:
        barrier.wait()
        r = api.post("/email/send", json=payload, headers={"Idempotency-Key": "same"})
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1 and len(ids) == 8
    wait_for(lambda: _status(api, ids[0])["status"] == "sent")
    assert mailer.per_message() == {ids[0]: 1}


def test_unknown_client_and_bad_fields(api: TestClient) -> None:
    r = api.post("/email/send", json={"client_id": 777, "subject": "S", "body": "B"})
    assert r.status_code == 404 and r.json()["detail"][0]["loc"] == ["body", "client_id"]
    cid = _client(api)
    for payload, field in [
        ({"client_id": cid, "subject": "a\r\nBcc: x@evil.test", "body": "B"}, "subject"),
        ({"client_id": cid, "subject": "", "body": "B"}, "subject"),
        ({"client_id": cid, "subject": "S", "body": "\x00"}, "body"),
        ({"client_id": cid, "subject": "S"}, "body"),
        ({"client_id": "one", "subject": "S", "body": "B"}, "client_id"),
    ]:
        r = api.post("/email/send", json=payload)
        assert r.status_code == 422, payload
        assert ["body", field] in [d["loc"] for d in r.json()["detail"]]
    assert api.get("/email/123456").status_code == 404


def test_suppressed_client_is_never_mailed(make_client) -> None:
    mailer = RecordingMailer()
    api = make_client(mailer)
    cid = _client(api)
    app_ctx = api.app.state.ctx  # type: ignore[attr-defined]
    with app_ctx.db.primary.begin() as conn:
        conn.execute(text("UPDATE clients SET status='bounced' WHERE id=:id"), {"id": cid})
    r = api.post("/email/send", json={"client_id": cid, "subject": "S", "body": "B"})
    assert r.status_code == 202 and r.json()["status"] == "suppressed"
    assert _status(api, r.json()["id"])["status"] == "suppressed"
    assert mailer.calls == []


def test_email_status_reads_the_primary_while_lists_use_the_replica(
    pg_url: URL, pg_settings: Settings, clean_pg: None, tmp_path: Path
) -> None:
    """Point the "replica" at an empty copy of the schema: lists come from it, status does not."""
    from app_helpers import create_database, drop_database
    from openapi_server.migrate import upgrade

    replica = create_database("coldreach_app_test_replica")
    try:
        upgrade(Settings(database_url=replica, auto_migrate=False))
        settings = pg_settings.with_(database_read_url=replica)
        with TestClient(create_app(settings, mailer=RecordingMailer())) as api:
            authorize(api)
            cid = _client(api)
            assert api.get(f"/clients/{cid}").status_code == 200  # single reads: primary
            assert api.get("/clients").json()["total"] == 0  # lists: the (empty) replica
            r = api.post("/email/send", json={"client_id": cid, "subject": "S", "body": "B"})
            assert _status(api, r.json()["id"])["id"] == r.json()["id"]
    finally:
        drop_database(replica)


@pytest.mark.parametrize("status", ["unsubscribed", "complained"])
def test_client_suppressed_after_queueing_is_not_mailed(make_client, status: str) -> None:
    """The worker re-checks suppression after its claim, right before calling the mailer."""
    mailer = RecordingMailer()
    api = make_client(mailer)
    ctx = api.app.state.ctx  # type: ignore[attr-defined]
    ctx.queue.stop()  # hold the queue so the client can change while the message waits
    cid = _client(api)
    r = api.post("/email/send", json={"client_id": cid, "subject": "S", "body": "B"})
    email_id = r.json()["id"]
    with ctx.db.primary.begin() as conn:
        conn.execute(text("UPDATE clients SET status=:s WHERE id=:id"), {"s": status, "id": cid})
    assert ctx.pipeline.process(email_id).outcome == "suppressed"
    assert _status(api, email_id)["status"] == "suppressed"
    assert mailer.calls == []
