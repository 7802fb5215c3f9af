"""The daily send quota per workspace, counted in the database inside the send transaction.

`take_send` adds one to today's row of `send_counts` only while it is below the quota,
in the same transaction that inserts the message: a rolled back send gives its unit
back, and concurrent sends of one workspace (any number of web tasks) serialize on that
one row, so the quota cannot be overrun. Days are UTC.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from .db import SendCount, Workspace


class QuotaExceeded(Exception):
    def __init__(self, quota: int, retry_after_s: int) -> None:
        super().__init__(f"daily send quota of {quota} reached")
        self.quota = quota
        self.retry_after_s = retry_after_s


def seconds_to_next_day(now: datetime) -> int:
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, math.ceil((midnight - now).total_seconds()))


def take_send(s: Session, workspace_id: int, default_quota: int, now: datetime) -> None:
    """Count one send for today, or raise QuotaExceeded (nothing counted)."""
    own = s.scalar(select(Workspace.daily_send_quota).where(Workspace.id == workspace_id))
    quota = default_quota if own is None else own
    day = now.date().isoformat()
    insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    s.execute(
        insert(SendCount)
        .values(workspace_id=workspace_id, day=day, count=0)
        .on_conflict_do_nothing()
    )
    taken = s.execute(
        update(SendCount)
        .where(
            SendCount.workspace_id == workspace_id,
            SendCount.day == day,
            SendCount.count < quota,
        )
        .values(count=SendCount.count + 1)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise QuotaExceeded(quota, seconds_to_next_day(now))
