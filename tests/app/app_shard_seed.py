"""A phase-2 database seeded in bulk for the shard migration tests and benchmark."""

from __future__ import annotations

import psycopg
from sqlalchemy.engine import URL


def seed_phase2(url: URL, clients: int) -> dict[str, int]:
    """`clients` clients in two workspaces, one task and one message each (a quarter with
    idempotency keys), plus rows in every global table. Returns rows per table."""
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn:
        conn.execute(
            "INSERT INTO workspaces (id, name, daily_send_quota, created_at) VALUES"
            " (1, 'acme', NULL, now()), (2, 'globex', 500, now())"
        )
        conn.execute(
            "INSERT INTO clients (id, workspace_id, name, email, email_key, company, status,"
            " created_at, updated_at)"
            " SELECT g, 1 + g %% 2, 'Client ' || g, 'C' || g || '@Example.com',"
            " 'c' || g || '@example.com', CASE WHEN g %% 3 = 0 THEN NULL ELSE 'Co ' || g END,"
            " CASE WHEN g %% 50 = 0 THEN 'unsubscribed' ELSE 'active' END,"
            " timestamptz '2026-01-01' + g * interval '1 second', now()"
            " FROM generate_series(1, %s) g",
            (clients,),
        )
        conn.execute(
            "INSERT INTO tasks (workspace_id, client_id, title, due_at, done, created_at,"
            " updated_at) SELECT workspace_id, id, 'Follow up ' || id,"
            " CASE WHEN id % 2 = 0 THEN now() + interval '3 days' END, id % 5 = 0, now(), now()"
            " FROM clients ORDER BY id"
        )
        conn.execute(
            "INSERT INTO email_messages (workspace_id, client_id, to_address, subject, body,"
            " status, attempts, provider_message_id, idempotency_key, request_hash, created_at,"
            " updated_at) SELECT workspace_id, id, email, 'Hello ' || name,"
            " E'Dear client,\\nbody ' || id, CASE WHEN id % 3 = 0 THEN 'sent' ELSE 'queued' END,"
            " id % 3, CASE WHEN id % 3 = 0 THEN 'ses-' || id END,"
            " CASE WHEN id % 4 = 0 THEN 'idem-' || id END, md5(id::text), now(), now()"
            " FROM clients ORDER BY id"
        )
        conn.execute(
            "INSERT INTO api_keys (workspace_id, public_id, secret_hash, scopes, created_at)"
            " VALUES (1, 'pub1', md5('a'), 'read write send', now()),"
            " (2, 'pub2', md5('b'), 'read', now())"
        )
        conn.execute(
            "INSERT INTO suppressions (email_key, reason, created_at)"
            " VALUES ('bounced@example.com', 'bounced', now())"
        )
        conn.execute(
            "INSERT INTO sns_notifications (message_id, type, received_at)"
            " VALUES ('m-1', 'Bounce', now())"
        )
        conn.execute(
            "INSERT INTO workspace_unsubscribes (workspace_id, email_key, created_at)"
            " SELECT workspace_id, email_key, now() FROM clients WHERE status = 'unsubscribed'"
        )
        conn.execute(
            "INSERT INTO send_counts (workspace_id, day, count) VALUES (1, '2026-12-03', 7)"
        )
        for table in ("workspaces", "clients", "tasks", "email_messages", "api_keys"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
            )
        counts = {
            t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
            for t in ("clients", "tasks", "email_messages")
        }
    return counts
