"""AUTO_MIGRATE for the API, as a step of the ASGI lifespan.

Run inside the app's own lifespan, a failure would reach uvicorn as Starlette's
traceback text. Here, a database that stays unreachable ends startup with one line
(`lifespan.startup.failed`), and uvicorn exits non-zero.
"""

from __future__ import annotations

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import Settings
from .migrate import DatabaseUnreachable, upgrade_when_reachable


class MigrateAtStartup:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        first = await receive()
        if first["type"] == "lifespan.startup":
            try:
                await anyio.to_thread.run_sync(upgrade_when_reachable, self.settings)
            except DatabaseUnreachable as exc:
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
        replayed = False

        async def replay_first() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return first
            return await receive()

        await self.app(scope, replay_first, send)
