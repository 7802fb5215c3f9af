"""Clients: create, read, list, change, delete."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..addresses import email_key
from ..db import ACTIVE, Client, utcnow
from ..models import Client as ClientOut
from ..models import ClientCreate, ClientList, ClientUpdate
from ..refusals import fail, not_found

PATH_ID = ("path", "client_id")


def find(s: Session, workspace_id: int, client_id: int, loc: Sequence[str | int]) -> Client:
    """The workspace's client; another workspace's is as absent as one that never existed."""
    client = s.scalars(
        select(Client).where(Client.id == client_id, Client.workspace_id == workspace_id)
    ).first()
    if client is None:
        not_found(loc, "client", client_id)
    return client


def email_taken() -> NoReturn:
    fail(409, ["body", "email"], "a client with this email already exists", "conflict")


def _commit(s: Session) -> None:
    """Commit a new or changed client: the unique email_key turns a taken address into a 409."""
    try:
        s.commit()
    except IntegrityError:
        s.rollback()
        email_taken()


def create(
    s: Session, workspace_id: int, body: ClientCreate, client_id: int | None = None
) -> ClientOut:
    """`client_id`: an id from the sharded directory's allocator; None lets the database pick."""
    now = utcnow()
    client = Client(
        id=client_id,
        workspace_id=workspace_id,
        name=body.name,
        email=str(body.email),
        email_key=email_key(str(body.email)),
        company=body.company,
        status=ACTIVE,
        created_at=now,
        updated_at=now,
    )
    s.add(client)
    _commit(s)
    return ClientOut.model_validate(client)


def list_page(s: Session, workspace_id: int, limit: int, offset: int) -> ClientList:
    mine = Client.workspace_id == workspace_id
    total = s.scalar(select(func.count()).select_from(Client).where(mine)) or 0
    rows = s.scalars(select(Client).where(mine).order_by(Client.id).limit(limit).offset(offset))
    items = [ClientOut.model_validate(c) for c in rows]
    return ClientList(items=items, total=total, limit=limit, offset=offset)


def get(s: Session, workspace_id: int, client_id: int) -> ClientOut:
    return ClientOut.model_validate(find(s, workspace_id, client_id, PATH_ID))


def update(s: Session, workspace_id: int, client_id: int, body: ClientUpdate) -> ClientOut:
    changes = body.model_dump(exclude_unset=True)
    client = find(s, workspace_id, client_id, PATH_ID)
    if "name" in changes:
        client.name = changes["name"]
    if "company" in changes:
        client.company = changes["company"]
    if "email" in changes:
        client.email = str(changes["email"])
        client.email_key = email_key(client.email)
    client.updated_at = utcnow()
    _commit(s)
    return ClientOut.model_validate(client)


def delete(s: Session, workspace_id: int, client_id: int) -> None:
    s.delete(find(s, workspace_id, client_id, PATH_ID))
    s.commit()
