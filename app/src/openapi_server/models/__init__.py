"""Request and response models of the API."""

from .client import Client, ClientCreate, ClientList, ClientUpdate
from .common import Error, ErrorDetail, Health, UnsubscribeResult, WebhookResult
from .email import EmailAccepted, EmailSendRequest, EmailStatus
from .task import Task, TaskCreate, TaskList, TaskUpdate

__all__ = [
    "Client",
    "ClientCreate",
    "ClientList",
    "ClientUpdate",
    "EmailAccepted",
    "EmailSendRequest",
    "EmailStatus",
    "Error",
    "ErrorDetail",
    "Health",
    "Task",
    "TaskCreate",
    "TaskList",
    "TaskUpdate",
    "UnsubscribeResult",
    "WebhookResult",
]
