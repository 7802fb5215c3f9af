"""The ASGI app: `uvicorn openapi_server.main:app --host 0.0.0.0 --port $PORT`."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import tracing
from .apis.default_api import router as DefaultApiRouter
from .auth import Authenticator
from .body_limit import BodyLimitMiddleware
from .config import Settings, settings_or_exit
from .context import AppContext
from .database_errors import describe
from .db import Database
from .mailer import Mailer, make_mailer
from .migrate import head_revision
from .pipeline import Pipeline
from .queues import make_queue
from .quota import QuotaExceeded
from .ratelimit import make_rate_limiter
from .refusals import Refused
from .rpc.edge import Services
from .security import SECURITY_SCHEMES, GuardedRoute, unguarded
from .sharding import BucketMoving, ShardRouter
from .sns import Fetcher, SnsVerifier, default_fetcher
from .startup import MigrateAtStartup

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger("openapi_server")


def build_context(
    settings: Settings,
    mailer: Mailer | None = None,
    sns_fetcher: Fetcher | None = None,
    confirm_fetcher: Fetcher | None = None,
    jwks_fetcher: Fetcher | None = None,
    tracer_provider: TracerProvider | None = None,
) -> AppContext:
    db = Database(settings)
    pipeline = Pipeline(db, mailer or make_mailer(settings), settings)
    queue = make_queue(settings, pipeline)
    return AppContext(
        settings=settings,
        db=db,
        pipeline=pipeline,
        queue=queue,
        sns=SnsVerifier(sns_fetcher),
        confirm_fetcher=confirm_fetcher or default_fetcher,
        schema_head=head_revision(settings),
        auth=Authenticator(settings, db, jwks_fetcher),
        rate_limiter=make_rate_limiter(settings),
        # Channels opened here, in the serving process: never inherited across a fork.
        remote=Services(settings, tracer_provider) if settings.phase3_edge else None,
        shards=ShardRouter.from_settings(settings) if settings.db_shards else None,
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, object]]:
    # Only location, message and type: echoing the input back could fail to encode.
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type", "")}
        for e in exc.errors()
    ]


def create_app(
    settings: Settings | None = None,
    *,
    mailer: Mailer | None = None,
    sns_fetcher: Fetcher | None = None,
    confirm_fetcher: Fetcher | None = None,
    jwks_fetcher: Fetcher | None = None,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """The app; `tracer_provider` traces it (default: OTLP when configured, else none)."""
    settings = settings or Settings.from_env()
    if tracer_provider is None:
        tracer_provider = tracing.provider_from_env("coldreach-api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if open_routes := unguarded(app.routes):
            # Closed by default: a route that bypasses the access check is a bug, not a choice.
            raise RuntimeError(f"routes without access control: {', '.join(open_routes)}")
        # AUTO_MIGRATE has already run (MigrateAtStartup, the outermost lifespan step).
        ctx = build_context(
            settings, mailer, sns_fetcher, confirm_fetcher, jwks_fetcher, tracer_provider
        )
        app.state.ctx = ctx
        ctx.queue.start()
        try:
            yield
        finally:
            ctx.queue.stop()
            if ctx.remote is not None:
                ctx.remote.close()
            if ctx.rate_limiter is not None:
                await ctx.rate_limiter.close()
            ctx.db.dispose()
            if ctx.shards is not None:
                ctx.shards.dispose()

    app = FastAPI(
        title="Cold Reach",
        version="1.0.0",
        description="Clients, tasks and outbound email that is never sent twice.",
        lifespan=lifespan,
        redoc_url=None,  # Swagger UI at /docs is the one documentation page
    )
    app.router.route_class = GuardedRoute  # routes added to the app itself are guarded too
    app.include_router(DefaultApiRouter)
    app.add_middleware(BodyLimitMiddleware, settings=settings)
    if settings.cors_origins:
        # Preflights carry no credentials: the middleware answers them before any route.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=["Retry-After", "Idempotent-Replayed"],
            allow_credentials=False,  # bearer tokens, never cookies
            max_age=600,
        )
    if settings.auto_migrate:
        app.add_middleware(MigrateAtStartup, settings=settings)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    tracing.instrument_fastapi(app, tracer_provider)

    @app.exception_handler(RequestValidationError)
    async def _on_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_errors(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            # Bytes that are not UTF-8 JSON: the same 422 shape as any other bad body.
            detail = [{"loc": ["body"], "msg": "body is not valid JSON", "type": "json_invalid"}]
            return JSONResponse({"detail": detail}, status_code=422)
        return await http_exception_handler(request, exc)

    @app.exception_handler(Refused)
    async def _on_refused(_: Request, exc: Refused) -> JSONResponse:
        # The body FastAPI gives an HTTPException: {"detail": [{loc, msg, type}]}.
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(BucketMoving)
    async def _on_bucket_moving(_: Request, exc: BucketMoving) -> JSONResponse:
        # The client's shard is switching; the write goes through once it has.
        detail = [{"loc": [], "msg": str(exc), "type": "bucket_moving"}]
        retry = str(max(1, math.ceil(exc.retry_after_s)))
        return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": retry})

    @app.exception_handler(QuotaExceeded)
    async def _on_quota(_: Request, exc: QuotaExceeded) -> JSONResponse:
        detail = [{"loc": ["body"], "msg": str(exc), "type": "quota_exceeded"}]
        return JSONResponse(
            {"detail": detail},
            status_code=429,
            headers={"Retry-After": str(exc.retry_after_s)},
        )

    @app.exception_handler(DataError)
    async def _on_data_error(_: Request, exc: DataError) -> JSONResponse:
        log.warning("database refused a value: %s", exc.orig)
        return JSONResponse(
            {"detail": [{"loc": ["body"], "msg": "value out of range", "type": "data"}]},
            status_code=422,
        )

    @app.exception_handler(SQLAlchemyError)
    async def _on_database_error(_: Request, exc: SQLAlchemyError) -> JSONResponse:
        # Down, unmigrated, pool exhausted: the service is unavailable, not broken.
        detail = describe(exc)
        log.error("%s: %s", detail, exc)
        return JSONResponse({"detail": detail}, status_code=503)

    return app


def _app_from_env() -> FastAPI:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return create_app(settings_or_exit())


app = _app_from_env()
