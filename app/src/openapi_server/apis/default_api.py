"""Routes. Each one validates its input and hands off to the registered implementation."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse

import openapi_server.impl

from ..models import (
    Client,
    ClientCreate,
    ClientList,
    ClientUpdate,
    EmailAccepted,
    EmailSendRequest,
    EmailStatus,
    Error,
    Health,
    Task,
    TaskCreate,
    TaskList,
    TaskUpdate,
    UnsubscribeResult,
    WebhookResult,
)
from ..principal import READ, SEND, WRITE
from ..security import PUBLIC, GuardedRoute, needs, principal_of
from .default_api_base import BaseDefaultApi
from .json_route import Utf8JsonRoute


class ApiRoute(GuardedRoute, Utf8JsonRoute):
    """The caller is admitted before anything is read; JSON bodies must then be UTF-8."""


router = APIRouter(route_class=ApiRoute)

for _, name, _ in pkgutil.iter_modules(openapi_server.impl.__path__):
    importlib.import_module(f"openapi_server.impl.{name}")

MAX_ID = 2**31 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Retries with the same key and body return the same message",
    ),
]
Token = Annotated[
    str, Path(min_length=5, max_length=200, pattern=r"^[0-9]+\.[0-9]+\.[A-Za-z0-9_-]+$")
]

Responses = dict[int | str, dict[str, Any]]
E400: Responses = {400: {"model": Error}}
E404: Responses = {404: {"model": Error}}
E409: Responses = {409: {"model": Error}}
E422: Responses = {422: {"model": Error}}
# Any route that reads a body: the body limit answers before the route runs (body_limit.py).
E413: Responses = {413: {"model": Error, "description": "The request body is over its limit"}}


def _impl(request: Request) -> BaseDefaultApi:
    ctx = request.app.state.ctx
    if ctx.remote is not None:  # phase 3: the gRPC services do the work
        return ctx.remote.api(ctx, principal_of(request.state))
    if not BaseDefaultApi.subclasses:
        raise HTTPException(status_code=501, detail="Not implemented")
    return BaseDefaultApi.subclasses[0](ctx, principal_of(request.state))


def _with(access: dict[str, Any], responses: Responses | None = None) -> dict[str, Any]:
    """Route keyword arguments: access (`needs(...)`) merged with the route's own responses."""
    return {**access, "responses": {**access["responses"], **(responses or {})}}


@router.get("/healthz", response_model=Health, tags=["health"], openapi_extra=PUBLIC)
async def healthz() -> Health:
    """The process is alive (no dependency is checked).

    Async on purpose: it needs no worker thread, so it answers even while every thread
    of the pool waits on a slow database or broker.
    """
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {"model": Health}},
    tags=["health"],
    openapi_extra=PUBLIC,
)
def readyz(request: Request) -> Response:
    """The primary database answers at the expected schema revision, and the broker answers."""
    problems = _impl(request).ready()
    if not problems:
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "; ".join(problems)}, status_code=503)


@router.post(
    "/clients",
    status_code=201,
    response_model=Client,
    tags=["clients"],
    **_with(needs(WRITE), {**E409, **E422, **E413}),
)
def create_client(request: Request, body: ClientCreate) -> Client:
    return _impl(request).create_client(body)


@router.get("/clients", response_model=ClientList, tags=["clients"], **_with(needs(READ), E422))
def list_clients(request: Request, limit: Limit = 50, offset: Offset = 0) -> ClientList:
    return _impl(request).list_clients(limit, offset)


@router.get(
    "/clients/{client_id}", response_model=Client, tags=["clients"], **_with(needs(READ), E404)
)
def get_client(request: Request, client_id: Id) -> Client:
    return _impl(request).get_client(client_id)


@router.patch(
    "/clients/{client_id}",
    response_model=Client,
    tags=["clients"],
    **_with(needs(WRITE), {**E404, **E409, **E422, **E413}),
)
def update_client(request: Request, client_id: Id, body: ClientUpdate) -> Client:
    return _impl(request).update_client(client_id, body)


