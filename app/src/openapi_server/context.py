"""Everything a request or the in-process worker needs, built once per app."""

from __future__ import annotations

from dataclasses import dataclass

from .auth import Authenticator
from .config import Settings
from .db import Database
from .pipeline import Pipeline
from .queues import QueueBackend
from .ratelimit import RateLimiter
from .sns import Fetcher, SnsVerifier


@dataclass
class AppContext:
    settings: Settings
    db: Database
    pipeline: Pipeline
    queue: QueueBackend
    sns: SnsVerifier
    # GETs SubscribeURL to confirm an SNS subscription (injectable for tests).
    confirm_fetcher: Fetcher
    # The migration head this code expects the database at (readiness).
    schema_head: str | None
    auth: Authenticator
    rate_limiter: RateLimiter | None
