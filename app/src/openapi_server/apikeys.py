"""API keys for programs: `crk_<public id>_<secret>`.

The public id (12 hex characters) names the key in listings and logs and finds its
row; the secret is 32 random bytes. Only SHA-256 of the secret is stored. A fast hash
is right here: slow password hashes (bcrypt, scrypt, argon2) exist to make guessing
low-entropy human passwords expensive, but guessing a 256-bit random secret from its
hash is infeasible at any speed, while a slow hash would cost tens of milliseconds of
CPU on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .db import ApiKey, Workspace, utcnow
from .principal import SCOPES, Principal

PREFIX = "crk_"
_KEY = re.compile(r"crk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_PUBLIC_ID = re.compile(r"(?:crk_)?([0-9a-f]{12})")
WORKSPACE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class ApiKeyError(ValueError):
    """A key or workspace argument that cannot be used; the message says why."""


@dataclass(frozen=True)
class KeyInfo:
    public_id: str
    workspace: str
    scopes: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_key(token: str) -> tuple[str, str] | None:
    """(public id, secret) of a well-formed key, else None."""
    match = _KEY.fullmatch(token)
    return (match[1], match[2]) if match else None


def get_or_create_workspace(s: Session, name: str) -> Workspace:
    if not WORKSPACE_NAME.fullmatch(name):
        raise ApiKeyError(
            "workspace names are 1-100 letters, digits, '.', '_' or '-', starting with a "
            f"letter or digit; got {name!r}"
        )
    workspace = s.scalars(select(Workspace).where(Workspace.name == name)).first()
    if workspace is None:
        workspace = Workspace(name=name, created_at=utcnow())
        s.add(workspace)
        try:
            s.flush()
        except IntegrityError:  # created concurrently
            s.rollback()
            workspace = s.scalars(select(Workspace).where(Workspace.name == name)).one()
    return workspace


def create_key(s: Session, workspace_name: str, scopes: frozenset[str]) -> str:
    """A new key for the workspace (created if missing); the only time the secret is seen."""
    if not scopes:
        raise ApiKeyError(f"a key needs at least one scope ({', '.join(SCOPES)})")
    workspace = get_or_create_workspace(s, workspace_name)
    public_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    s.add(
        ApiKey(
            workspace_id=workspace.id,
            public_id=public_id,
            secret_hash=hash_secret(secret),
            scopes=" ".join(sorted(scopes)),
            created_at=utcnow(),
        )
    )
    s.commit()
    return f"{PREFIX}{public_id}_{secret}"


def public_id_of(key_or_prefix: str) -> str:
    """The public id in a whole key, in `crk_<public id>`, or given alone."""
    key_or_prefix = key_or_prefix.strip()
    parsed = parse_key(key_or_prefix)
    if parsed is not None:
        return parsed[0]
    match = _PUBLIC_ID.fullmatch(key_or_prefix.rstrip("_"))
    if match is None:
        raise ApiKeyError("expected a key (crk_...), its prefix crk_<12 hex> or the 12 hex alone")
    return match[1]


def revoke_key(s: Session, key_or_prefix: str) -> bool:
    """Revoke the key; False if there is no such key. Revoking twice is harmless."""
    key = s.scalars(select(ApiKey).where(ApiKey.public_id == public_id_of(key_or_prefix))).first()
    if key is None:
        return False
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        s.commit()
    return True


def list_keys(s: Session, workspace_name: str | None = None) -> list[KeyInfo]:
    query = select(ApiKey, Workspace.name).join(Workspace).order_by(ApiKey.id)
    if workspace_name is not None:
        query = query.where(Workspace.name == workspace_name)
    return [
        KeyInfo(k.public_id, name, k.scopes, k.created_at, k.revoked_at, k.last_used_at)
        for k, name in s.execute(query).all()
    ]


def verify_key(s: Session, token: str, touch_after_s: float) -> Principal | None:
    """The key's principal, or None when it is malformed, unknown, wrong or revoked.

    Records `last_used_at` only when the stored value is older than `touch_after_s`.
    """
    parsed = parse_key(token)
    if parsed is None:
        return None
    public_id, secret = parsed
    key = s.scalars(select(ApiKey).where(ApiKey.public_id == public_id)).first()
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.secret_hash, hash_secret(secret)):
        return None
    now = utcnow()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() >= touch_after_s:
        key.last_used_at = now
        s.commit()
    return Principal(
        workspace_id=key.workspace_id,
        scopes=frozenset(key.scopes.split()),
        subject=f"key:{public_id}",
    )
