"""OpenTelemetry for the phase-3 app: one trace from the HTTP edge through both services.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set:
then spans go over OTLP/gRPC to that collector (Jaeger v2 and the ADOT collector both
take OTLP; Jaeger's own exporters are deprecated). The service name comes from
`OTEL_SERVICE_NAME` (default per process: `coldreach-api`, `coldreach-clients`, ...),
sampling from the standard `OTEL_TRACES_SAMPLER` variables.

The instrumented pieces take a provider instead of reading the global one, so tests run
them on an in-memory exporter. W3C trace context travels in gRPC metadata (the gRPC
interceptors) and, for queues, in dict carriers (`inject_into`, `extract_from`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context

if TYPE_CHECKING:
    import grpc
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
# Probes would fill the trace store with one-span traces.
UNTRACED_URLS = "healthz,readyz"


def configured(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return any(env.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def provider_from_env(
    default_service_name: str, env: Mapping[str, str] | None = None
) -> TracerProvider | None:
    """An SDK provider exporting over OTLP, installed as the global one; None when off."""
    if not configured(env):
        return None
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.environment_variables import OTEL_SERVICE_NAME
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    env = os.environ if env is None else env
    name = env.get(OTEL_SERVICE_NAME, "").strip() or default_service_name
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def instrument_fastapi(app: FastAPI, provider: TracerProvider | None) -> None:
    if provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls=UNTRACED_URLS)


def grpc_server_interceptors(provider: TracerProvider | None) -> list[Any]:
    """SERVER spans for a service's calls, continuing the caller's `traceparent`. Health
    checks are left out: they are probes, not work, and left unwrapped they keep the
    thread pool of their own (rpc/server.py, ProbedHealth)."""
    if provider is None:
        return []
    from opentelemetry.instrumentation.grpc import filters, server_interceptor

    probes = filters.health_check()
    return [server_interceptor(tracer_provider=provider, filter_=filters.negate(probes))]


def traced_channel(channel: grpc.Channel, provider: TracerProvider | None) -> grpc.Channel:
    """A blocking channel whose calls are CLIENT spans carrying `traceparent` metadata."""
    if provider is None:
        return channel
    from opentelemetry.instrumentation.grpc import client_interceptor
    from opentelemetry.instrumentation.grpc.grpcext import intercept_channel

    return intercept_channel(channel, client_interceptor(tracer_provider=provider))


def inject_into(carrier: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Write the current trace context (`traceparent`, `tracestate`) into `carrier`."""
    propagate.inject(carrier)
    return carrier


def extract_from(carrier: Mapping[str, str]) -> Context:
    """The trace context a carrier holds, to start a span under."""
    return propagate.extract(carrier)
