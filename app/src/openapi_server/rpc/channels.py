"""Client channels to the services: headless-name round robin, retries, workspace, trace.

A ClusterIP Service balances connections, and HTTP/2 keeps one connection, so every call
would land on one replica. The address is resolved with `dns:///` instead (a headless
Service returns every pod) and `round_robin` spreads calls over all of them; the servers
close connections after GRPC_MAX_CONNECTION_AGE_S so that clients re-resolve and find
new replicas. Read-only calls are retried on UNAVAILABLE through the service config
(gRPC's transparent retries; the call's deadline still bounds them). Nothing else is
retried: CreateTask or SendEmail may have committed before the connection broke.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import grpc

from .. import tracing
from .workspace import WorkspaceClientInterceptor

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

CLIENTS = "coldreach.clients.v1.ClientService"
CAMPAIGNS = "coldreach.campaigns.v1.CampaignService"
IDEMPOTENT = [
    {"service": CLIENTS, "method": "GetClient"},
    {"service": CLIENTS, "method": "ListClients"},
    {"service": CAMPAIGNS, "method": "GetTask"},
    {"service": CAMPAIGNS, "method": "ListTasks"},
    {"service": CAMPAIGNS, "method": "GetEmail"},
]
SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [
        {
            "name": IDEMPOTENT,
            "retryPolicy": {
                "maxAttempts": 3,
                "initialBackoff": "0.05s",
                "maxBackoff": "0.5s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ],
}
OPTIONS: list[tuple[str, Any]] = [
    ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
    ("grpc.enable_retries", 1),
    # Keepalive pings find a dead peer (a node gone) before the next call waits on it.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
]


# gRPC name-resolver schemes; anything else is a `host:port` (where "host:" is no scheme).
SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:", "xds:")


def target(address: str) -> str:
    """`host:port` resolved by DNS (every address of a headless Service); URIs pass as given."""
    return address if address.startswith(SCHEMES) else f"dns:///{address}"


def blocking_channel(address: str, provider: TracerProvider | None = None) -> grpc.Channel:
    """For the edge's routes and the services' handlers: each runs in a worker thread and
    makes blocking calls."""
    channel = grpc.insecure_channel(target(address), options=OPTIONS)
    channel = grpc.intercept_channel(channel, WorkspaceClientInterceptor())
    return tracing.traced_channel(channel, provider)
