"""Who may call what: every route is authenticated unless it is declared public.

A route declares its access in the OpenAPI way, `openapi_extra={"security": ...}`,
written with `needs(scope)` or `PUBLIC`, so the OpenAPI document says exactly what the
server enforces. Every route of the app is a `GuardedRoute`, which checks, before the
body is read or validated:

- nothing on a public route;
- a valid `Authorization: Bearer` credential (401 with `WWW-Authenticate: Bearer`),
  then the route's scope (403), then the workspace's request rate (429, `Retry-After`);
- a route that declares nothing is refused (403) even with valid credentials: a route
  added without a decision is closed, not open.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from .auth import AuthError
from .principal import Principal

if TYPE_CHECKING:
    from .context import AppContext

log = logging.getLogger(__name__)

SCHEME = "bearer"
SECURITY_SCHEMES = {
    SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (`crk_...`) or an OIDC access token from the web front end.",
    }
}
PUBLIC: dict[str, Any] = {"security": []}
_DENIED: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid credentials"},
    403: {"description": "The credentials lack the scope this operation needs"},
    429: {"description": "The workspace's request rate limit; see Retry-After"},
}


def needs(scope: str) -> dict[str, Any]:
    """Route keyword arguments: the scope it requires and the refusals it may answer."""
    return {"openapi_extra": {"security": [{SCHEME: [scope]}]}, "responses": dict(_DENIED)}


def route_scopes(route: APIRoute) -> frozenset[str] | None:
    """None for a public route; the scopes a route needs; empty when it declares none."""
    security = (route.openapi_extra or {}).get("security")
    if security == []:
        return None
    if isinstance(security, list) and len(security) == 1 and SCHEME in security[0]:
        return frozenset(security[0][SCHEME])
    return frozenset()


def bearer_token(request: Request) -> str | None:
    kind, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if kind.lower() == "bearer" and token else None


def _challenge(error: str | None = None, description: str = "", scope: str = "") -> str:
    parts = ['Bearer realm="coldreach"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        # Printable ASCII without quotes or backslashes: the text may echo token contents,
        # and a header value outside latin-1 (or with a line break) cannot be sent at all.
        safe = "".join(c for c in description if " " <= c <= "~" and c not in '"\\')
        parts.append(f'error_description="{safe[:200]}"')
    if scope:
        parts.append(f'scope="{scope}"')
    return ", ".join(parts)


def _refusal(
    status: int, kind: str, msg: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    detail = [{"loc": ["header", "Authorization"], "msg": msg, "type": kind}]
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def admit(request: Request, required: frozenset[str]) -> Principal | Response:
    """The caller's principal, or the response that refuses the request."""
    ctx: AppContext = request.app.state.ctx
    token = bearer_token(request)
    if token is None:
        return _refusal(
            401,
            "unauthorized",
            "Authorization: Bearer <API key or access token> is required",
            {"WWW-Authenticate": _challenge()},
        )
    try:
        principal = ctx.auth.cached(token) or await run_in_threadpool(ctx.auth.authenticate, token)
    except AuthError as exc:
        if exc.status == 401:
            challenge = _challenge("invalid_token", str(exc))
            return _refusal(401, "unauthorized", str(exc), {"WWW-Authenticate": challenge})
        return _refusal(exc.status, "forbidden" if exc.status == 403 else "unavailable", str(exc))
    if not required:
        log.error("route %s declares no scope; refused", request.url.path)
        return _refusal(403, "forbidden", "this operation is not open to any credential")
    missing = required - principal.scopes
    if missing:
        scopes = " ".join(sorted(missing))
        return _refusal(
            403,
            "insufficient_scope",
            f"this operation needs the scope: {scopes}",
            {"WWW-Authenticate": _challenge("insufficient_scope", scope=scopes)},
        )
    if ctx.rate_limiter is not None:
        retry_after = await ctx.rate_limiter.hit(principal.workspace_id)
        if retry_after is not None:
            return _refusal(
                429,
                "rate_limited",
                "the workspace's request rate limit is reached",
                {"Retry-After": str(int(retry_after))},
            )
    return principal


class GuardedRoute(APIRoute):
    """An APIRoute that admits the caller before FastAPI reads the body or the parameters."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        required = route_scopes(self)
        if required is None:
            return handler

        async def guarded(request: Request) -> Response:
            admitted = await admit(request, required)
            if isinstance(admitted, Response):
                return admitted
            request.state.principal = admitted
            return await handler(request)

        return guarded


# Added by FastAPI itself: the OpenAPI document and Swagger UI (see app/README.md).
PUBLIC_DOCS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect"})


def iter_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, including those of included routers (kept apart by newer FastAPI)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from iter_routes(included.routes)
        else:
            yield route


def unguarded(routes: Iterable[BaseRoute]) -> list[str]:
    """Routes that would answer without the access check: the app refuses to start with any."""
    return [
        f"{sorted(getattr(r, 'methods', None) or [])} {getattr(r, 'path', r)}"
        for r in iter_routes(routes)
        if not isinstance(r, GuardedRoute) and getattr(r, "path", None) not in PUBLIC_DOCS
    ]


def principal_of(state: Any) -> Principal | None:
    return getattr(state, "principal", None)
