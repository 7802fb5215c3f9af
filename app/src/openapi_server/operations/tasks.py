"""Tasks: each belongs to a client of the same workspace."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, func, select
from sqlalchemy import insert as sa_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db import Task, utcnow
from ..models import Task as TaskOut
from ..models import TaskCreate, TaskList, TaskUpdate
from ..refusals import not_found
from . import clients

BODY_CLIENT_ID = ("body", "client_id")
# The table itself: an INSERT on it skips the ORM's bulk-insert machinery.
TASKS = cast(Table, Task.__table__)


def insert(s: Session, workspace_id: int, body: TaskCreate, task_id: int | None = None) -> TaskOut:
    """Write the task of a client already known to exist: one INSERT ... RETURNING.

    The (workspace_id, client_id) foreign key still refuses a client deleted (or of
    another workspace) in between: NOT_FOUND, and nothing is written.
    """
    now = utcnow()
    values = {
        "workspace_id": workspace_id,
        "client_id": body.client_id,
        "title": body.title,
        "due_at": body.due_at,
        "done": False,
        "created_at": now,
        "updated_at": now,
    }
    if task_id is not None:  # else the database numbers it
        values["id"] = task_id
    try:
        row = s.execute(sa_insert(TASKS).values(values).returning(*TASKS.columns)).one()
        s.commit()
    except IntegrityError:
        s.rollback()
        not_found(BODY_CLIENT_ID, "client", body.client_id)
    return TaskOut.model_validate(row)


def create(s: Session, workspace_id: int, body: TaskCreate) -> TaskOut:
    """The client is checked in the same database (the monolith)."""
    clients.find(s, workspace_id, body.client_id, BODY_CLIENT_ID)
    return insert(s, workspace_id, body)


def list_page(
    s: Session, workspace_id: int, client_id: int | None, limit: int, offset: int
) -> TaskList:
    query = select(Task).where(Task.workspace_id == workspace_id)
    count = select(func.count()).select_from(Task).where(Task.workspace_id == workspace_id)
    if client_id is not None:
        query = query.where(Task.client_id == client_id)
        count = count.where(Task.client_id == client_id)
    total = s.scalar(count) or 0
    rows = s.scalars(query.order_by(Task.id).limit(limit).offset(offset))
    items = [TaskOut.model_validate(t) for t in rows]
    return TaskList(items=items, total=total, limit=limit, offset=offset)


def find(s: Session, workspace_id: int, task_id: int) -> Task:
    task = s.scalars(
        select(Task).where(Task.id == task_id, Task.workspace_id == workspace_id)
    ).first()
    if task is None:
        not_found(["path", "task_id"], "task", task_id)
    return task


def get(s: Session, workspace_id: int, task_id: int) -> TaskOut:
    return TaskOut.model_validate(find(s, workspace_id, task_id))


def update(s: Session, workspace_id: int, task_id: int, body: TaskUpdate) -> TaskOut:
    changes = body.model_dump(exclude_unset=True)
    task = find(s, workspace_id, task_id)
    for name in ("title", "due_at", "done"):
        if name in changes:
            setattr(task, name, changes[name])
    task.updated_at = utcnow()
    s.commit()
    return TaskOut.model_validate(task)
