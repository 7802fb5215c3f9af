"""CloudWatch alarms."""

from __future__ import annotations

from coldreach.runtime.emulator.backend import MotoBackend, handles
from coldreach.runtime.emulator.call import Call, Outputs, drop_none


@handles("aws:cloudwatch/metricAlarm:MetricAlarm")
def metric_alarm(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    name = b.name(c)
    cloudwatch = b.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        **drop_none(
            {
                "AlarmName": name,
                "AlarmDescription": c.get("alarmDescription"),
                "Namespace": c.get("namespace"),
                "MetricName": c.get("metricName"),
                "Dimensions": [
                    {"Name": k, "Value": v} for k, v in (c.get("dimensions") or {}).items()
                ]
                or None,
                "Statistic": c.get("statistic"),
                "Period": c.get("period"),
                "EvaluationPeriods": c.get("evaluationPeriods"),
                "Threshold": float(c.get("threshold")),
                "ComparisonOperator": c.get("comparisonOperator"),
                "TreatMissingData": c.get("treatMissingData"),
                "AlarmActions": c.get("alarmActions"),
                "OKActions": c.get("okActions"),
            }
        )
    )
    [alarm] = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return name, {"arn": alarm["AlarmArn"]}
