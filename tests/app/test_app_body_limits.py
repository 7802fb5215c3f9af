"""Request bodies are limited before they are read, for every route (declared or streamed)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anyio
import pytest
from app_helpers import issue_key
from fastapi import FastAPI
from fastapi.testclient import TestClient

CHUNK = 64 * 1024
MIB = 1024 * 1024


def _call(
    app: FastAPI, path: str, chunks: Iterator[bytes], content_length: int | None = None
) -> tuple[int, dict, int]:
    """One authenticated request straight through ASGI: (status, JSON body, bytes the app
    pulled). Authenticated, so that the limit is what answers: a caller without credentials
    is turned away before the body is read at all."""
    pulled = 0
    out: dict = {"body": b""}

    async def receive() -> dict:
        nonlocal pulled
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    headers = [
        (b"content-type", b"application/json"),
        (b"host", b"testserver"),
        (b"authorization", f"Bearer {app.state.test_key}".encode()),
    ]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    anyio.run(lambda: app(scope, receive, send))  # type: ignore[arg-type]
    return out["status"], json.loads(out["body"] or b"null"), pulled


def _stream(total: int) -> Iterator[bytes]:
    for _ in range(total // CHUNK):
        yield b" " * CHUNK


@pytest.fixture
def app(api: TestClient) -> FastAPI:
    app: FastAPI = api.app  # type: ignore[assignment]
    app.state.test_key = issue_key(api)
    return app


@pytest.mark.parametrize("path", ["/webhooks/ses", "/clients", "/email/send", "/unsubscribe/1.2.x"])
def test_a_declared_length_over_the_limit_is_refused_before_reading(app, path: str) -> None:
    status, body, pulled = _call(app, path, _stream(200 * MIB), content_length=200 * MIB)
    assert status == 413, body
    assert pulled == 0
    assert body["detail"][0]["loc"] == ["body"]


@pytest.mark.parametrize("path", ["/webhooks/ses", "/clients", "/tasks"])
def test_a_streamed_body_is_cut_off_at_the_limit(app, path: str) -> None:
    status, body, pulled = _call(app, path, _stream(16 * MIB))
    assert status == 413, body
    assert pulled <= MIB + CHUNK


def test_limits_are_per_route_class_and_configurable(make_client, settings) -> None:
    api = make_client(settings_=settings.with_(max_body_bytes=2048, max_webhook_body_bytes=4096))
    big_name = {"name": "x" * 3000, "email": "a@example.com"}
    assert api.post("/clients", json=big_name).status_code == 413
    ok = api.post("/clients", json={"name": "x" * 100, "email": "a@example.com"})
    assert ok.status_code == 201
    r = api.post("/webhooks/ses", content=b"{" + b" " * 3000 + b"}")
    assert r.status_code == 400  # within the webhook's limit: parsed, then refused as no SNS
    r = api.post("/webhooks/ses", content=b" " * 5000)
    assert r.status_code == 413
