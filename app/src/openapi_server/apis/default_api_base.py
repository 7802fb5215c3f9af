"""The operations of the API, one method each; `impl/default_api_impl.py` implements them.

Same shape as the OpenAPI-generator python-fastapi server: the router in
`default_api.py` dispatches to the first registered subclass of `BaseDefaultApi`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

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
    UnsubscribeResult,
    WebhookResult,
)

if TYPE_CHECKING:
    from ..context import AppContext
    from ..principal import Principal


class BaseDefaultApi:
    subclasses: ClassVar[tuple[type[BaseDefaultApi], ...]] = ()

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        BaseDefaultApi.subclasses = (*BaseDefaultApi.subclasses, cls)

    def __init__(self, ctx: AppContext, principal: Principal | None = None) -> None:
        self.ctx = ctx
        # None only on public routes (unsubscribe, webhook, health).
        self.principal = principal

    @property
    def workspace_id(self) -> int:
        """The caller's workspace: every query of an authenticated operation is scoped to it."""
        if self.principal is None:
            raise RuntimeError("an authenticated operation was reached without a principal")
        return self.principal.workspace_id

    def create_client(self, body: ClientCreate) -> Client:
        raise NotImplementedError

    def list_clients(self, limit: int, offset: int) -> ClientList:
        raise NotImplementedError

    def get_client(self, client_id: int) -> Client:
        raise NotImplementedError

    def update_client(self, client_id: int, body: ClientUpdate) -> Client:
        raise NotImplementedError

    def delete_client(self, client_id: int) -> None:
        raise NotImplementedError

    def create_task(self, body: TaskCreate) -> Task:
        raise NotImplementedError

    def list_tasks(self, client_id: int | None, limit: int, offset: int) -> TaskList:
        raise NotImplementedError

    def get_task(self, task_id: int) -> Task:
        raise NotImplementedError

    def update_task(self, task_id: int, body: TaskUpdate) -> Task:
        raise NotImplementedError

    def send_email(
        self, body: EmailSendRequest, idempotency_key: str | None
    ) -> tuple[EmailAccepted, bool]:
        """Returns the accepted message and whether it is a replay of an earlier request."""
        raise NotImplementedError

    def get_email(self, email_id: int) -> EmailStatus:
        raise NotImplementedError

    def unsubscribe(self, token: str) -> UnsubscribeResult:
        raise NotImplementedError

    def ses_webhook(self, raw_body: bytes) -> WebhookResult:
        raise NotImplementedError

    def ready(self) -> list[str]:
        """What keeps the service from taking traffic; empty when it is ready."""
        raise NotImplementedError
