"""API keys, the public routes, closed-by-default routing and CORS."""

from __future__ import annotations

import hashlib

import pytest
from app_helpers import bearer, issue_key
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from openapi_server.apikeys import parse_key
from openapi_server.auth import Authenticator, AuthError
from openapi_server.config import Settings
from openapi_server.main import create_app
from openapi_server.security import PUBLIC_DOCS, GuardedRoute, iter_routes, route_scopes
from sqlalchemy import text

PUBLIC_PATHS = {"/healthz", "/readyz", "/unsubscribe/{token}", "/webhooks/ses"}


def _refused(r, status: int = 401) -> None:
    assert r.status_code == status, r.text
    assert r.json()["detail"][0]["loc"] == ["header", "Authorization"]
    if status == 401:
        assert r.headers["WWW-Authenticate"].startswith('Bearer realm="coldreach"')


def test_every_route_is_authenticated_or_in_the_public_list(sqlite_settings: Settings) -> None:
    app = create_app(sqlite_settings)
    seen = set()
    for route in iter_routes(app.routes):
        path = getattr(route, "path", None)
        seen.add(path)
        if isinstance(route, GuardedRoute):
            scopes = route_scopes(route)
            if scopes is None:
                assert path in PUBLIC_PATHS, f"{path} is public but not in the public list"
            else:
                assert scopes, f"{path} declares no scope"
        else:
            assert path in PUBLIC_DOCS, f"{path} is not guarded"
    assert seen >= PUBLIC_PATHS | PUBLIC_DOCS


def test_public_routes_answer_without_credentials(api: TestClient) -> None:
    api.headers.pop("Authorization")
    assert api.get("/healthz").status_code == 200
    assert api.get("/readyz").status_code == 200
    document = api.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["paths"]["/clients"]["get"]["security"] == [{"bearer": ["read"]}]
    assert api.get("/docs").status_code == 200
    assert api.get("/redoc").status_code == 404
    # Public, but each carries its own proof: a bad token is a 400, never a 401.
    assert api.post("/unsubscribe/1.2.abc").status_code == 400
    assert api.post("/webhooks/ses", content=b"{}").status_code == 400


def test_missing_malformed_unknown_wrong_and_revoked_keys_are_401(make_client, settings) -> None:
    api = make_client(settings_=settings.with_(api_key_cache_ttl_s=0.0), workspace=None)
    key = issue_key(api)
    public_id, secret = parse_key(key)  # type: ignore[misc]
    assert api.get("/clients", headers=bearer(key)).status_code == 200
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for headers in (
        {},
        {"Authorization": f"Basic {key}"},
        {"Authorization": "Bearer"},
        bearer("not-a-key"),
        bearer(key[:-1]),  # too short: malformed
        bearer(f"crk_{'f' * 12}_{secret}"),  # unknown public id
        bearer(f"crk_{public_id}_{flipped}"),  # right id, wrong secret
        bearer("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."),  # a JWT while OIDC is off
    ):
        _refused(api.get("/clients", headers=headers))
    assert api.post("/clients", json={"name": "x"}).status_code == 401  # before validation
    assert api.post("/clients", content=b"{not json").status_code == 401

    r = api.get("/clients", headers=bearer(key))
    assert r.status_code == 200
    with api.app.state.ctx.db.session() as s:  # type: ignore[attr-defined]
        from openapi_server.apikeys import revoke_key

        assert revoke_key(s, f"crk_{public_id}")
    r = api.get("/clients", headers=bearer(key))
    _refused(r)
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]


def test_a_key_without_the_scope_is_403_naming_it(api: TestClient) -> None:
    reader = issue_key(api, "test", ("read",))
    assert api.get("/clients", headers=bearer(reader)).status_code == 200
    r = api.post("/clients", json={"name": "N", "email": "n@example.com"}, headers=bearer(reader))
    _refused(r, 403)
    assert r.headers["WWW-Authenticate"].endswith('error="insufficient_scope", scope="write"')
    assert api.get("/clients", headers=bearer(reader)).json()["total"] == 0


