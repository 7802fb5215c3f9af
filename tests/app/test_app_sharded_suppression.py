"""Suppression on shards: what is recorded in the directory after a send was accepted
stops it, and the SES webhook updates the clients on their shards.

Two PostgreSQL shards and a directory (the `sharded` fixture), the phase-3 services in
this process and the consumer `coldreach-app consume` builds (its `_databases`), on
Kafka's mock cluster.
"""

from __future__ import annotations

import json

import pytest
from app_helpers import authorize, wait_for
from app_kafka import running_consumer
from app_recording import RecordingMailer
from app_sharded import accept, clients_on_shards, sharded_edge
from app_sns_signing import Signer, bounce, complaint
from fastapi.testclient import TestClient
from openapi_server.config import Settings
from openapi_server.db import (
    BOUNCED,
    Client,
    Database,
    EmailMessage,
    Suppression,
    WorkspaceUnsubscribe,
    utcnow,
)
from openapi_server.kafka.consume import _databases
from openapi_server.kafka.consumer import session_transaction
from openapi_server.pipeline import Outcome, Pipeline
from openapi_server.sharding import ShardRouter
from rpc_harness import running_services
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

TERMINAL = ("sent", "failed", "suppressed")


def _address(api: TestClient, client_id: int) -> str:
    return api.get(f"/clients/{client_id}").json()["email"]


def test_a_bounce_or_unsubscribe_recorded_after_acceptance_stops_the_send(
    sharded: Settings,
) -> None:
    mailer = RecordingMailer()
    # No consumer yet: the messages are accepted and wait in their shards' outboxes.
    with running_services(sharded) as services, sharded_edge(services, sharded) as api:
        router: ShardRouter = services.sessions.router  # type: ignore[attr-defined]
        by_shard = clients_on_shards(api, router, 2)
        bounced, unsubscribed = by_shard["1"][0], by_shard["2"][0]
        fine = [by_shard["1"][1], by_shard["2"][1]]
        ids = {cid: accept(api, cid) for cid in (bounced, unsubscribed, *fine)}
        with router.session_for(bounced, write=False) as s:
            workspace = s.scalar(select(Client.workspace_id).where(Client.id == bounced))
        # After acceptance, only in the directory (as the webhook's and unsubscribe's
        # directory writes leave them): the clients' own rows still say active.
        with router.directory() as d:
            d.add(Suppression(email_key=_address(api, bounced), reason=BOUNCED))
            d.add(
                WorkspaceUnsubscribe(
                    workspace_id=workspace,
                    email_key=_address(api, unsubscribed),
                    created_at=utcnow(),
                )
            )
            d.commit()

        # The consumer as `coldreach-app consume` builds it.
        databases, sessions, directory, close = _databases(sharded)
        assert directory is not None
        pipeline = Pipeline(next(iter(databases.values())), mailer, sharded, directory=directory)
        try:
            with running_consumer(sharded, pipeline, sessions):
                for mid in ids.values():
                    wait_for(
                        lambda mid=mid: api.get(f"/email/{mid}").json()["status"] in TERMINAL,
                        timeout=30,
                    )
        finally:
            close()
        status = {cid: api.get(f"/email/{mid}").json() for cid, mid in ids.items()}
        assert status[bounced]["status"] == "suppressed"
        assert status[unsubscribed]["status"] == "suppressed"
        assert [status[cid]["status"] for cid in fine] == ["sent", "sent"]
        # The mailer was called for the two others only.
        assert sorted(mailer.per_message()) == sorted(ids[cid] for cid in fine)
        with router.session_for(bounced, write=False) as s:
            row = s.get(EmailMessage, ids[bounced])
            assert row is not None and row.last_error == "suppressed: bounced"
        with router.session_for(unsubscribed, write=False) as s:
            row = s.get(EmailMessage, ids[unsubscribed])
            assert row is not None and row.last_error == "suppressed: unsubscribed"


def test_a_directory_that_is_down_at_send_time_sends_nothing_and_the_send_is_retried(
    sharded: Settings,
) -> None:
    mailer = RecordingMailer()
    with running_services(sharded) as services, sharded_edge(services, sharded) as api:
        router: ShardRouter = services.sessions.router  # type: ignore[attr-defined]
        cid = clients_on_shards(api, router, 1)["2"][0]
        mid = accept(api, cid)
        shard = router.shards()["1"]
        begin = session_transaction(router.session_for, cid)

        # A directory nobody answers for (port 1 is closed): the claim is rolled back.
        down_url = make_url("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
        down = Database(sharded.with_(database_url=down_url))
        try:
            with pytest.raises(OperationalError):
                Pipeline(shard, mailer, sharded, directory=down).bound(begin).process(mid)
        finally:
            down.dispose()
        assert mailer.calls == []
        with router.session_for(cid, write=False) as s:
            row = s.get(EmailMessage, mid)
            assert row is not None
            assert (row.status, row.attempts, row.claimed_by) == ("queued", 0, None)

        # The directory is back: the next delivery of the record sends it.
        pipeline = Pipeline(shard, mailer, sharded, directory=router.directory_database)
        assert pipeline.bound(begin).process(mid).outcome == Outcome.SENT
        assert list(mailer.per_message()) == [mid]
        assert api.get(f"/email/{mid}").json()["status"] == "sent"


def _post(api: TestClient, message: dict) -> dict:
    r = api.post(
        "/webhooks/ses",
        content=json.dumps(message).encode(),
        headers={"content-type": "text/plain; charset=UTF-8"},
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_the_ses_webhook_updates_the_clients_on_their_shards(sharded: Settings) -> None:
    signer = Signer()
    with running_services(sharded) as services, sharded_edge(services, sharded, signer) as api:
        router: ShardRouter = services.sessions.router  # type: ignore[attr-defined]
        by_shard = clients_on_shards(api, router, 2)
        one, two = by_shard["1"][0], by_shard["2"][0]
        other = by_shard["2"][1]
        # The same address in a second workspace, whichever shard that client lands on.
        second = TestClient(api.app)
        authorize(second, "globex")
        twin = second.post("/clients", json={"name": "T", "email": _address(api, two)})
        assert twin.status_code == 201
        twin_id = twin.json()["id"]

        assert _post(api, signer.notification(bounce(_address(api, one)))) == {
            "status": "processed",
            "updated": 1,
        }
        assert _post(api, signer.notification(complaint(_address(api, two)))) == {
            "status": "processed",
            "updated": 2,
        }

        def status(cid: int) -> str:
            with router.session_for(cid, write=False) as s:
                return s.scalar(select(Client.status).where(Client.id == cid)) or "missing"

        assert status(one) == "bounced"
        assert status(two) == "complained" and status(twin_id) == "complained"
        assert status(other) == "active"
        assert api.get(f"/clients/{one}").json()["status"] == "bounced"
        # Global, in the directory: read by every acceptance.
        with router.directory() as d:
            assert d.get(Suppression, _address(api, one)) is not None
            assert d.scalar(select(Client.id).limit(1)) is None  # no client rows there
        refused = api.post("/email/send", json={"client_id": one, "subject": "S", "body": "B"})
        assert refused.json()["status"] == "suppressed"
