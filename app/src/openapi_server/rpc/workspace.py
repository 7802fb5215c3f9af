"""The caller's workspace travels with every call as the `x-coldreach-workspace` entry.

The HTTP edge authenticates the request and sets the workspace; client interceptors put
it in the metadata of each outgoing call (the Campaign Service's GetClient too), and the
server interceptor refuses a call to our services without one (UNAUTHENTICATED) and makes
it the handler's `current()`. The services trust the entry: only the edge and the
services themselves may reach them (the phase-3 NetworkPolicies).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import grpc

METADATA_KEY = "x-coldreach-workspace"
# Calls to these services need a workspace; health and reflection do not.
GUARDED = ("/coldreach.clients.v1.ClientService/", "/coldreach.campaigns.v1.CampaignService/")

_current: ContextVar[int | None] = ContextVar("coldreach_workspace", default=None)


def current() -> int:
    workspace_id = _current.get()
    if workspace_id is None:
        raise RuntimeError("no workspace: the call did not pass the workspace interceptor")
    return workspace_id


@contextmanager
def acting_for(workspace_id: int) -> Iterator[None]:
    token = _current.set(workspace_id)
    try:
        yield
    finally:
        _current.reset(token)


MAX_ID = 2**31 - 1  # workspace ids are 32-bit INTEGER columns


def _parse(raw: object) -> int | None:
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 10:
        value = int(raw)
        return value if 1 <= value <= MAX_ID else None
    return None


def _with_workspace(metadata: Any) -> list[tuple[str, str | bytes]]:
    entries = [(k, v) for k, v in (metadata or ()) if k != METADATA_KEY]
    workspace_id = _current.get()
    if workspace_id is not None:
        entries.append((METADATA_KEY, str(workspace_id)))
    return entries


class WorkspaceServerInterceptor(grpc.ServerInterceptor):
    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = continuation(handler_call_details)
        method = handler_call_details.method  # type: ignore[attr-defined]
        if handler is None or handler.unary_unary is None or not method.startswith(GUARDED):
            return handler
        metadata = dict(handler_call_details.invocation_metadata or ())  # type: ignore[attr-defined]
        workspace_id = _parse(metadata.get(METADATA_KEY))
        inner = handler.unary_unary

        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            if workspace_id is None:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, f"{METADATA_KEY} missing")
            with acting_for(workspace_id):  # type: ignore[arg-type]
                return inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            guarded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class _Details(
    collections.namedtuple(
        "_Details",
        ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"),
    ),
    grpc.ClientCallDetails,
):
    pass


class WorkspaceClientInterceptor(grpc.UnaryUnaryClientInterceptor):
    """For the blocking channels of the edge's request threads and of the Campaign
    Service's handlers (GetClient)."""

    def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        details = _Details(
            client_call_details.method,
            client_call_details.timeout,
            _with_workspace(client_call_details.metadata),
            client_call_details.credentials,
            getattr(client_call_details, "wait_for_ready", None),
            getattr(client_call_details, "compression", None),
        )
        return continuation(details, request)
