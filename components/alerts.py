"""Alarms on the numbers an operator must act on, and the topic they notify."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass
class AlertsArgs:
    email: str | None = None
    """Subscribed to the topic when set (AWS mails a confirmation link first)."""


class Alerts(pulumi.ComponentResource):
    """An SNS topic for alarm notifications and the CloudWatch alarms that publish to it.

    The topic is not KMS-encrypted: notifications carry alarm names and counts, no
    personal data, and CloudWatch can publish to an encrypted topic only through a
    customer-managed key whose policy admits it.
    """

    topic: aws.sns.Topic

    def __init__(
        self, name: str, args: AlertsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("coldreach:observability:Alerts", name, None, opts)
        self._name = name
        self.topic = aws.sns.Topic(f"{name}-topic", opts=pulumi.ResourceOptions(parent=self))
        if args.email:
            aws.sns.TopicSubscription(
                f"{name}-email",
                topic=self.topic.arn,
                protocol="email",
                endpoint=args.email,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"topic_arn": self.topic.arn})

    def above_zero(
        self,
        label: str,
        namespace: str,
        metric: str,
        description: str,
        dimensions: dict[str, pulumi.Input[str]] | None = None,
    ) -> aws.cloudwatch.MetricAlarm:
        """Alarms while the metric's maximum over 5 minutes is above 0, and says when it is
        back to 0. No data (nobody publishing) is not an alarm here."""
        return aws.cloudwatch.MetricAlarm(
            f"{self._name}-{label}",
            alarm_description=description,
            namespace=namespace,
            metric_name=metric,
            dimensions=dimensions,
            statistic="Maximum",
            period=300,
            evaluation_periods=1,
            threshold=0,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[self.topic.arn],
            ok_actions=[self.topic.arn],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def above(
        self,
        label: str,
        namespace: str,
        metric: str,
        threshold: float,
        dimensions: dict[str, pulumi.Input[str]],
        description: str,
    ) -> aws.cloudwatch.MetricAlarm:
        """Alarms while the metric's maximum over 5 minutes stays above `threshold` for 15
        minutes (a brief spike is not an alarm), and says when it is back under."""
        return aws.cloudwatch.MetricAlarm(
            f"{self._name}-{label}",
            alarm_description=description,
            namespace=namespace,
            metric_name=metric,
            dimensions=dimensions,
            statistic="Maximum",
            period=300,
            evaluation_periods=3,
            threshold=threshold,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[self.topic.arn],
            ok_actions=[self.topic.arn],
            opts=pulumi.ResourceOptions(parent=self),
        )
