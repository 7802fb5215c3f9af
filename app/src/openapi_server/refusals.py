"""A request refused for a reason the caller can fix, independent of the transport.

The operations raise `Refused`; the HTTP app answers it with its status and the same
`{"detail": [...]}` body FastAPI gives an HTTPException, and the gRPC services turn it
into a status code the HTTP edge maps back (rpc/status.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn


class Refused(Exception):
    def __init__(
        self,
        status: int,
        detail: list[dict[str, Any]] | str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(str(detail))
        self.status = status
        self.detail = detail
        # e.g. Retry-After on a 503 for a shard bucket being moved.
        self.headers = headers


def detail(loc: Sequence[str | int], msg: str, kind: str) -> list[dict[str, Any]]:
    return [{"loc": list(loc), "msg": msg, "type": kind}]


def fail(status: int, loc: Sequence[str | int], msg: str, kind: str) -> NoReturn:
    raise Refused(status, detail(loc, msg, kind))


def not_found_detail(loc: Sequence[str | int], what: str, ident: int) -> list[dict[str, Any]]:
    return detail(loc, f"{what} {ident} not found", "not_found")


def not_found(loc: Sequence[str | int], what: str, ident: int) -> NoReturn:
    raise Refused(404, not_found_detail(loc, what, ident))
