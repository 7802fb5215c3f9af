"""An operator hears about emails stuck in `sending`: the one number no retry may fix."""

from __future__ import annotations

from collections.abc import Callable

from coldreach.runtime import Deployment

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def test_stuck_sends_alarm_where_a_worker_publishes_them(
    program: Callable[..., Deployment],
) -> None:
    d = program("staging", alertEmail="oncall@example.com")
    [alarm] = d.of_type(ALARM)
    assert (alarm.get("namespace"), alarm.get("metricName")) == (
        "ColdReach/staging",
        "StuckSendingEmails",
    )
    assert (alarm.get("comparisonOperator"), alarm.get("threshold")) == ("GreaterThanThreshold", 0)
    topic = d.named("alerts-topic")
    assert alarm.get("alarmActions") == alarm.get("okActions") == [topic.out("arn")]
    [email] = d.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert (email.get("protocol"), email.get("endpoint")) == ("email", "oncall@example.com")
    # The worker publishes to the namespace the alarm reads.
    worker = next(
        t for t in d.of_type("aws:ecs/taskDefinition:TaskDefinition")
        if t.get("family").endswith("-worker")
    )  # fmt: skip
    assert '"BACKLOG_METRIC_NAMESPACE", "value": "ColdReach/staging"' in worker.get(
        "containerDefinitions"
    )


def test_phase_1_has_no_publisher_and_no_alarm(program: Callable[..., Deployment]) -> None:
    d = program("dev")
    assert d.of_type(ALARM) == [] and "alerts_topic_arn" not in d.outputs


def test_the_alarm_reads_the_metric_the_worker_publishes() -> None:
    from openapi_server.metrics import STUCK_METRIC_NAME

    from infra.layers.compute import STUCK_METRIC

    assert STUCK_METRIC == STUCK_METRIC_NAME
