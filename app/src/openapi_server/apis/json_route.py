"""Routes whose JSON bodies must be UTF-8, as RFC 8259 requires of JSON on the wire.

`json.loads` on bytes also detects UTF-16 and UTF-32, which the API does not accept:
such a body is a 422 like any other unparsable one.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def is_utf8_json_text(body: bytes) -> bool:
    # JSON text never holds a raw NUL; UTF-16/32 without a BOM always does for ASCII text.
    if b"\x00" in body:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class Utf8JsonRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def utf8_only(request: Request) -> Response:
            if not is_utf8_json_text(await request.body()):
                raise RequestValidationError(
                    [{"loc": ("body",), "msg": "body is not UTF-8 JSON", "type": "json_invalid"}]
                )
            return await handler(request)

        return utf8_only
