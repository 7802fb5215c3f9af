"""Everything a request or the in-process worker needs, built once per app."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session

from .auth import Authenticator
from .config import Settings
from .db import Database
from .pipeline import Pipeline
from .principal import Principal
from .queues import QueueBackend
from .ratelimit import RateLimiter
from .sharding import ShardRouter
from .sns import Fetcher, SnsVerifier


class RemoteOperations(Protocol):
    """Phase 3: where the operations run instead of this process (rpc/edge.py)."""

    def api(self, ctx: AppContext, principal: Principal | None) -> Any: ...
    def close(self) -> None: ...


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
    remote: RemoteOperations | None = None
    # Phase 3 with DB_SHARD_n: where a client's row lives (unsubscribe finds it there);
    # `db` is then the directory.
    shards: ShardRouter | None = None

    def client_session(self, client_id: int) -> AbstractContextManager[Session]:
        if self.shards is None:
            return self.db.session()
        return self.shards.session_for(client_id)
