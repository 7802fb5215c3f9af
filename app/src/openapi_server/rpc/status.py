"""Refusals as gRPC status codes, and back to today's HTTP responses at the edge.

A service aborts with the code for the HTTP status the monolith would answer and the
JSON `detail` as the status message; the edge turns the code back into that status with
the same body. The pairs are one-to-one, so the round trip is exact:

    404 NOT_FOUND   409 ALREADY_EXISTS   422 INVALID_ARGUMENT   429 RESOURCE_EXHAUSTED
    503 UNAVAILABLE (database down or unmigrated, as the monolith's 503)

A service that cannot be reached, or answers too late, is UNAVAILABLE or
DEADLINE_EXCEEDED from gRPC itself (no JSON): 503 at the edge, never "not found".
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import grpc
from pydantic import ValidationError
from sqlalchemy.exc import DataError, SQLAlchemyError

from ..database_errors import describe
from ..quota import QuotaExceeded
from ..refusals import Refused
from ..sharding import BucketMoving

log = logging.getLogger(__name__)

T = TypeVar("T")

CODE_OF_STATUS = {
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ALREADY_EXISTS,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}
STATUS_OF_CODE = {code: status for status, code in CODE_OF_STATUS.items()}
STATUS_OF_CODE[grpc.StatusCode.DEADLINE_EXCEEDED] = 503

QUOTA_KEY = "x-coldreach-quota"
RETRY_AFTER_KEY = "retry-after"


def validation_detail(exc: ValidationError) -> list[dict[str, Any]]:
    # The shape of the HTTP app's 422s: location, message, type (never the input).
    return [
        {"loc": ["body", *e.get("loc", ())], "msg": str(e.get("msg", "")), "type": e["type"]}
        for e in exc.errors()
    ]


def abort(context: grpc.ServicerContext, status: int, detail: object) -> NoReturn:
    context.abort(CODE_OF_STATUS[status], json.dumps({"detail": detail}))
    raise AssertionError("unreachable: abort raises")


def answer(context: grpc.ServicerContext, work: Callable[..., T], *args: Any) -> T:
    """Run the call's database work; refusals and database failures become status codes."""
    try:
        return work(*args)
    except Refused as exc:
        abort(context, exc.status, exc.detail)
    except BucketMoving as exc:
        # Retryable: the write goes through once the bucket has switched shards.
        context.set_trailing_metadata(((RETRY_AFTER_KEY, str(_whole_seconds(exc.retry_after_s))),))
        detail = [{"loc": [], "msg": str(exc), "type": "bucket_moving"}]
        abort(context, 503, detail)
    except QuotaExceeded as exc:
        context.set_trailing_metadata(
            ((RETRY_AFTER_KEY, str(exc.retry_after_s)), (QUOTA_KEY, str(exc.quota)))
        )
        detail = [{"loc": ["body"], "msg": str(exc), "type": "quota_exceeded"}]
        abort(context, 429, detail)
    except ValidationError as exc:
        abort(context, 422, validation_detail(exc))
    except DataError as exc:
        log.warning("database refused a value: %s", exc.orig)
        abort(context, 422, [{"loc": ["body"], "msg": "value out of range", "type": "data"}])
    except SQLAlchemyError as exc:
        detail = describe(exc)
        log.error("%s: %s", detail, exc)
        abort(context, 503, detail)


def _whole_seconds(s: float) -> int:
    """Retry-After takes whole seconds; never 0 for a wait that is not over."""
    return max(1, math.ceil(s))


def raise_for(exc: grpc.RpcError, service: str) -> NoReturn:
    """At the edge: the HTTP answer the monolith would have given."""
    code = exc.code()  # type: ignore[attr-defined]
    message = exc.details() or ""  # type: ignore[attr-defined]
    status = STATUS_OF_CODE.get(code)
    try:
        detail = json.loads(message)["detail"]
    except (ValueError, KeyError, TypeError):
        detail = None
    if status == 429:
        trailers: dict[Any, Any] = dict(exc.trailing_metadata() or ())  # type: ignore[attr-defined]
        raise QuotaExceeded(int(trailers[QUOTA_KEY]), int(trailers[RETRY_AFTER_KEY]))
    if status == 503 and detail is not None:
        trailers = dict(exc.trailing_metadata() or ())  # type: ignore[attr-defined]
        retry = trailers.get(RETRY_AFTER_KEY)
        raise Refused(503, detail, {"Retry-After": retry} if retry else None)
    if status is not None and detail is not None:
        raise Refused(status, detail)
    if status == 503:
        # The service itself did not answer (down, overloaded, too slow).
        log.warning("%s: %s %s", service, code.name, message)
        raise Refused(503, [{"loc": [], "msg": f"{service} unavailable", "type": "unavailable"}])
    log.error("%s answered %s: %s", service, code.name, message)
    raise Refused(502, [{"loc": [], "msg": f"{service} failed", "type": "upstream_error"}])
