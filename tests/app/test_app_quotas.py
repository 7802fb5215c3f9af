"""The daily send quota (database) and the request rate limit (memory or Redis), per workspace."""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
from datetime import UTC, datetime

import pytest
from app_helpers import bearer, issue_key
from app_recording import RecordingMailer
from openapi_server.cli import main as cli
from openapi_server.config import Settings
from openapi_server.quota import seconds_to_next_day
from openapi_server.ratelimit import MemoryRateLimiter
from sqlalchemy import text

# Several web tasks, and row locks that serialize concurrent sends: PostgreSQL only.
postgresql_only = pytest.mark.parametrize("settings", ["postgresql"], indirect=True)


def _client(api, key: str, email: str = "q@example.com") -> int:
    r = api.post("/clients", json={"name": "Q", "email": email}, headers=bearer(key))
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _send(api, key: str, client_id: int, **headers: str):
    return api.post(
        "/email/send",
        json={"client_id": client_id, "subject": "S", "body": "B"},
        headers={**bearer(key), **headers},
    )


def _messages(api) -> int:
    with api.app.state.ctx.db.primary.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM email_messages")).scalar_one()


def test_the_daily_send_quota_is_per_workspace_and_answers_429(make_client, settings) -> None:
    api = make_client(RecordingMailer(), settings_=settings.with_(daily_send_quota=2))
    mine, theirs = issue_key(api, "mine"), issue_key(api, "theirs")
    cid = _client(api, mine)
    first = _send(api, mine, cid, **{"Idempotency-Key": "a"})
    assert first.status_code == 202
    assert _send(api, mine, cid).status_code == 202
    r = _send(api, mine, cid)
    assert r.status_code == 429
    assert r.json()["detail"][0]["type"] == "quota_exceeded"
    assert 1 <= int(r.headers["Retry-After"]) <= 86400
    assert _messages(api) == 2  # the refused one left nothing behind
    # A replay is the same message, not a new send.
    again = _send(api, mine, cid, **{"Idempotency-Key": "a"})
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    # A suppressed message costs no sending, so it is accepted (as suppressed).
    with api.app.state.ctx.db.primary.begin() as conn:
        conn.execute(text("UPDATE clients SET status = 'bounced' WHERE id = :id"), {"id": cid})
    r = _send(api, mine, cid)
    assert r.status_code == 202 and r.json()["status"] == "suppressed"
    # Another workspace has its own quota.
    assert _send(api, theirs, _client(api, theirs)).status_code == 202


def test_a_workspace_s_own_quota_overrides_the_default(
    make_client, settings: Settings, monkeypatch, capsys
) -> None:
    api = make_client(RecordingMailer(), settings_=settings.with_(daily_send_quota=1))
    key = issue_key(api, "big")
    cid = _client(api, key)
    assert _send(api, key, cid).status_code == 202
    assert _send(api, key, cid).status_code == 429
    monkeypatch.setenv("DATABASE_URL", settings.database_url.render_as_string(hide_password=False))
    monkeypatch.setenv("AUTO_MIGRATE", "0")
    assert cli(["set-quota", "--workspace", "big", "--daily-sends", "3"]) == 0
    assert "daily send quota 3" in capsys.readouterr().out
    assert [_send(api, key, cid).status_code for _ in range(3)] == [202, 202, 429]
    assert cli(["set-quota", "--workspace", "big", "--daily-sends", "lots"]) == 2


@postgresql_only
def test_concurrent_sends_cannot_overrun_the_quota(make_client, settings) -> None:
    api = make_client(RecordingMailer(), settings_=settings.with_(daily_send_quota=3))
    key = issue_key(api, "racers")
    cid = _client(api, key)
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def post() -> None:
        barrier.wait()
        statuses.append(_send(api, key, cid).status_code)

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [202] * 3 + [429] * 5
    assert _messages(api) == 3


def test_seconds_to_the_next_utc_day() -> None:
    assert seconds_to_next_day(datetime(2026, 12, 3, 23, 59, 30, tzinfo=UTC)) == 30
    assert seconds_to_next_day(datetime(2026, 12, 3, 0, 0, 0, tzinfo=UTC)) == 86400


# An instant 30 s into a UTC minute, for limiters whose window must not turn over
# between the requests a test counts and the one it expects refused.
PINNED = 1_800_000_030.0


def _pin_clock(api) -> None:
    """The app's rate limiter reads one fixed instant: its window is the UTC minute, and
    the requests a test counts can straddle a minute's end however quickly they run."""
    limiter = api.app.state.ctx.rate_limiter
    assert limiter is not None
    limiter.clock = lambda: PINNED


def test_the_request_rate_limit_is_per_workspace_and_answers_429(make_client, settings) -> None:
    api = make_client(settings_=settings.with_(rate_limit_per_minute=3), workspace=None)
    _pin_clock(api)
    busy, quiet = issue_key(api, "busy"), issue_key(api, "quiet")
    assert [api.get("/clients", headers=bearer(busy)).status_code for _ in range(3)] == [200] * 3
    r = api.get("/clients", headers=bearer(busy))
    assert r.status_code == 429 and int(r.headers["Retry-After"]) == 30  # to the minute's end
    assert r.json()["detail"][0]["type"] == "rate_limited"
    assert api.get("/clients", headers=bearer(quiet)).status_code == 200
    assert api.get("/healthz").status_code == 200  # public routes are not counted


def test_the_memory_window_starts_again_each_minute() -> None:
    now = [120.0]
    limiter = MemoryRateLimiter(2, clock=lambda: now[0])

    async def hits(n: int) -> list[float | None]:
        return [await limiter.hit(1) for _ in range(n)]

    assert asyncio.run(hits(3)) == [None, None, 60.0]
    now[0] = 150.0
    assert asyncio.run(hits(1)) == [30.0]
    now[0] = 180.0
    assert asyncio.run(hits(2)) == [None, None]


@postgresql_only
def test_web_tasks_share_the_limit_through_redis(make_client, settings, redis_prefix: str) -> None:
    shared = settings.with_(
        rate_limit_per_minute=4,
        rate_limit_backend="redis",
        rate_limit_key_prefix=f"{redis_prefix}ratelimit-{secrets.token_hex(4)}:",
    )
    first = make_client(settings_=shared, workspace=None)
    second = make_client(settings_=shared, workspace=None)  # another web task
    for api in (first, second):  # both count in the same window's key
        _pin_clock(api)
    key = issue_key(first, "shared")
    codes = [api.get("/clients", headers=bearer(key)).status_code for api in (first, second) * 2]
    assert codes == [200] * 4
    assert first.get("/clients", headers=bearer(key)).status_code == 429
    refused = second.get("/clients", headers=bearer(key))
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "30"


@postgresql_only
def test_an_unreachable_redis_does_not_take_the_api_down(make_client, settings) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = make_client(
        settings_=settings.with_(
            rate_limit_per_minute=1,
            rate_limit_backend="redis",
            redis_url=f"redis://127.0.0.1:{port}/0",
        ),
    )
    assert [api.get("/clients").status_code for _ in range(3)] == [200] * 3


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_the_backend_follows_the_phase(backend: str) -> None:
    env = {"QUEUE_BACKEND": "celery"} if backend == "redis" else {}
    assert Settings.from_env(env).rate_limit_backend == backend
