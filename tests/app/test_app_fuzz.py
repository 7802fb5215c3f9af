"""Property-based fuzzing driven by /openapi.json: no input makes the API answer 5xx.

Bounded (a fixed number of examples per operation) so it stays a few seconds long.
The schema is read from an app built at import time; the requests go to a live app
on the session's PostgreSQL database through a small forwarding ASGI app, with an API
key holding every scope (without one, every protected operation would stop at 401).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from app_helpers import bearer, issue_key
from app_recording import RecordingMailer
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from openapi_server.config import Settings
from openapi_server.main import create_app
from schemathesis.checks import status_code_conformance


class Forward:
    def __init__(self, target: Any) -> None:
        self.target = target
        self.headers: dict[str, str] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.target(scope, receive, send)


_schema_only = create_app(
    Settings.from_env({"DATA_DIR": tempfile.mkdtemp(prefix="coldreach-fuzz-")})
)
forward = Forward(_schema_only)
schema = schemathesis.openapi.from_asgi("/openapi.json", forward)


@pytest.fixture
def live_app(pg_settings: Settings, clean_pg: None) -> Iterator[None]:
    app = create_app(pg_settings, mailer=RecordingMailer())
    with TestClient(app) as api:
        forward.headers = bearer(issue_key(api))
        api.headers.update(forward.headers)
        # Some data so that ids in paths and bodies sometimes exist.
        for i in range(3):
            cid = api.post("/clients", json={"name": "F", "email": f"f{i}@example.com"}).json()
            api.post("/tasks", json={"client_id": cid["id"], "title": "t"})
            api.post("/email/send", json={"client_id": cid["id"], "subject": "s", "body": "b"})
        forward.target = app
        try:
            yield
        finally:
            forward.target = _schema_only
            forward.headers = {}


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_input_causes_a_server_error(case, live_app: None) -> None:
    # The generated case may carry an Authorization of its own (the scheme is in the
    # document); the session's key replaces it.
    case.headers = {**(case.headers or {}), **forward.headers}
    response = case.call()
    assert response.status_code != 401, "the fuzzer's key was refused"
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
    )
    # Every status code the API answers with is one its document declares.
    case.validate_response(response, checks=[status_code_conformance])
    if 400 <= response.status_code < 500 and response.status_code != 405:
        assert "detail" in response.json()
