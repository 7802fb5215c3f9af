"""Redis on ElastiCache: TLS and AUTH, private, encrypted at rest."""

from __future__ import annotations

from coldreach.verify.discovery import State
from coldreach.verify.findings import FAIL, Finding, verdict
from coldreach.verify.network import private


def check_redis(state: State) -> list[Finding]:
    if state.phase < 2:
        return []
    if not state.redis_groups:
        return [Finding("redis.tls", str(state.outputs.get("redis_endpoint")), FAIL, "not found")]
    out: list[Finding] = []
    for group in state.redis_groups:
        name = group["ReplicationGroupId"]
        tls = bool(group.get("TransitEncryptionEnabled"))
        mode = group.get("TransitEncryptionMode")
        auth = bool(group.get("AuthTokenEnabled")) or bool(group.get("UserGroupIds"))
        ok = tls and mode in (None, "required") and auth
        detail = (
            f"TLS {'on' if tls else 'OFF'}"
            + (f" ({mode})" if tls and mode else "")
            + f", AUTH {'on' if auth else 'OFF'}"
        )
        out.append(verdict("redis.tls", name, ok, detail))
        subnets = state.redis_subnets.get(name, set())
        out.append(private("redis.private", name, False, subnets, state.public_subnets))
        out.append(
            verdict(
                "redis.encrypted",
                name,
                bool(group.get("AtRestEncryptionEnabled")),
                "encrypted at rest",
                "NOT encrypted at rest",
            )
        )
    return out
