"""Clients, tasks, email messages, suppressions, processed SNS notifications.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False),
        sa.Column("company", sa.String(200), nullable=True),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_clients"),
        sa.UniqueConstraint("email_key", name="uq_clients_email_key"),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("due_at", TS, nullable=True),
        sa.Column("done", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tasks"),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name="fk_tasks_client_id_clients", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_tasks_client_id", "tasks", ["client_id"])
    op.create_table(
        "email_messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("to_address", sa.String(320), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="queued"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("provider_message_id", sa.String(200), nullable=True),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("enqueued_at", TS, nullable=True),
        sa.Column("claimed_at", TS, nullable=True),
        sa.Column("claimed_by", sa.String(100), nullable=True),
        sa.Column("needs_reconciliation", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_email_messages"),
        sa.UniqueConstraint("idempotency_key", name="uq_email_messages_idempotency_key"),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name="fk_email_messages_client_id_clients",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_email_messages_status_claimed_at", "email_messages", ["status", "claimed_at"]
    )
    op.create_index("ix_email_messages_client_id", "email_messages", ["client_id"])
    op.create_table(
        "suppressions",
        sa.Column("email_key", sa.String(320), nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("email_key", name="pk_suppressions"),
    )
    op.create_table(
        "sns_notifications",
        sa.Column("message_id", sa.String(100), nullable=False),
        sa.Column("type", sa.String(50), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("message_id", name="pk_sns_notifications"),
    )


def downgrade() -> None:
    op.drop_table("sns_notifications")
    op.drop_table("suppressions")
    op.drop_index("ix_email_messages_client_id", table_name="email_messages")
    op.drop_index("ix_email_messages_status_claimed_at", table_name="email_messages")
    op.drop_table("email_messages")
    op.drop_index("ix_tasks_client_id", table_name="tasks")
    op.drop_table("tasks")
    op.drop_table("clients")
