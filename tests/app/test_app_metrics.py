"""The backlog metric the worker service autoscales on, published to CloudWatch (moto)."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
from app_recording import RecordingMailer
from moto import mock_aws
from openapi_server.config import Settings
from openapi_server.db import SENDING, EmailMessage, utcnow
from openapi_server.metrics import BacklogPublisher
from sqlalchemy import update


def test_worker_settings_take_the_namespace_the_infrastructure_passes() -> None:
    s = Settings.from_env({"BACKLOG_METRIC_NAMESPACE": "ColdReach/dev"})
    assert (s.backlog_metric_namespace, s.backlog_metric_name) == ("ColdReach/dev", "QueuedEmails")
    assert Settings.from_env({}).backlog_metric_namespace is None


def test_publishes_the_number_of_queued_messages(
    make_client, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    api = make_client(RecordingMailer())
    ctx = api.app.state.ctx
    ctx.queue.stop()  # keep them queued
    for i in range(3):
        cid = api.post("/clients", json={"name": "M", "email": f"m{i}@example.com"}).json()["id"]
        api.post("/email/send", json={"client_id": cid, "subject": "S", "body": "B"})
    with mock_aws():
        s = settings.with_(backlog_metric_namespace="ColdReach/test", aws_region="eu-west-1")
        assert BacklogPublisher(s, ctx.db).publish()["QueuedEmails"] == 3
        assert _published("QueuedEmails") == [3.0]


def _published(name: str) -> list[float]:
    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
    now = dt.datetime.now(dt.UTC)
    stats = cloudwatch.get_metric_statistics(
        Namespace="ColdReach/test",
        MetricName=name,
        StartTime=now - dt.timedelta(minutes=5),
        EndTime=now + dt.timedelta(minutes=5),
        Period=60,
        Statistics=["Maximum"],
    )
    return [p["Maximum"] for p in stats["Datapoints"]]


def test_publishes_the_number_of_messages_stuck_in_sending(
    make_client, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flagged for reconciliation, or claimed longer ago than SENDING_TIMEOUT_S (a killed
    worker, before the sweeper flags it); a send in progress is not stuck."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    api = make_client(RecordingMailer())
    ctx = api.app.state.ctx
    ctx.queue.stop()
    ids = []
    for i in range(4):
        cid = api.post("/clients", json={"name": "M", "email": f"s{i}@example.com"}).json()["id"]
        r = api.post("/email/send", json={"client_id": cid, "subject": "S", "body": "B"})
        ids.append(r.json()["id"])
    now = utcnow()
    long_ago = now - dt.timedelta(seconds=settings.sending_timeout_s + 60)
    rows = {
        ids[0]: {"needs_reconciliation": True, "claimed_at": now},
        ids[1]: {"needs_reconciliation": False, "claimed_at": long_ago},
        ids[2]: {"needs_reconciliation": False, "claimed_at": now},  # in progress
    }
    with ctx.db.primary.begin() as conn:
        for mid, values in rows.items():
            conn.execute(
                update(EmailMessage).where(EmailMessage.id == mid).values(status=SENDING, **values)
            )
    with mock_aws():
        s = settings.with_(backlog_metric_namespace="ColdReach/test", aws_region="eu-west-1")
        published = BacklogPublisher(s, ctx.db).publish()
        assert published == {"QueuedEmails": 1, "StuckSendingEmails": 2}
        assert _published("StuckSendingEmails") == [2.0]
        assert _published("QueuedEmails") == [1.0]
