"""The metrics the worker publishes to CloudWatch.

Every `BACKLOG_METRIC_INTERVAL_S` the worker counts, in the primary database, and
publishes to the namespace `BACKLOG_METRIC_NAMESPACE` (no dimensions, unit Count):

- `<BACKLOG_METRIC_NAME>` (default `QueuedEmails`): `queued` messages, retries waiting
  for their time included. The worker service autoscales on it; the database is the
  count to trust, since the Redis queue may hold duplicate entries.
- `StuckSendingEmails`: messages in `sending` whose outcome is unknown: flagged for
  reconciliation, or claimed longer than `SENDING_TIMEOUT_S` ago (a worker killed
  mid-send, before the sweeper flags it). Anything above 0 needs an operator
  (app/README.md, "Runbook: messages stuck in sending").

Every worker task publishes the same figures; alarms and scaling read their maximum
or average.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select

from .config import Settings
from .db import QUEUED, SENDING, Database, EmailMessage, utcnow

log = logging.getLogger(__name__)

M = EmailMessage
STUCK_METRIC_NAME = "StuckSendingEmails"


def queued_count(db: Database) -> int:
    with db.primary.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(M).where(M.status == QUEUED)).scalar_one()
        )


def stuck_count(db: Database, sending_timeout_s: float) -> int:
    stuck_before = utcnow() - timedelta(seconds=sending_timeout_s)
    with db.primary.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(M)
                .where(
                    M.status == SENDING,
                    or_(M.needs_reconciliation.is_(True), M.claimed_at < stuck_before),
                )
            ).scalar_one()
        )


class BacklogPublisher:
    def __init__(self, settings: Settings, db: Database, client: Any | None = None) -> None:
        if settings.backlog_metric_namespace is None:
            raise ValueError("BACKLOG_METRIC_NAMESPACE is not set")
        self.namespace = settings.backlog_metric_namespace
        self.name = settings.backlog_metric_name
        self.sending_timeout_s = settings.sending_timeout_s
        self.db = db
        if client is None:
            import boto3

            client = boto3.client("cloudwatch", region_name=settings.aws_region)
        self.client = client

    def publish(self) -> dict[str, int]:
        """Publish both counts in one call; returns them by metric name."""
        counts = {
            self.name: queued_count(self.db),
            STUCK_METRIC_NAME: stuck_count(self.db, self.sending_timeout_s),
        }
        self.client.put_metric_data(
            Namespace=self.namespace,
            MetricData=[
                {"MetricName": name, "Value": float(value), "Unit": "Count"}
                for name, value in counts.items()
            ],
        )
        if counts[STUCK_METRIC_NAME]:
            log.warning("%d message(s) stuck in sending", counts[STUCK_METRIC_NAME])
        return counts