def test_only_a_hash_of_the_secret_is_stored(api: TestClient) -> None:
    key = issue_key(api)
    public_id, secret = parse_key(key)  # type: ignore[misc]
    assert len(secret) == 43  # 32 random bytes
    with api.app.state.ctx.db.primary.connect() as conn:  # type: ignore[attr-defined]
        row = conn.execute(
            text("SELECT * FROM api_keys WHERE public_id = :p"), {"p": public_id}
        ).one()
    assert not any(secret in str(value) for value in row)
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()


def test_last_used_is_written_at_most_once_a_minute(make_client, settings) -> None:
    api = make_client(settings_=settings.with_(api_key_cache_ttl_s=0.0), workspace=None)
    key = issue_key(api)
    public_id = parse_key(key)[0]  # type: ignore[index]
    db = api.app.state.ctx.db

    def last_used():
        with db.primary.connect() as conn:
            return conn.execute(
                text("SELECT last_used_at FROM api_keys WHERE public_id = :p"), {"p": public_id}
            ).scalar_one()

    assert last_used() is None
    api.get("/clients", headers=bearer(key))
    first = last_used()
    assert first is not None
    for _ in range(3):
        api.get("/clients", headers=bearer(key))
    assert last_used() == first  # every one of these looked the key up; none wrote
    with db.primary.begin() as conn:
        conn.execute(
            text("UPDATE api_keys SET last_used_at = :t WHERE public_id = :p"),
            {"t": "2000-01-01 00:00:00", "p": public_id},
        )
    api.get("/clients", headers=bearer(key))
    assert str(last_used()) > "2001"


def test_verified_keys_are_cached_for_the_ttl_so_revocation_takes_that_long(
    sqlite_settings: Settings,
) -> None:
    from openapi_server.apikeys import create_key, revoke_key
    from openapi_server.db import Database
    from openapi_server.migrate import upgrade

    upgrade(sqlite_settings)
    db = Database(sqlite_settings)
    now = [1000.0]
    auth = Authenticator(sqlite_settings.with_(api_key_cache_ttl_s=10.0), db, clock=lambda: now[0])
    with db.session() as s:
        key = create_key(s, "cache", frozenset({"read"}))
    assert auth.cached(key) is None
    principal = auth.authenticate(key)
    assert auth.cached(key) == principal and principal.scopes == {"read"}
    with db.session() as s:
        revoke_key(s, key)
    now[0] += 9.9
    assert auth.cached(key) == principal  # within the TTL
    now[0] += 0.2
    assert auth.cached(key) is None
    with pytest.raises(AuthError, match="revoked"):
        auth.authenticate(key)
    db.dispose()


def test_a_route_added_without_a_scope_is_refused(make_client, settings) -> None:
    def with_late_route(app: FastAPI) -> None:
        @app.get("/later")
        def later() -> dict[str, int]:
            return {"secret": 42}

    app = create_app(settings)
    with_late_route(app)
    with TestClient(app) as api:
        _refused(api.get("/later"))
        r = api.get("/later", headers=bearer(issue_key(api)))
        _refused(r, 403)
        assert "42" not in r.text


def test_the_app_refuses_to_start_with_an_unguarded_router(sqlite_settings: Settings) -> None:
    plain = APIRouter()  # not route_class=GuardedRoute

    @plain.get("/open")
    def open_route() -> dict[str, str]:
        return {"anyone": "yes"}

    app = create_app(sqlite_settings)
    app.include_router(plain)
    refused = pytest.raises(RuntimeError, match="routes without access control: \\['GET'\\] /open")
    with refused, TestClient(app):
        pass


def test_cors_allows_only_the_configured_origins(make_client, settings) -> None:
    closed = make_client()
    r = closed.get("/clients", headers={"Origin": "https://app.example.com"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers

    api = make_client(settings_=settings.with_(cors_origins=("https://app.example.com",)))
    preflight = {
        "Origin": "https://app.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    r = api.options("/clients", headers=preflight)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-credentials" not in r.headers
    r = api.options("/clients", headers={**preflight, "Origin": "https://evil.example.com"})
    assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
    r = api.get("/clients", headers={"Origin": "https://app.example.com"})
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"
    r = api.get("/clients", headers={"Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in r.headers
