"""The backlog metric the worker service autoscales on, published to CloudWatch (moto)."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
from app_recording import RecordingMailer
from moto import mock_aws
from openapi_server.config import Settings
from openapi_server.metrics import BacklogPublisher


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
        assert BacklogPublisher(s, ctx.db).publish() == 3
        cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
        now = dt.datetime.now(dt.UTC)
        stats = cloudwatch.get_metric_statistics(
            Namespace="ColdReach/test",
            MetricName="QueuedEmails",
            StartTime=now - dt.timedelta(minutes=5),
            EndTime=now + dt.timedelta(minutes=5),
            Period=60,
            Statistics=["Average"],
        )
        assert [p["Average"] for p in stats["Datapoints"]] == [3.0]
