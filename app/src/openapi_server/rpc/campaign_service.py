"""The Campaign Service: tasks and sending, on the monolith's rules.

CreateTask first asks the Client Service whether the client exists in the caller's
workspace (GetClient, with a deadline): NOT_FOUND writes nothing, and a Client Service
that does not answer in time fails the call (UNAVAILABLE / DEADLINE_EXCEEDED) instead
of holding it. The task's foreign key still refuses a client deleted in between.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import grpc
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import QUEUED, EmailMessage, Task
from ..models import EmailSendRequest, TaskCreate, TaskUpdate
from ..models import Task as TaskOut
from ..operations import emails, tasks
from ..refusals import detail, not_found_detail
from . import across, convert, workspace
from .gen.coldreach.campaigns.v1 import campaigns_pb2 as pb
from .gen.coldreach.campaigns.v1 import campaigns_pb2_grpc as pb_grpc
from .gen.coldreach.clients.v1 import clients_pb2 as cpb
from .gen.coldreach.clients.v1 import clients_pb2_grpc as cpb_grpc
from .sessions import Sessions
from .status import abort, answer, validation_detail

log = logging.getLogger(__name__)

Context = grpc.ServicerContext
UPDATABLE = ("title", "due_time", "done")
MAX_LIMIT = 200
# Time kept back from the caller's deadline to answer it after GetClient gives up.
ANSWER_MARGIN_S = 0.05


class CampaignService(pb_grpc.CampaignServiceServicer):
    def __init__(
        self,
        sessions: Sessions,
        clients: cpb_grpc.ClientServiceStub,
        enqueue: Callable[[int], None],
        deadline_s: float,
        daily_send_quota: int,
        stage: Callable[[Session, EmailMessage], None] = lambda _s, _m: None,
    ) -> None:
        self.sessions = sessions
        self.clients = clients
        self.enqueue = enqueue
        self.stage = stage
        self.deadline_s = deadline_s
        self.daily_send_quota = daily_send_quota

    def _deadline(self, context: Context) -> float:
        remaining = context.time_remaining()
        if remaining is None:
            return self.deadline_s
        return max(0.001, min(self.deadline_s, remaining - ANSWER_MARGIN_S))

    def CreateTask(self, request: pb.CreateTaskRequest, context: Context) -> Any:
        try:
            body = TaskCreate(
                client_id=request.client_id,
                title=request.title,
                due_at=convert.moment(request.due_time) if request.HasField("due_time") else None,
            )
        except ValidationError as exc:
            abort(context, 422, validation_detail(exc))
        lookup = cpb.GetClientRequest(client_id=cpb.ClientId(id=body.client_id))
        timeout = self._deadline(context)
        task_id: int | None = None
        if self.sessions.draws_ids:
            # The new task's id (a directory round trip) is drawn while GetClient runs: an
            # id drawn for a refused task is only a gap in the numbering.
            call = self.clients.GetClient.future(lookup, timeout=timeout)
            try:
                task_id = answer(context, self.sessions.new_id)
            except BaseException:
                call.cancel()
                raise
            found = call.result
        else:  # nothing to overlap: a blocking call skips the future's thread hand-off
            found = partial(self.clients.GetClient, lookup, timeout=timeout)
        try:
            found()
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]  # a grpc.Call too
            if code == grpc.StatusCode.NOT_FOUND:
                loc = ["body", "client_id"]
                abort(context, 404, not_found_detail(loc, "client", body.client_id))
            log.warning("GetClient failed: %s %s", code.name, exc.details())  # type: ignore[attr-defined]
            # Never "not found": the client may well exist.
            answered = code
            if code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                answered = grpc.StatusCode.UNAVAILABLE
            context.abort(answered, f"client service: {code.name}")

        def work() -> pb.CreateTaskResponse:
            # One INSERT, committed on its own: no BEGIN/COMMIT round trips around it.
            with self.sessions.one_statement_for(body.client_id) as s:
                task = tasks.insert(s, workspace.current(), body, task_id)
            return pb.CreateTaskResponse(task=convert.task_to_pb(task))

        return answer(context, work)

    def GetTask(self, request: pb.GetTaskRequest, context: Context) -> Any:
        def work() -> pb.GetTaskResponse:
            ws = workspace.current()
            task = across.first_found(self.sessions, lambda s: tasks.get(s, ws, request.task_id))
            return pb.GetTaskResponse(task=convert.task_to_pb(task))

        return answer(context, work)

    def ListTasks(self, request: pb.ListTasksRequest, context: Context) -> Any:
        if not 1 <= request.limit <= MAX_LIMIT or request.offset < 0:
            abort(context, 422, _invalid("limit/offset"))
        client_id = request.client_id if request.HasField("client_id") else None

        def work() -> pb.ListTasksResponse:
            mine = select(Task).where(Task.workspace_id == workspace.current())
            if client_id is not None:
                mine = mine.where(Task.client_id == client_id)
            items, total = across.merged_page(
                self.sessions,
                mine,
                Task.id,
                TaskOut.model_validate,
                _id,
                request.limit,
                request.offset,
            )
            return pb.ListTasksResponse(tasks=[convert.task_to_pb(t) for t in items], total=total)

        return answer(context, work)

    def UpdateTask(self, request: pb.UpdateTaskRequest, context: Context) -> Any:
        paths = list(request.update_mask.paths)
        if unknown := sorted(set(paths) - set(UPDATABLE)):
            abort(context, 422, _invalid(f"update_mask: {', '.join(unknown)}"))
        changes: dict[str, Any] = {}
        if "title" in paths:
            changes["title"] = request.title
        if "done" in paths:
            changes["done"] = request.done
        if "due_time" in paths:
            has_due = request.HasField("due_time")
            changes["due_at"] = convert.moment(request.due_time) if has_due else None
        try:
            body = TaskUpdate(**changes)
        except ValidationError as exc:
            abort(context, 422, validation_detail(exc))

        def work() -> pb.UpdateTaskResponse:
            ws = workspace.current()
            owner = across.first_found(
                self.sessions, lambda s: tasks.find(s, ws, request.task_id).client_id
            )
            with self.sessions.session_for(owner) as s:  # the write goes through the router
                task = tasks.update(s, ws, request.task_id, body)
            return pb.UpdateTaskResponse(task=convert.task_to_pb(task))

        return answer(context, work)

    def SendEmail(self, request: pb.SendEmailRequest, context: Context) -> Any:
        try:
            body = EmailSendRequest(
                client_id=request.client_id, subject=request.subject, body=request.body
            )
        except ValidationError as exc:
            abort(context, 422, validation_detail(exc))
        key = request.idempotency_key if request.HasField("idempotency_key") else None

        def work() -> pb.SendEmailResponse:
            ws = workspace.current()
            if key is not None and self.sessions.key_holder(ws, key, body.client_id) != (
                body.client_id
            ):
                emails.key_reused()
            message_id = self.sessions.new_id()
            with (
                self.sessions.session_for(body.client_id) as s,
                self.sessions.global_session() as g,
            ):
                accepted, replayed = emails.accept(
                    s,
                    workspace.current(),
                    body,
                    key,
                    self.daily_send_quota,
                    self.stage,
                    message_id,
                    g,
                )
            # Only once the row is committed; a failed enqueue leaves it to the sweeper.
            if accepted.status == QUEUED and not replayed:
                try:
                    self.enqueue(accepted.id)
                except Exception:
                    log.exception("enqueue of message %s failed; the sweeper retries", accepted.id)
            return pb.SendEmailResponse(
                email_id=accepted.id, state=convert.state_to_pb(accepted.status), replayed=replayed
            )

        return answer(context, work)

    def GetEmail(self, request: pb.GetEmailRequest, context: Context) -> Any:
        def work() -> pb.GetEmailResponse:
            ws = workspace.current()
            status = across.first_found(
                self.sessions, lambda s: emails.status(s, ws, request.email_id)
            )
            return pb.GetEmailResponse(email=convert.email_to_pb(status))

        return answer(context, work)


def _id(task: TaskOut) -> int:
    return task.id


def _invalid(what: str) -> list[dict[str, Any]]:
    return detail(["body"], f"invalid {what}", "value_error")
