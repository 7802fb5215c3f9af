"""Bearer credentials to a principal: API keys (programs) and OIDC access tokens (people).

A verified API key is cached in memory for API_KEY_CACHE_TTL_S, so most requests cost
no database round trip; a revoked key therefore stops working within that time. The
key's `last_used_at` is written at most once a minute (LAST_USED_RESOLUTION_S), not on
every request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import select

from .apikeys import PREFIX, verify_key
from .config import Settings
from .db import Database, Workspace
from .oidc import Fetcher, JwksUnavailable, OidcVerifier, TokenError
from .principal import Principal

T = TypeVar("T")
LAST_USED_RESOLUTION_S = 60.0
MAX_CACHED = 10_000


class AuthError(Exception):
    """Credentials refused: 401 (`invalid_token`), 403, or 503 when the issuer is down."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


class Authenticator:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        jwks_fetcher: Fetcher | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.ttl_s = settings.api_key_cache_ttl_s
        self.clock = clock
        self.oidc = OidcVerifier(settings, jwks_fetcher) if settings.oidc_enabled else None
        self._keys: dict[str, tuple[float, Principal]] = {}
        self._workspaces: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def cached(self, token: str) -> Principal | None:
        """The principal of an API key verified less than API_KEY_CACHE_TTL_S ago (no I/O)."""
        entry = self._keys.get(token)
        if entry is not None and self.clock() < entry[0]:
            return entry[1]
        return None

    def authenticate(self, token: str) -> Principal:
        """Verify the token (database, JWKS: may block); AuthError if it is not acceptable."""
        if token.startswith(PREFIX):
            return self._api_key(token)
        if self.oidc is not None and token.count(".") == 2:
            return self._oidc(self.oidc, token)
        raise AuthError("unknown or malformed credentials")

    def _remember(self, cache: dict[str, tuple[float, T]], key: str, value: T) -> None:
        with self._lock:
            if len(cache) >= MAX_CACHED:
                cache.clear()
            cache[key] = (self.clock() + self.ttl_s, value)

    def _api_key(self, token: str) -> Principal:
        with self.db.session() as s:
            principal = verify_key(s, token, LAST_USED_RESOLUTION_S)
        if principal is None:
            raise AuthError("invalid or revoked API key")
        if self.ttl_s > 0:
            self._remember(self._keys, token, principal)
        return principal

    def _oidc(self, oidc: OidcVerifier, token: str) -> Principal:
        try:
            claims = oidc.verify(token)
        except TokenError as exc:
            raise AuthError(str(exc)) from None
        except JwksUnavailable as exc:
            raise AuthError(f"identity provider unavailable: {exc}", status=503) from None
        return Principal(
            workspace_id=self._workspace_id(claims.workspace),
            scopes=claims.scopes,
            subject=f"oidc:{claims.subject}",
        )

    def _workspace_id(self, name: str) -> int:
        entry = self._workspaces.get(name)
        if entry is not None and self.clock() < entry[0]:
            return entry[1]
        with self.db.session() as s:
            workspace_id = s.scalar(select(Workspace.id).where(Workspace.name == name))
        if workspace_id is None:
            raise AuthError(f"workspace {name[:100]!r} does not exist", status=403)
        self._remember(self._workspaces, name, workspace_id)
        return workspace_id
