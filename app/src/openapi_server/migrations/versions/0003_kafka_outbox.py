"""The Kafka outbox: one row per record to publish, written with the message it announces.

Revision ID: 0003_kafka
Revises: 0002
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_kafka"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "kafka_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("headers", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("published_at", TS, nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("leased_by", sa.String(100), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_kafka_outbox"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["email_messages.id"],
            ondelete="CASCADE",
            name="fk_kafka_outbox_message_id_email_messages",
        ),
    )
    # The relay's scan: only rows not yet published, oldest first.
    op.create_index(
        "ix_kafka_outbox_pending",
        "kafka_outbox",
        ["id"],
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )
    op.create_index("ix_kafka_outbox_published_at", "kafka_outbox", ["published_at"])
    op.create_index("ix_kafka_outbox_message_id", "kafka_outbox", ["message_id"])


def downgrade() -> None:
    op.drop_table("kafka_outbox")
