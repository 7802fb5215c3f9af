"""The backlog metric the worker service autoscales on.

Every `BACKLOG_METRIC_INTERVAL_S` the worker counts `queued` messages (retries
waiting for their time included) in the primary database and publishes the count
to CloudWatch as `<BACKLOG_METRIC_NAMESPACE>/<BACKLOG_METRIC_NAME>` (no dimensions).
The database is the count to trust: the Redis queue may hold duplicate entries.
Every worker task publishes the same figure; the scaling policy reads its average.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select

from .config import Settings
from .db import QUEUED, Database, EmailMessage

log = logging.getLogger(__name__)


def queued_count(db: Database) -> int:
    with db.primary.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(EmailMessage).where(EmailMessage.status == QUEUED)
            ).scalar_one()
        )


class BacklogPublisher:
    def __init__(self, settings: Settings, db: Database, client: Any | None = None) -> None:
        if settings.backlog_metric_namespace is None:
            raise ValueError("BACKLOG_METRIC_NAMESPACE is not set")
        self.namespace = settings.backlog_metric_namespace
        self.name = settings.backlog_metric_name
        self.db = db
        if client is None:
            import boto3

            client = boto3.client("cloudwatch", region_name=settings.aws_region)
        self.client = client

    def publish(self) -> int:
        count = queued_count(self.db)
        self.client.put_metric_data(
            Namespace=self.namespace,
            MetricData=[{"MetricName": self.name, "Value": float(count), "Unit": "Count"}],
        )
        return count
