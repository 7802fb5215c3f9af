"""Request body limits, enforced before the body is read.

A declared `Content-Length` over the limit is answered with 413 without reading a
byte; a chunked body is counted as it streams and cut off at the limit. Limits go by
route class: the SES webhook (SNS messages are at most 256 KiB before JSON
escaping), the unsubscribe links (the body is ignored), and every other route.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import Settings

# RFC 8058 one-click posts carry `List-Unsubscribe=One-Click`; the body is ignored.
UNSUBSCRIBE_BODY_BYTES = 4096


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        detail = [{"loc": ["body"], "msg": f"body larger than {limit} bytes", "type": "too_large"}]
        super().__init__(status_code=413, detail=detail)


def limit_for(settings: Settings, path: str) -> int:
    if path.startswith("/webhooks/"):
        return settings.max_webhook_body_bytes
    if path.startswith("/unsubscribe/"):
        return UNSUBSCRIBE_BODY_BYTES
    return settings.max_body_bytes


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(self.settings, scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _too_large(limit)(scope, receive, send)
            return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised into whoever reads the body; FastAPI passes HTTPExceptions on.
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await _too_large(limit)(scope, receive, send)


def _too_large(limit: int) -> Any:
    exc = BodyTooLarge(limit)
    # Close the connection: the rest of the body is never read.
    return JSONResponse({"detail": exc.detail}, status_code=413, headers={"Connection": "close"})
