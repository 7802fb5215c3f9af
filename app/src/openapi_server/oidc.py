"""OIDC access tokens (JWT) from the web front end's identity provider.

A token is accepted when its signature verifies against a key of the issuer's JWKS,
its `alg` is one of OIDC_ALGORITHMS (asymmetric only; `none` and HS* are refused by the
configuration), and `iss`, `aud`, `exp`, `iat` (and `nbf` when present) check out
within OIDC_LEEWAY_S. The JWKS is cached for OIDC_JWKS_TTL_S; a token whose `kid`
is not in the cache triggers one refetch, at most every OIDC_JWKS_MIN_REFETCH_S, so
a rotated key works at once while a flood of made-up `kid`s cannot hammer the issuer.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from .config import Settings

log = logging.getLogger(__name__)

Fetcher = Callable[[str], bytes]
MAX_JWKS_BYTES = 1024 * 1024
# The JWK key type each algorithm family verifies with.
KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


class TokenError(ValueError):
    """The token is not acceptable; the message says why (safe to show to the caller)."""


class JwksUnavailable(RuntimeError):
    """The issuer's JWKS could not be fetched and no cached copy exists."""


def default_fetcher(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read(MAX_JWKS_BYTES)


@dataclass(frozen=True)
class TokenClaims:
    subject: str
    workspace: str
    scopes: frozenset[str]


SigningKey = tuple[jwt.PyJWK, str | None]  # the key and the `alg` its JWK names, if any


def _signing_keys(document: Any) -> dict[str | None, SigningKey]:
    """The usable signature keys of a JWKS document, by `kid`; others are skipped."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError("not a JWKS document")
    keys: dict[str | None, SigningKey] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWTError:
            continue  # a key type this build cannot use
        keys[key.key_id] = (key, entry.get("alg"))
    return keys


class JwksCache:
    def __init__(
        self,
        url: str,
        fetcher: Fetcher,
        ttl_s: float,
        min_refetch_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.fetcher = fetcher
        self.ttl_s = ttl_s
        self.min_refetch_s = min_refetch_s
        self.clock = clock
        self.fetches = 0
        self._keys: dict[str | None, SigningKey] | None = None  # by `kid`
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        self._fetched_at = self.clock()  # also on failure: the refetch limit holds
        self.fetches += 1
        try:
            keys = _signing_keys(json.loads(self.fetcher(self.url)))
        except Exception as exc:
            if self._keys is None:
                raise JwksUnavailable(f"cannot load the JWKS: {exc}") from exc
            log.warning("JWKS refresh failed, keeping the cached keys: %s", exc)
            return
        self._keys = keys

    def key(self, kid: str | None) -> SigningKey:
        with self._lock:
            now = self.clock()
            if self._keys is None or now - self._fetched_at >= self.ttl_s:
                self._refresh()
            assert self._keys is not None
            found = self._keys.get(kid)
            if found is None and now - self._fetched_at >= self.min_refetch_s:
                self._refresh()  # perhaps a rotated key
                found = self._keys.get(kid)
        if found is None:
            raise TokenError("token signed with an unknown key")
        return found


def _scopes(claims: dict[str, Any], prefix: str) -> frozenset[str]:
    raw = claims.get("scope", claims.get("scp", ""))
    values = raw.split() if isinstance(raw, str) else raw if isinstance(raw, list) else []
    return frozenset(
        v[len(prefix) :] for v in values if isinstance(v, str) and v.startswith(prefix)
    )


class OidcVerifier:
    def __init__(self, settings: Settings, fetcher: Fetcher | None = None) -> None:
        assert settings.oidc_jwks_url and settings.oidc_issuer and settings.oidc_audience
        self.issuer = settings.oidc_issuer
        self.audience = settings.oidc_audience
        self.algorithms = settings.oidc_algorithms
        self.leeway = settings.oidc_leeway_s
        self.workspace_claim = settings.oidc_workspace_claim
        self.scope_prefix = settings.oidc_scope_prefix
        self.jwks = JwksCache(
            settings.oidc_jwks_url,
            fetcher or default_fetcher,
            settings.oidc_jwks_ttl_s,
            settings.oidc_jwks_refetch_s,
        )

    def verify(self, token: str) -> TokenClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("malformed token") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise TokenError(f"token algorithm {alg!r} is not allowed")
        kid = header.get("kid")
        jwk, declared = self.jwks.key(kid if isinstance(kid, str) else None)
        # A key that names its algorithm is used for no other, and a key of another type
        # never verifies (an EC key cannot check an RS256 token).
        if (declared is not None and declared != alg) or KEY_TYPES[alg[:2]] != jwk.key_type:
            raise TokenError("token algorithm does not match its key")
        try:
            claims = jwt.decode(
                token,
                key=jwk.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise TokenError(f"token rejected: {exc}") from None
        workspace = claims.get(self.workspace_claim)
        if not isinstance(workspace, str) or not workspace:
            raise TokenError(f"token has no {self.workspace_claim!r} claim")
        return TokenClaims(
            subject=str(claims["sub"]),
            workspace=workspace,
            scopes=_scopes(claims, self.scope_prefix),
        )
