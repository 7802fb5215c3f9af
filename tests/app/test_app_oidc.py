"""OIDC access tokens from the web front end, against keys and a JWKS made here."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from app_helpers import bearer, issue_key
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from openapi_server.config import ConfigError, Settings
from openapi_server.oidc import JwksCache, JwksUnavailable, TokenError

ISSUER = "https://login.example.com/"
AUDIENCE = "https://api.coldreach.example.com"


class Issuer:
    """An identity provider: signing keys, their JWKS, and tokens."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.published: list[str] = []
        self.fetched = 0
        self.down = False

    def add_key(self, kid: str, publish: bool = True) -> None:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if publish:
            self.published.append(kid)

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid in self.published:
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[kid].public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def fetch(self, url: str) -> bytes:
        assert url == "https://login.example.com/.well-known/jwks.json"
        self.fetched += 1
        if self.down:
            raise OSError("connection refused")
        return json.dumps(self.jwks()).encode()

    def token(self, kid: str = "k1", alg: str = "RS256", key: Any = None, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "user-1",
            "iat": now,
            "exp": now + 300,
            "workspace": "acme",
            "scope": "openid read write",
            **claims,
        }
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, key or self.keys[kid], algorithm=alg, headers={"kid": kid})


def oidc_settings(settings: Settings, **extra: Any) -> Settings:
    return settings.with_(
        oidc_issuer=ISSUER,
        oidc_audience=AUDIENCE,
        oidc_jwks_url="https://login.example.com/.well-known/jwks.json",
        **extra,
    )


@pytest.fixture(scope="module")
def issuer_keys() -> Issuer:
    issuer = Issuer()
    issuer.add_key("k1")
    issuer.add_key("k2", publish=False)  # the next key, published at rotation
    return issuer


@pytest.fixture
def issuer(issuer_keys: Issuer) -> Issuer:
    fresh = Issuer()
    fresh.keys = dict(issuer_keys.keys)
    fresh.published = ["k1"]
    return fresh


@pytest.fixture
def web(make_client, settings: Settings, issuer: Issuer):
    api = make_client(
        settings_=oidc_settings(settings, oidc_jwks_refetch_s=0.0),
        jwks_fetcher=issuer.fetch,
        workspace=None,
    )
    issue_key(api, "acme")  # the workspace exists
    return api


def test_a_valid_token_acts_in_its_workspace_with_its_scopes(web, issuer: Issuer) -> None:
    token = issuer.token()
    r = web.post("/clients", json={"name": "W", "email": "w@example.com"}, headers=bearer(token))
    assert r.status_code == 201, r.text
    assert web.get("/clients", headers=bearer(token)).json()["total"] == 1
    # The same workspace as the acme API keys, and no other.
    assert web.get("/clients", headers=bearer(issue_key(web, "acme"))).json()["total"] == 1
    assert web.get("/clients", headers=bearer(issue_key(web, "other"))).json()["total"] == 0
    r = web.post(
        "/email/send",
        json={"client_id": r.json()["id"], "subject": "S", "body": "B"},
        headers=bearer(token),
    )
    assert r.status_code == 403 and 'scope="send"' in r.headers["WWW-Authenticate"]


def test_small_clock_skew_is_tolerated(web, issuer: Issuer) -> None:
    now = int(time.time())
    token = issuer.token(exp=now - 10, iat=now + 10, nbf=now + 10)  # within the 30 s leeway
    assert web.get("/clients", headers=bearer(token)).status_code == 200


def test_bad_tokens_are_401(web, issuer: Issuer) -> None:
    now = int(time.time())
    unsigned = jwt.encode(
        {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "x",
            "iat": now,
            "exp": now + 60,
            "workspace": "acme",
        },
        None,
        algorithm="none",
        headers={"kid": "k1"},
    )
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = {
        "expired": issuer.token(exp=now - 120),
        "not yet valid": issuer.token(nbf=now + 120),
        "issued in the future": issuer.token(iat=now + 120),
        "wrong audience": issuer.token(aud="https://someone-else.example.com"),
        "wrong issuer": issuer.token(iss="https://evil.example.com/"),
        "no exp": issuer.token(exp=None),
        "no workspace": issuer.token(workspace=None),
        "alg none": unsigned,
        "RS384 not allowed": issuer.token(alg="RS384"),
        "forged signature": issuer.token(key=impostor),
        "unknown kid": issuer.token(kid="k2"),
        "garbage": "a.b.c",
    }
    for name, token in cases.items():
        r = web.get("/clients", headers=bearer(token))
        assert r.status_code == 401, (name, r.text)
        assert 'error="invalid_token"' in r.headers["WWW-Authenticate"], name


