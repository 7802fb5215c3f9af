"""Workspaces, API keys, the daily send counter and per-workspace unsubscribes.

Safe on a database with data: when clients or unsubscribes exist, one workspace
named `default` is created and every existing client, task, message (and its
idempotency key) and unsubscribe moves into it. Uniqueness of a client's address
and of an idempotency key becomes per workspace. Unsubscribes leave the global
`suppressions` table (which keeps bounces and complaints) for
`workspace_unsubscribes`.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
DEFAULT_WORKSPACE = "default"


def _now(bind: sa.Connection) -> datetime:
    """Now in UTC, naive on SQLite (as the app's UTCDateTime type stores it)."""
    now = datetime.now(UTC)
    return now.replace(tzinfo=None) if bind.dialect.name == "sqlite" else now


def _scope_to_workspace(bind: sa.Connection, table: str, workspace_id: int | None) -> None:
    op.add_column(table, sa.Column("workspace_id", sa.Integer(), nullable=True))
    if workspace_id is not None:
        bind.execute(sa.text(f"UPDATE {table} SET workspace_id = :ws"), {"ws": workspace_id})


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        "workspaces",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("daily_send_quota", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workspaces"),
        sa.UniqueConstraint("name", name="uq_workspaces_name"),
    )
    existing = bind.execute(
        sa.text(
            "SELECT (SELECT COUNT(*) FROM clients)"
            " + (SELECT COUNT(*) FROM suppressions WHERE reason = 'unsubscribed')"
        )
    ).scalar_one()
    workspace_id: int | None = None
    if existing:
        bind.execute(
            sa.text("INSERT INTO workspaces (name, created_at) VALUES (:name, :now)"),
            {"name": DEFAULT_WORKSPACE, "now": _now(bind)},
        )
        workspace_id = bind.execute(
            sa.text("SELECT id FROM workspaces WHERE name = :name"), {"name": DEFAULT_WORKSPACE}
        ).scalar_one()

    _scope_to_workspace(bind, "clients", workspace_id)
    with op.batch_alter_table("clients") as b:
        b.alter_column("workspace_id", existing_type=sa.Integer(), nullable=False)
        b.drop_constraint("uq_clients_email_key", type_="unique")
        b.create_unique_constraint("uq_clients_workspace_email_key", ["workspace_id", "email_key"])
        b.create_unique_constraint("uq_clients_workspace_id_id", ["workspace_id", "id"])
        b.create_foreign_key(
            "fk_clients_workspace_id_workspaces", "workspaces", ["workspace_id"], ["id"]
        )

    _scope_to_workspace(bind, "tasks", workspace_id)
    with op.batch_alter_table("tasks") as b:
        b.alter_column("workspace_id", existing_type=sa.Integer(), nullable=False)
        b.drop_constraint("fk_tasks_client_id_clients", type_="foreignkey")
        b.create_foreign_key(
            "fk_tasks_workspace_id_workspaces", "workspaces", ["workspace_id"], ["id"]
        )
        b.create_foreign_key(
            "fk_tasks_client_in_workspace",
            "clients",
            ["workspace_id", "client_id"],
            ["workspace_id", "id"],
            ondelete="CASCADE",
        )
    op.create_index("ix_tasks_workspace_id_id", "tasks", ["workspace_id", "id"])

    _scope_to_workspace(bind, "email_messages", workspace_id)
    with op.batch_alter_table("email_messages") as b:
        b.alter_column("workspace_id", existing_type=sa.Integer(), nullable=False)
        b.drop_constraint("uq_email_messages_idempotency_key", type_="unique")
        b.drop_constraint("fk_email_messages_client_id_clients", type_="foreignkey")
        b.create_unique_constraint(
            "uq_email_messages_workspace_idempotency_key", ["workspace_id", "idempotency_key"]
        )
        b.create_foreign_key(
            "fk_email_messages_workspace_id_workspaces", "workspaces", ["workspace_id"], ["id"]
        )
        b.create_foreign_key(
            "fk_email_messages_client_in_workspace",
            "clients",
            ["workspace_id", "client_id"],
            ["workspace_id", "id"],
            ondelete="CASCADE",
        )

    op.create_table(
        "workspace_unsubscribes",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "email_key", name="pk_workspace_unsubscribes"),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_workspace_unsubscribes_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
    )
    if workspace_id is not None:
        # Unsubscribes so far were all made from the one (now default) workspace's mail.
        bind.execute(
            sa.text(
                "INSERT INTO workspace_unsubscribes (workspace_id, email_key, created_at)"
                " SELECT :ws, email_key, created_at FROM suppressions"
                " WHERE reason = 'unsubscribed'"
            ),
            {"ws": workspace_id},
        )
        bind.execute(
            sa.text(
                "INSERT INTO workspace_unsubscribes (workspace_id, email_key, created_at)"
                " SELECT DISTINCT workspace_id, email_key, :now FROM clients c"
                " WHERE status = 'unsubscribed' AND NOT EXISTS (SELECT 1 FROM"
                " workspace_unsubscribes u WHERE u.workspace_id = c.workspace_id"
                " AND u.email_key = c.email_key)"
            ),
            {"now": _now(bind)},
        )
        bind.execute(sa.text("DELETE FROM suppressions WHERE reason = 'unsubscribed'"))

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(100), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("last_used_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("public_id", name="uq_api_keys_public_id"),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_api_keys_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "send_counts",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "day", name="pk_send_counts"),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_send_counts_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    """Back to one tenant: fails if two workspaces hold the same address or idempotency key."""
    bind = op.get_bind()
    op.drop_table("send_counts")
    op.drop_table("api_keys")
    bind.execute(
        sa.text(
            "INSERT INTO suppressions (email_key, reason, created_at)"
            " SELECT email_key, 'unsubscribed', MIN(created_at) FROM workspace_unsubscribes u"
            " WHERE NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.email_key = u.email_key)"
            " GROUP BY email_key"
        )
    )
    op.drop_table("workspace_unsubscribes")
    with op.batch_alter_table("email_messages") as b:
        b.drop_constraint("fk_email_messages_client_in_workspace", type_="foreignkey")
        b.drop_constraint("fk_email_messages_workspace_id_workspaces", type_="foreignkey")
        b.drop_constraint("uq_email_messages_workspace_idempotency_key", type_="unique")
        b.create_unique_constraint("uq_email_messages_idempotency_key", ["idempotency_key"])
        b.create_foreign_key(
            "fk_email_messages_client_id_clients",
            "clients",
            ["client_id"],
            ["id"],
            ondelete="CASCADE",
        )
        b.drop_column("workspace_id")
    op.drop_index("ix_tasks_workspace_id_id", table_name="tasks")
    with op.batch_alter_table("tasks") as b:
        b.drop_constraint("fk_tasks_client_in_workspace", type_="foreignkey")
        b.drop_constraint("fk_tasks_workspace_id_workspaces", type_="foreignkey")
        b.create_foreign_key(
            "fk_tasks_client_id_clients", "clients", ["client_id"], ["id"], ondelete="CASCADE"
        )
        b.drop_column("workspace_id")
    with op.batch_alter_table("clients") as b:
        b.drop_constraint("fk_clients_workspace_id_workspaces", type_="foreignkey")
        b.drop_constraint("uq_clients_workspace_id_id", type_="unique")
        b.drop_constraint("uq_clients_workspace_email_key", type_="unique")
        b.create_unique_constraint("uq_clients_email_key", ["email_key"])
        b.drop_column("workspace_id")
    op.drop_table("workspaces")
