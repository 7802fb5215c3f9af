"""Per-workspace request rate limit: RATE_LIMIT_PER_MINUTE requests per UTC minute.

A fixed one-minute window per workspace (a burst of up to twice the limit can straddle
a window boundary; the daily send quota is the hard limit on mail). `memory` counts in
the process (phase 1: one process, no Redis); `redis` shares one count between every
web task (phase 2). Redis is asked with short timeouts and, when it fails, requests are
let through for a few seconds rather than the API going down with it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis

from .config import Settings

log = logging.getLogger(__name__)

WINDOW_S = 60
REDIS_TIMEOUT_S = 0.25
REDIS_PAUSE_AFTER_ERROR_S = 5.0


class RateLimiter(Protocol):
    async def hit(self, workspace_id: int) -> float | None:
        """Count one request; None when allowed, else the seconds to wait (Retry-After)."""
        ...

    async def close(self) -> None: ...


def _retry_after(now: float) -> float:
    return float(max(1, math.ceil(WINDOW_S - now % WINDOW_S)))


class MemoryRateLimiter:
    def __init__(self, limit: int, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self.clock = clock
        self._counts: dict[int, tuple[int, int]] = {}  # workspace -> (window, count)
        self._lock = threading.Lock()

    async def hit(self, workspace_id: int) -> float | None:
        now = self.clock()
        window = int(now // WINDOW_S)
        with self._lock:
            current, count = self._counts.get(workspace_id, (window, 0))
            count = count + 1 if current == window else 1
            self._counts[workspace_id] = (window, count)
        return None if count <= self.limit else _retry_after(now)

    async def close(self) -> None:
        pass


class RedisRateLimiter:
    def __init__(
        self, limit: int, url: str, prefix: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.limit = limit
        self.url = url
        self.prefix = prefix
        self.clock = clock
        self._client: aioredis.Redis | None = None
        self._paused_until = 0.0

    async def hit(self, workspace_id: int) -> float | None:
        now = self.clock()
        if now < self._paused_until:
            return None
        if self._client is None:  # created in the server's event loop, on first use
            self._client = aioredis.Redis.from_url(
                self.url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
            )
        key = f"{self.prefix}{workspace_id}:{int(now // WINDOW_S)}"
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, WINDOW_S * 2)
                count, _ = await pipe.execute()
        except Exception as exc:
            self._paused_until = now + REDIS_PAUSE_AFTER_ERROR_S
            log.warning("rate limit store unavailable, not limiting for a few seconds: %s", exc)
            return None
        return None if int(count) <= self.limit else _retry_after(now)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def make_rate_limiter(settings: Settings) -> RateLimiter | None:
    """None when RATE_LIMIT_PER_MINUTE is 0 (no limit)."""
    if settings.rate_limit_per_minute == 0:
        return None
    if settings.rate_limit_backend == "redis":
        return RedisRateLimiter(
            settings.rate_limit_per_minute, settings.redis_url, settings.rate_limit_key_prefix
        )
    return MemoryRateLimiter(settings.rate_limit_per_minute)