@router.delete(
    "/clients/{client_id}", status_code=204, tags=["clients"], **_with(needs(WRITE), E404)
)
def delete_client(request: Request, client_id: Id) -> Response:
    _impl(request).delete_client(client_id)
    return Response(status_code=204)


@router.post(
    "/tasks",
    status_code=201,
    response_model=Task,
    tags=["tasks"],
    **_with(needs(WRITE), {**E404, **E422, **E413}),
)
def create_task(request: Request, body: TaskCreate) -> Task:
    return _impl(request).create_task(body)


@router.get("/tasks", response_model=TaskList, tags=["tasks"], **_with(needs(READ), E422))
def list_tasks(
    request: Request,
    client_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> TaskList:
    return _impl(request).list_tasks(client_id, limit, offset)


@router.get("/tasks/{task_id}", response_model=Task, tags=["tasks"], **_with(needs(READ), E404))
def get_task(request: Request, task_id: Id) -> Task:
    return _impl(request).get_task(task_id)


@router.patch(
    "/tasks/{task_id}",
    response_model=Task,
    tags=["tasks"],
    **_with(needs(WRITE), {**E404, **E422, **E413}),
)
def update_task(request: Request, task_id: Id, body: TaskUpdate) -> Task:
    return _impl(request).update_task(task_id, body)


@router.post(
    "/email/send",
    status_code=202,
    response_model=EmailAccepted,
    tags=["email"],
    **_with(needs(SEND), {**E404, **E422, **E413}),
)
def send_email(
    request: Request,
    response: Response,
    body: EmailSendRequest,
    idempotency_key: IdempotencyKey = None,
) -> EmailAccepted:
    """Queue one email. Returns at once with 202; `GET /email/{id}` follows its status.

    With an `Idempotency-Key`, repeating the request returns the same message (header
    `Idempotent-Replayed: true`); the same key with a different body is a 422. Past the
    workspace's daily send quota: 429 with `Retry-After` (seconds to the next UTC day).
    """
    accepted, replayed = _impl(request).send_email(body, idempotency_key)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return accepted


@router.get(
    "/email/{email_id}", response_model=EmailStatus, tags=["email"], **_with(needs(READ), E404)
)
def get_email(request: Request, email_id: Id) -> EmailStatus:
    """Status read from the primary database, never from a replica."""
    return _impl(request).get_email(email_id)


@router.get(
    "/unsubscribe/{token}",
    response_class=HTMLResponse,
    responses=E400,
    tags=["unsubscribe"],
    openapi_extra=PUBLIC,
)
def unsubscribe_page(token: Token) -> HTMLResponse:
    """A confirmation page with a button; a GET never unsubscribes (link scanners follow GETs)."""
    html = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Unsubscribe</title></head>"
        f"<body><form method='post' action='/unsubscribe/{token}'>"
        "<input type='hidden' name='List-Unsubscribe' value='One-Click'>"
        "<p>Stop receiving emails from us?</p><button type='submit'>Unsubscribe</button>"
        "</form></body></html>"
    )
    return HTMLResponse(html)


@router.post(
    "/unsubscribe/{token}",
    response_model=UnsubscribeResult,
    responses={**E400, **E413},
    tags=["unsubscribe"],
    openapi_extra=PUBLIC,
)
def unsubscribe(request: Request, token: Token) -> UnsubscribeResult:
    """RFC 8058 one-click unsubscribe: no auth, no cookies; any body is ignored."""
    return _impl(request).unsubscribe(token)


@router.post(
    "/webhooks/ses",
    response_model=WebhookResult,
    responses={
        **E400,
        403: {"model": Error},
        413: {"model": Error},
        502: {"model": Error, "description": "SNS subscription confirmation failed"},
    },
    tags=["webhooks"],
    openapi_extra={
        **PUBLIC,  # SNS signs every message; the signature is checked instead
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/plain": {"schema": {"type": "string"}},
            },
        },
    },
)
async def ses_webhook(request: Request) -> WebhookResult:
    """SES bounce and complaint notifications delivered by SNS (sent as text/plain JSON)."""
    raw = await request.body()  # bounded by MAX_WEBHOOK_BODY_BYTES (body_limit.py)
    return await run_in_threadpool(_impl(request).ses_webhook, raw)
