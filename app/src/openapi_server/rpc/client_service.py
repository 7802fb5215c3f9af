"""The Client Service: clients CRUD on the monolith's rules (operations/clients.py)."""

from __future__ import annotations

from typing import Any

import grpc
from pydantic import ValidationError
from sqlalchemy import select

from ..addresses import email_key
from ..db import Client
from ..models import Client as ClientOut
from ..models import ClientCreate, ClientUpdate
from ..operations import clients
from ..refusals import detail
from . import across, convert, workspace
from .gen.coldreach.clients.v1 import clients_pb2 as pb
from .gen.coldreach.clients.v1 import clients_pb2_grpc as pb_grpc
from .sessions import Sessions
from .status import abort, answer, validation_detail

Context = grpc.ServicerContext
UPDATABLE = ("name", "email", "company")
MAX_LIMIT = 200


class ClientService(pb_grpc.ClientServiceServicer):
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    def GetClient(self, request: pb.GetClientRequest, context: Context) -> Any:
        client_id = request.client_id.id

        def work() -> pb.GetClientResponse:
            with self.sessions.reading(client_id) as s:
                client = clients.get(s, workspace.current(), client_id)
            return pb.GetClientResponse(client=convert.client_to_pb(client))

        return answer(context, work)

    def ListClients(self, request: pb.ListClientsRequest, context: Context) -> Any:
        if not 1 <= request.limit <= MAX_LIMIT or request.offset < 0:
            abort(context, 422, _range_detail("limit/offset"))

        def work() -> pb.ListClientsResponse:
            mine = select(Client).where(Client.workspace_id == workspace.current())
            items, total = across.merged_page(
                self.sessions,
                mine,
                Client.id,
                ClientOut.model_validate,
                _id,
                request.limit,
                request.offset,
            )
            return pb.ListClientsResponse(
                clients=[convert.client_to_pb(c) for c in items], total=total
            )

        return answer(context, work)

    def CreateClient(self, request: pb.CreateClientRequest, context: Context) -> Any:
        try:
            body = ClientCreate(
                name=request.name,
                email=request.email,
                company=request.company if request.HasField("company") else None,
            )
        except ValidationError as exc:
            abort(context, 422, validation_detail(exc))

        def work() -> pb.CreateClientResponse:
            ws = workspace.current()
            client_id = self.sessions.new_id()
            if client_id is None:  # one database: it numbers the client
                with self.sessions.directory() as s:
                    client = clients.create(s, ws, body)
                return pb.CreateClientResponse(client=convert.client_to_pb(client))
            key = email_key(str(body.email))
            self.sessions.prepare_workspace(ws, client_id)
            if not self.sessions.claim_email(ws, key, client_id):
                clients.email_taken()
            try:
                with self.sessions.session_for(client_id) as s:
                    client = clients.create(s, ws, body, client_id)
            except BaseException:
                self.sessions.release_email(ws, key, client_id)
                raise
            return pb.CreateClientResponse(client=convert.client_to_pb(client))

        return answer(context, work)

    def UpdateClient(self, request: pb.UpdateClientRequest, context: Context) -> Any:
        paths = list(request.update_mask.paths)
        if unknown := sorted(set(paths) - set(UPDATABLE)):
            abort(context, 422, _range_detail(f"update_mask: {', '.join(unknown)}"))
        changes = {name: getattr(request, name) for name in paths}
        if "company" in changes and not request.HasField("company"):
            changes["company"] = None
        try:
            body = ClientUpdate(**changes)
        except ValidationError as exc:
            abort(context, 422, validation_detail(exc))
        client_id = request.client_id.id

        def work() -> pb.UpdateClientResponse:
            ws = workspace.current()
            with self.sessions.session_for(client_id) as s:
                old = clients.find(s, ws, client_id, clients.PATH_ID).email_key
                new = email_key(str(body.email)) if body.email is not None else old
                if new != old and not self.sessions.claim_email(ws, new, client_id):
                    clients.email_taken()
                try:
                    client = clients.update(s, ws, client_id, body)
                except BaseException:
                    if new != old:
                        self.sessions.release_email(ws, new, client_id)
                    raise
            if new != old:
                self.sessions.release_email(ws, old, client_id)
            return pb.UpdateClientResponse(client=convert.client_to_pb(client))

        return answer(context, work)

    def DeleteClient(self, request: pb.DeleteClientRequest, context: Context) -> Any:
        client_id = request.client_id.id

        def work() -> pb.DeleteClientResponse:
            ws = workspace.current()
            with self.sessions.session_for(client_id) as s:
                key = clients.find(s, ws, client_id, clients.PATH_ID).email_key
                clients.delete(s, ws, client_id)
            self.sessions.release_email(ws, key, client_id)
            return pb.DeleteClientResponse()

        return answer(context, work)


def _id(client: ClientOut) -> int:
    return client.id


def _range_detail(what: str) -> list[dict[str, Any]]:
    return detail(["body"], f"invalid {what}", "value_error")
