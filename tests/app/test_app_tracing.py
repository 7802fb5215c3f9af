"""One trace per request across the phase-3 hops, on the in-memory exporter.

HTTP task creation at the edge -> the edge's gRPC client -> the Campaign Service ->
its GetClient client -> the Client Service: five spans, one trace id, each the parent
of the next, so Jaeger shows the whole request as one tree.
"""

from __future__ import annotations

import itertools
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from app_helpers import authorize, wait_for, worker_env
from fastapi.testclient import TestClient
from openapi_server import tracing
from openapi_server.config import Settings
from openapi_server.main import create_app
from openapi_server.rpc.gen.coldreach.clients.v1 import clients_pb2 as pb
from openapi_server.rpc.gen.coldreach.clients.v1 import clients_pb2_grpc as pb_grpc
from openapi_server.rpc.workspace import METADATA_KEY
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from rpc_harness import running_services

CREATE_TASK = "/coldreach.campaigns.v1.CampaignService/CreateTask"
GET_CLIENT = "/coldreach.clients.v1.ClientService/GetClient"


def test_task_creation_is_one_trace_from_http_to_the_client_service(
    pg_settings: Settings, clean_pg: None
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with running_services(pg_settings, provider=provider) as services:
        app = create_app(services.edge_settings(pg_settings), tracer_provider=provider)
        with TestClient(app) as api:
            authorize(api, "traced")
            client = api.post("/clients", json={"name": "T", "email": "t@example.com"}).json()
            exporter.clear()
            created = api.post("/tasks", json={"client_id": client["id"], "title": "Call"})
            assert created.status_code == 201
    spans = exporter.get_finished_spans()

    http = [s for s in spans if s.kind == SpanKind.SERVER and s.name == "POST /tasks"]
    assert len(http) == 1
    trace_id = http[0].context.trace_id
    assert {s.context.trace_id for s in spans} == {trace_id}  # nothing else, nothing split

    def one(kind: SpanKind, name: str) -> ReadableSpan:
        found = [s for s in spans if s.kind == kind and s.name == name]
        assert len(found) == 1, (kind, name, [(s.kind, s.name) for s in spans])
        return found[0]

    chain = [
        http[0],
        one(SpanKind.CLIENT, CREATE_TASK),
        one(SpanKind.SERVER, CREATE_TASK),
        one(SpanKind.CLIENT, GET_CLIENT),
        one(SpanKind.SERVER, GET_CLIENT),
    ]
    by_id = {s.context.span_id: s for s in spans}

    def descends(span: ReadableSpan, ancestor: ReadableSpan) -> bool:
        while span.parent is not None:
            if span.parent.span_id == ancestor.context.span_id:
                return True
            span = by_id[span.parent.span_id]
        return False

    for parent, child in itertools.pairwise(chain):
        assert descends(child, parent), f"{child.name} ({child.kind}) not under {parent.name}"


def test_tracing_is_off_unless_an_otlp_endpoint_is_configured() -> None:
    assert tracing.provider_from_env("coldreach-test", env={}) is None
    assert not tracing.configured({"OTEL_EXPORTER_OTLP_ENDPOINT": " "})
    assert tracing.configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4317"})
    assert tracing.configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://jaeger:4317"})


def test_trace_context_round_trips_through_a_dict_carrier() -> None:
    provider = TracerProvider()
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("producer") as span:
        carrier = tracing.inject_into({})
    assert carrier["traceparent"].split("-")[1] == f"{span.get_span_context().trace_id:032x}"
    context = tracing.extract_from(carrier)
    with tracer.start_as_current_span("consumer", context=context) as consumer:
        assert consumer.get_span_context().trace_id == span.get_span_context().trace_id


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """A stand-in OTLP/gRPC collector (what Jaeger v2 or the ADOT collector listen with)."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []

    def Export(self, request, context):  # type: ignore[no-untyped-def]
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


def test_a_service_exports_its_spans_over_otlp_when_configured(
    pg_settings: Settings, tmp_path: Path
) -> None:
    collector = Collector()
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    otlp_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = worker_env(
        pg_settings,
        GRPC_BIND="127.0.0.1",
        GRPC_PORT=str(port),
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{otlp_port}",
        OTEL_EXPORTER_OTLP_INSECURE="true",
    )
    log = tmp_path / "clients.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "openapi_server.cli", "serve-clients"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: b"ready on port" in log.read_bytes(), timeout=30, interval=0.1)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = pb_grpc.ClientServiceStub(channel)
        with pytest.raises(grpc.RpcError):  # no such client: a span all the same
            stub.GetClient(
                pb.GetClientRequest(client_id=pb.ClientId(id=424242)),
                timeout=5,
                metadata=((METADATA_KEY, "1"),),
            )
        channel.close()
        proc.send_signal(signal.SIGTERM)  # shutdown flushes the batch processor
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.stop(0)
    spans = [
        (resource.resource, span)
        for request in collector.requests
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    names = {span.name for _, span in spans}
    assert GET_CLIENT in names, names
    services = {
        a.value.string_value
        for resource, _ in spans
        for a in resource.attributes
        if a.key == "service.name"
    }
    assert services == {"coldreach-clients"}
