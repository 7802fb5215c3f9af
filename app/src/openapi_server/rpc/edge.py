"""The HTTP API as the phase-3 edge: today's routes and auth, the work done by the services.

The routes, validation, authentication, rate limits and OpenAPI document stay those of
the monolith; only the operations on clients, tasks and email become gRPC calls, each
with GRPC_DEADLINE_S, in the caller's workspace. Unsubscribe, the SES webhook and
readiness stay at the edge (they work on global data: suppressions, notifications).
Refusals come back as the HTTP answers the monolith gives (status.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from ..impl.default_api_impl import DefaultApiImpl
from ..models import (
    Client,
    ClientCreate,
    ClientList,
    ClientUpdate,
    EmailAccepted,
    EmailSendRequest,
    EmailStatus,
    Task,
    TaskCreate,
    TaskList,
    TaskUpdate,
)
from . import convert
from .channels import blocking_channel
from .gen.coldreach.campaigns.v1 import campaigns_pb2 as cpb
from .gen.coldreach.campaigns.v1 import campaigns_pb2_grpc as cpb_grpc
from .gen.coldreach.clients.v1 import clients_pb2 as pb
from .gen.coldreach.clients.v1 import clients_pb2_grpc as pb_grpc
from .status import raise_for
from .workspace import acting_for

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from ..config import Settings
    from ..context import AppContext
    from ..principal import Principal

R = TypeVar("R")


class Services:
    """The edge's channels to both services, opened once per process (never before a fork)."""

    def __init__(self, settings: Settings, provider: TracerProvider | None = None) -> None:
        if settings.client_service_addr is None or settings.campaign_service_addr is None:
            raise ValueError("the edge needs CLIENT_SERVICE_ADDR and CAMPAIGN_SERVICE_ADDR")
        self._channels = [
            blocking_channel(settings.client_service_addr, provider),
            blocking_channel(settings.campaign_service_addr, provider),
        ]
        self.clients = pb_grpc.ClientServiceStub(self._channels[0])
        self.campaigns = cpb_grpc.CampaignServiceStub(self._channels[1])
        self.deadline_s = settings.grpc_deadline_s

    def api(self, ctx: AppContext, principal: Principal | None) -> EdgeApi:
        return EdgeApi(ctx, principal, self)

    def close(self) -> None:
        for channel in self._channels:
            channel.close()


class EdgeApi(DefaultApiImpl):
    def __init__(self, ctx: AppContext, principal: Principal | None, services: Services) -> None:
        super().__init__(ctx, principal)
        self.services = services

    def _call(self, method: Callable[..., R], request: Any, service: str) -> R:
        with acting_for(self.workspace_id):
            try:
                return method(request, timeout=self.services.deadline_s)
            except grpc.RpcError as exc:
                raise_for(exc, service)

    def _clients(self, method: Callable[..., R], request: Any) -> R:
        return self._call(method, request, "client service")

    def _campaigns(self, method: Callable[..., R], request: Any) -> R:
        return self._call(method, request, "campaign service")

    # -- clients -----------------------------------------------------------------------

    def create_client(self, body: ClientCreate) -> Client:
        request = pb.CreateClientRequest(
            name=body.name, email=str(body.email), company=body.company
        )
        reply = self._clients(self.services.clients.CreateClient, request)
        return convert.client_from_pb(reply.client)

    def list_clients(self, limit: int, offset: int) -> ClientList:
        request = pb.ListClientsRequest(limit=limit, offset=offset)
        reply = self._clients(self.services.clients.ListClients, request)
        items = [convert.client_from_pb(c) for c in reply.clients]
        return ClientList(items=items, total=reply.total, limit=limit, offset=offset)

    def get_client(self, client_id: int) -> Client:
        request = pb.GetClientRequest(client_id=pb.ClientId(id=client_id))
        reply = self._clients(self.services.clients.GetClient, request)
        return convert.client_from_pb(reply.client)

    def update_client(self, client_id: int, body: ClientUpdate) -> Client:
        changes = body.model_dump(exclude_unset=True)
        request = pb.UpdateClientRequest(
            client_id=pb.ClientId(id=client_id),
            name=changes.get("name") or "",
            email=str(changes.get("email") or ""),
            company=changes.get("company"),
            update_mask=FieldMask(paths=sorted(changes)),
        )
        reply = self._clients(self.services.clients.UpdateClient, request)
        return convert.client_from_pb(reply.client)

    def delete_client(self, client_id: int) -> None:
        request = pb.DeleteClientRequest(client_id=pb.ClientId(id=client_id))
        self._clients(self.services.clients.DeleteClient, request)

    # -- tasks -------------------------------------------------------------------------

    def create_task(self, body: TaskCreate) -> Task:
        request = cpb.CreateTaskRequest(client_id=body.client_id, title=body.title)
        if body.due_at is not None:
            request.due_time.CopyFrom(convert.timestamp(body.due_at))
        reply = self._campaigns(self.services.campaigns.CreateTask, request)
        return convert.task_from_pb(reply.task)

    def list_tasks(self, client_id: int | None, limit: int, offset: int) -> TaskList:
        request = cpb.ListTasksRequest(client_id=client_id, limit=limit, offset=offset)
        reply = self._campaigns(self.services.campaigns.ListTasks, request)
        items = [convert.task_from_pb(t) for t in reply.tasks]
        return TaskList(items=items, total=reply.total, limit=limit, offset=offset)

    def get_task(self, task_id: int) -> Task:
        reply = self._campaigns(
            self.services.campaigns.GetTask, cpb.GetTaskRequest(task_id=task_id)
        )
        return convert.task_from_pb(reply.task)

    def update_task(self, task_id: int, body: TaskUpdate) -> Task:
        changes = body.model_dump(exclude_unset=True)
        request = cpb.UpdateTaskRequest(
            task_id=task_id,
            title=changes.get("title") or "",
            done=bool(changes.get("done")),
            update_mask=FieldMask(
                paths=sorted("due_time" if name == "due_at" else name for name in changes)
            ),
        )
        if changes.get("due_at") is not None:
            request.due_time.CopyFrom(convert.timestamp(changes["due_at"]))
        reply = self._campaigns(self.services.campaigns.UpdateTask, request)
        return convert.task_from_pb(reply.task)

    # -- email -------------------------------------------------------------------------

    def send_email(
        self, body: EmailSendRequest, idempotency_key: str | None
    ) -> tuple[EmailAccepted, bool]:
        request = cpb.SendEmailRequest(
            client_id=body.client_id,
            subject=body.subject,
            body=body.body,
            idempotency_key=idempotency_key,
        )
        reply = self._campaigns(self.services.campaigns.SendEmail, request)
        status = convert.state_from_pb(reply.state)
        return EmailAccepted(id=reply.email_id, status=status), reply.replayed  # type: ignore[arg-type]

    def get_email(self, email_id: int) -> EmailStatus:
        request = cpb.GetEmailRequest(email_id=email_id)
        reply = self._campaigns(self.services.campaigns.GetEmail, request)
        return convert.email_from_pb(reply.email)