def test_hs256_signed_with_the_public_key_is_refused(web, issuer: Issuer) -> None:
    import base64
    import hashlib
    import hmac

    now = int(time.time())
    public_pem = (
        issuer.keys["k1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    header = b64(json.dumps({"alg": "HS256", "kid": "k1", "typ": "JWT"}).encode())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "iat": now, "exp": now + 60}
    payload = b64(json.dumps({**claims, "workspace": "acme", "scope": "read"}).encode())
    signature = b64(hmac.new(public_pem, header + b"." + payload, hashlib.sha256).digest())
    token = b".".join((header, payload, signature)).decode()
    r = web.get("/clients", headers=bearer(token))
    assert r.status_code == 401 and "HS256" in r.json()["detail"][0]["msg"]


def test_hostile_header_values_do_not_break_the_challenge(web) -> None:
    import base64

    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    for alg in ("\u20ac", 'RS256"\r\nSet-Cookie: x=1', "\\"):
        token = f"{b64({'alg': alg, 'kid': 'k1'})}.{b64({'sub': 'x'})}.c2ln"
        r = web.get("/clients", headers=bearer(token))
        assert r.status_code == 401, alg
        challenge = r.headers["WWW-Authenticate"]
        assert challenge.isascii() and "\r" not in challenge and "Set-Cookie" not in r.headers


def test_an_unknown_workspace_is_403(web, issuer: Issuer) -> None:
    r = web.get("/clients", headers=bearer(issuer.token(workspace="nobody")))
    assert r.status_code == 403 and "nobody" in r.text


def test_a_rotated_key_works_at_once(web, issuer: Issuer) -> None:
    assert web.get("/clients", headers=bearer(issuer.token("k1"))).status_code == 200
    fetched = issuer.fetched
    assert web.get("/clients", headers=bearer(issuer.token("k2"))).status_code == 401
    issuer.published.append("k2")  # the issuer rotates
    assert web.get("/clients", headers=bearer(issuer.token("k2"))).status_code == 200
    assert issuer.fetched == fetched + 2  # one refetch per unknown kid, no more
    assert web.get("/clients", headers=bearer(issuer.token("k2"))).status_code == 200
    assert issuer.fetched == fetched + 2


def test_the_jwks_is_cached_and_unknown_kids_refetch_at_most_once_per_interval() -> None:
    now = [0.0]
    issuer = Issuer()
    issuer.add_key("k1")
    cache = JwksCache(
        "https://login.example.com/.well-known/jwks.json",
        issuer.fetch,
        ttl_s=600,
        min_refetch_s=30,
        clock=lambda: now[0],
    )
    assert cache.key("k1")[0].key_id == "k1" and issuer.fetched == 1
    now[0] = 100
    cache.key("k1")
    assert issuer.fetched == 1  # cached
    for _ in range(5):  # a flood of made-up kids: one refetch
        with pytest.raises(TokenError):
            cache.key("made-up")
    assert issuer.fetched == 2
    now[0] = 129
    with pytest.raises(TokenError):
        cache.key("made-up")
    assert issuer.fetched == 2
    now[0] = 131
    with pytest.raises(TokenError):
        cache.key("made-up")
    assert issuer.fetched == 3
    issuer.down = True
    now[0] = 1000  # past the TTL, the issuer is down: the cached keys still serve
    assert cache.key("k1")[0].key_id == "k1"
    assert issuer.fetched == 4

    empty = JwksCache("https://login.example.com/.well-known/jwks.json", issuer.fetch, 600, 30)
    with pytest.raises(JwksUnavailable):
        empty.key("k1")


def test_an_unreachable_issuer_is_503_not_401(make_client, settings, issuer: Issuer) -> None:
    issuer.down = True
    api = make_client(settings_=oidc_settings(settings), jwks_fetcher=issuer.fetch, workspace=None)
    r = api.get("/clients", headers=bearer(issuer.token()))
    assert r.status_code == 503


def test_the_jwks_is_fetched_over_http_from_the_configured_url(
    make_client, settings, issuer: Issuer
) -> None:
    """No injected fetcher: the default one reads a JWKS served by a local HTTP server."""
    body = json.dumps(issuer.jwks()).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/jwks.json" else 404)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
        api = make_client(
            settings_=oidc_settings(settings).with_(oidc_jwks_url=url), workspace=None
        )
        issue_key(api, "acme")
        assert api.get("/clients", headers=bearer(issuer.token())).status_code == 200
    finally:
        server.shutdown()


def test_an_ec_key_cannot_verify_an_rs256_token(make_client, settings, issuer: Issuer) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwk = jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True)
    served = {"keys": [{**jwk, "kid": "k1", "use": "sig"}]}  # no `alg` named
    api = make_client(
        settings_=oidc_settings(settings, oidc_algorithms=("RS256", "ES256")),
        jwks_fetcher=lambda url: json.dumps(served).encode(),
        workspace=None,
    )
    issue_key(api, "acme")
    assert api.get("/clients", headers=bearer(issuer.token("k1"))).status_code == 401
    good = issuer.token("k1", alg="ES256", key=ec_key)
    assert api.get("/clients", headers=bearer(good)).status_code == 200


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OIDC_ALGORITHMS": "none"}, "refused NONE"),
        ({"OIDC_ALGORITHMS": "RS256,HS256"}, "refused HS256"),
        ({"OIDC_ISSUER": ISSUER}, "set together"),
        ({"OIDC_JWKS_URL": "http://login.example.com/jwks"}, "https"),
        ({"CORS_ORIGINS": "*"}, "CORS_ORIGINS"),
        ({"CORS_ORIGINS": "https://app.example.com/path"}, "CORS_ORIGINS"),
        ({"RATE_LIMIT_BACKEND": "memcached"}, "RATE_LIMIT_BACKEND"),
        ({"DAILY_SEND_QUOTA": "-1"}, "DAILY_SEND_QUOTA"),
    ],
)
def test_unsafe_settings_are_refused(env: dict[str, str], message: str) -> None:
    full = {
        "OIDC_ISSUER": ISSUER,
        "OIDC_AUDIENCE": AUDIENCE,
        "OIDC_JWKS_URL": "https://login.example.com/jwks",
    }
    if "OIDC_ALGORITHMS" in env:
        env = {**full, **env}
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)
