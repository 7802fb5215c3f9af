"""CloudWatch Logs."""

from __future__ import annotations

from coldreach.runtime.emulator.backend import MotoBackend, handles
from coldreach.runtime.emulator.call import Call, Outputs
from policies import tokens as t


@handles(t.LOG_GROUP)
def log_group(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    logs = b.client("logs")
    name = b.name(c)
    logs.create_log_group(logGroupName=name, **({"tags": c.get("tags")} if c.get("tags") else {}))
    if c.get("retentionInDays"):
        logs.put_retention_policy(logGroupName=name, retentionInDays=c.get("retentionInDays"))
    return name, {"arn": b.arn("logs", f"log-group:{name}")}
