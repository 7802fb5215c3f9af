"""Who is calling: the workspace a request acts in and the scopes it holds."""

from __future__ import annotations

from dataclasses import dataclass

READ, WRITE, SEND = "read", "write", "send"
SCOPES = (READ, WRITE, SEND)


@dataclass(frozen=True)
class Principal:
    workspace_id: int
    scopes: frozenset[str]
    # `key:<public id>` or `oidc:<sub>`: for logs, never for access decisions.
    subject: str


def parse_scopes(values: list[str] | tuple[str, ...]) -> frozenset[str]:
    """`read`, `write`, `send`, in any mix of repeated and comma-separated values."""
    scopes = frozenset(v.strip() for value in values for v in value.split(",") if v.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    return scopes
