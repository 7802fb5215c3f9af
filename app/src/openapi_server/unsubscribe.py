"""Signed, expiring unsubscribe tokens and the RFC 8058 headers that carry them.

A token is `<client id>.<expiry, unix seconds>.<signature>`. The signature is an
HMAC-SHA256 over the client id, the client's lower-cased address and the expiry,
so a token stops working if the id is ever reused for another address, and the
address itself never appears in the link.
"""

from __future__ import annotations

import base64
import hmac
import re
import time
from dataclasses import dataclass

from .db import MAX_ID


class TokenError(ValueError):
    pass


# `<client id>.<expiry>.<signature>`: ASCII digits only (str.isdigit would let "²" through
# to int()), at most a 32-bit id and a 12-digit expiry.
_TOKEN = re.compile(r"([0-9]{1,10})\.([0-9]{1,12})\.[^.]*")


@dataclass(frozen=True)
class TokenClaims:
    client_id: int
    expires_at: int


def _sig(secret: str, client_id: int, email_key: str, expires_at: int) -> str:
    mac = hmac.new(
        secret.encode(), f"unsubscribe:{client_id}:{email_key}:{expires_at}".encode(), "sha256"
    ).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def make_token(
    secret: str, client_id: int, email_key: str, ttl_s: int, now: float | None = None
) -> str:
    expires_at = int((time.time() if now is None else now) + ttl_s)
    return f"{client_id}.{expires_at}.{_sig(secret, client_id, email_key, expires_at)}"


def parse_token(token: str) -> TokenClaims:
    """Structure only; the signature is checked by `verify_token` once the client is loaded."""
    match = _TOKEN.fullmatch(token)
    if match is None or not 1 <= int(match[1]) <= MAX_ID:
        raise TokenError("malformed token")
    return TokenClaims(client_id=int(match[1]), expires_at=int(match[2]))


def verify_token(secret: str, token: str, email_key: str, now: float | None = None) -> TokenClaims:
    claims = parse_token(token)
    expected = _sig(secret, claims.client_id, email_key, claims.expires_at)
    if not hmac.compare_digest(expected, token.split(".")[2]):
        raise TokenError("bad signature")
    if claims.expires_at < (time.time() if now is None else now):
        raise TokenError("token expired")
    return claims


def unsubscribe_headers(base_url: str, token: str) -> dict[str, str]:
    return {
        "List-Unsubscribe": f"<{base_url}/unsubscribe/{token}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
