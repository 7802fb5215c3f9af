"""The observability layer: alarms on what the app publishes, to a topic operators follow.

The worker publishes the figures (phase 2 on); a phase without one has nothing to alarm on.
Phase 3 adds MSK's disk use per broker.
"""

from __future__ import annotations

import pulumi

from components.alerts import Alerts, AlertsArgs
from infra.config import Settings
from infra.layers.compute import STUCK_METRIC, backlog_namespace
from infra.layers.data import Data
from infra.topology import Kind, Topology

KAFKA_DISK_PERCENT = 80
"""MSK broker storage only grows (`kafkaBrokerStorageGb`, an in-place rolling update) and a
full broker stops taking writes: alarm with room to act."""


def build(
    s: Settings,
    topology: Topology,
    data: Data | None = None,
    rotation_function: pulumi.Input[str] | None = None,
) -> Alerts | None:
    if not any(service.kind is Kind.WORKER for service in topology.services):
        return None
    alerts = Alerts("alerts", AlertsArgs(email=s.alert_email))
    alerts.above_zero(
        "stuck-sending",
        backlog_namespace(s),
        STUCK_METRIC,
        "Emails in 'sending' with an unknown outcome (a worker died mid-send): reconcile "
        "them by hand, never resend blindly. Runbook: app/README.md, 'Runbook: messages "
        "stuck in sending'.",
    )
    if data is not None and data.kafka is not None:
        # MSK publishes the disk use per broker at its free DEFAULT monitoring level.
        for broker in range(1, s.kafka.brokers + 1):
            alerts.above(
                f"kafka-disk-{broker}",
                "AWS/Kafka",
                "KafkaDataLogsDiskUsed",
                KAFKA_DISK_PERCENT,
                {"Cluster Name": data.kafka.cluster.cluster_name, "Broker ID": str(broker)},
                f"MSK broker {broker} is over {KAFKA_DISK_PERCENT} % of its storage: raise "
                "cold-reach:kafkaBrokerStorageGb (it can only grow) or shorten retention.",
            )
    if rotation_function is not None:
        # Secrets Manager reports a failed rotation nowhere else; the function's errors
        # are the signal (each failed step is one).
        alerts.above_zero(
            "db-rotation-errors",
            "AWS/Lambda",
            "Errors",
            "The database's master password rotation failed a step. Read the function's "
            "log; the secret and the database may disagree until a rotation completes. "
            "Runbook: docs/database-access.md.",
            dimensions={"FunctionName": rotation_function},
        )
    return alerts
