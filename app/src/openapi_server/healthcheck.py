"""Container health probe (no curl in the slim image).

    python -m openapi_server.healthcheck           # by the environment (see below)
    python -m openapi_server.healthcheck --http    # HTTP API: GET /healthz on $PORT
    python -m openapi_server.healthcheck --grpc [--service NAME]
                                                   # gRPC service: grpc.health.v1 Check
                                                   # on 127.0.0.1:$GRPC_PORT
    python -m openapi_server.healthcheck --worker  # worker: heartbeat file is fresh

Without a flag the check follows the process the container runs: a gRPC service is
started with GRPC_PORT set (the Kubernetes workloads set it for the Client and Campaign
Services only), so GRPC_PORT means the gRPC check, anything else the HTTP one. The image
sets PORT=8000 for every container, so PORT cannot tell the two apart. The worker is
always named (`--worker`): its container sets neither port.

The gRPC check asks for the server as a whole (service "") unless --service is given,
as the kubelet's gRPC probe does. Exit status 0 when healthy, 1 otherwise.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

HEARTBEAT_MAX_AGE_S = 90.0
TIMEOUT_S = 4.0


def heartbeat_path() -> Path:
    return Path(os.environ.get("DATA_DIR", "").strip() or "./var") / "worker-heartbeat"


def check_api() -> bool:
    port = os.environ.get("PORT", "8000")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=TIMEOUT_S) as resp:
            return resp.status == 200
    except OSError:
        return False


def check_grpc(port: int | str, service: str = "") -> bool:
    """grpc.health.v1.Health/Check on 127.0.0.1:`port`: True only for SERVING."""
    import grpc  # only the gRPC check pays for the import
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        check = health_pb2_grpc.HealthStub(channel).Check  # pyright: ignore[reportAttributeAccessIssue]
        try:
            reply = check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT_S)
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def check_worker() -> bool:
    try:
        age = time.time() - heartbeat_path().stat().st_mtime
    except OSError:
        return False
    return age < HEARTBEAT_MAX_AGE_S


def mode(args: list[str], env: Mapping[str, str]) -> str:
    """Which check runs: the flag given, else gRPC when GRPC_PORT is set, else HTTP."""
    for flag in ("--worker", "--grpc", "--http"):
        if flag in args:
            return flag[2:]
    return "grpc" if env.get("GRPC_PORT", "").strip() else "http"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    which = mode(args, os.environ)
    if which == "worker":
        healthy = check_worker()
    elif which == "grpc":
        service = args[args.index("--service") + 1] if "--service" in args[:-1] else ""
        healthy = check_grpc(os.environ.get("GRPC_PORT", "").strip() or "50051", service)
    else:
        healthy = check_api()
    return 0 if healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
