"""The directory's own tables: bucket map, client email index, idempotency keys, the
global id allocator and the migration's per-bucket checks.

Revision ID: d0001
Revises:
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
MAX_GLOBAL_ID = 2**53 - 1


def upgrade() -> None:
    op.create_table(
        "bucket_map",
        sa.Column("bucket", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("shard", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("bucket", name="pk_bucket_map"),
        sa.CheckConstraint("bucket >= 0 AND bucket < 1024", name="ck_bucket_map_bucket_range"),
        sa.CheckConstraint("state IN ('active', 'moving')", name="ck_bucket_map_state"),
    )
    op.create_table(
        "client_email_index",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "email_key", name="pk_client_email_index"),
    )
    op.create_index("ix_client_email_index_client_id", "client_email_index", ["client_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("workspace_id", "idempotency_key", name="pk_idempotency_keys"),
    )
    op.create_table(
        "shard_bucket_checks",
        sa.Column("bucket", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("table_name", sa.String(63), nullable=False),
        sa.Column("shard", sa.String(32), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("verified_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("bucket", "table_name", name="pk_shard_bucket_checks"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE SEQUENCE global_ids AS BIGINT MINVALUE 1 MAXVALUE {MAX_GLOBAL_ID} NO CYCLE"
        )
    else:
        op.create_table("global_ids", sa.Column("last_value", sa.BigInteger(), nullable=False))
        op.execute("INSERT INTO global_ids (last_value) VALUES (0)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE global_ids")
    else:
        op.drop_table("global_ids")
    op.drop_table("shard_bucket_checks")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_client_email_index_client_id", table_name="client_email_index")
    op.drop_table("client_email_index")
    op.drop_table("bucket_map")
