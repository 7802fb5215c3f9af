"""The API's models to and from protobuf messages, losslessly (microsecond timestamps)."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from ..models import Client, EmailStatus, Task
from .gen.coldreach.campaigns.v1 import campaigns_pb2 as cpb
from .gen.coldreach.clients.v1 import clients_pb2 as pb


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC).replace(tzinfo=None))
    return ts


def moment(value: Timestamp) -> datetime:
    return value.ToDatetime(tzinfo=UTC)


# -- clients -------------------------------------------------------------------------


def client_to_pb(c: Client) -> pb.Client:
    return pb.Client(
        id=c.id,
        name=c.name,
        email=c.email,
        company=c.company,
        status=f"CLIENT_STATUS_{c.status.upper()}",  # protobuf takes enum value names
        create_time=timestamp(c.created_at),
        update_time=timestamp(c.updated_at),
    )


def client_from_pb(c: pb.Client) -> Client:
    status = pb.ClientStatus.Name(c.status).removeprefix("CLIENT_STATUS_").lower()
    return Client(
        id=c.id,
        name=c.name,
        email=c.email,
        company=c.company if c.HasField("company") else None,
        status=status,  # type: ignore[arg-type]
        created_at=moment(c.create_time),
        updated_at=moment(c.update_time),
    )


# -- tasks ---------------------------------------------------------------------------


def task_to_pb(t: Task) -> cpb.Task:
    task = cpb.Task(
        id=t.id,
        client_id=t.client_id,
        title=t.title,
        done=t.done,
        create_time=timestamp(t.created_at),
        update_time=timestamp(t.updated_at),
    )
    if t.due_at is not None:
        task.due_time.CopyFrom(timestamp(t.due_at))
    return task


def task_from_pb(t: cpb.Task) -> Task:
    return Task(
        id=t.id,
        client_id=t.client_id,
        title=t.title,
        due_at=moment(t.due_time) if t.HasField("due_time") else None,
        done=t.done,
        created_at=moment(t.create_time),
        updated_at=moment(t.update_time),
    )


# -- email ---------------------------------------------------------------------------


def state_to_pb(status: str) -> str:
    """The EmailState value name (protobuf takes names wherever an enum is set)."""
    return f"EMAIL_STATE_{status.upper()}"


def state_from_pb(state: int) -> str:
    return cpb.EmailState.Name(state).removeprefix("EMAIL_STATE_").lower()


def email_to_pb(e: EmailStatus) -> cpb.Email:
    return cpb.Email(
        id=e.id,
        client_id=e.client_id,
        state=state_to_pb(e.status),
        attempts=e.attempts,
        provider_message_id=e.provider_message_id,
        needs_reconciliation=e.needs_reconciliation,
        last_error=e.last_error,
        create_time=timestamp(e.created_at),
        update_time=timestamp(e.updated_at),
    )


def email_from_pb(e: cpb.Email) -> EmailStatus:
    return EmailStatus(
        id=e.id,
        client_id=e.client_id,
        status=state_from_pb(e.state),  # type: ignore[arg-type]
        attempts=e.attempts,
        provider_message_id=(e.provider_message_id if e.HasField("provider_message_id") else None),
        needs_reconciliation=e.needs_reconciliation,
        last_error=e.last_error if e.HasField("last_error") else None,
        created_at=moment(e.create_time),
        updated_at=moment(e.update_time),
    )
