"""Create the roles the services connect as: `python -m openapi_server.bootstrap_db`.

Run once per database, and again at any time (every step is idempotent), with the
master credentials (DB_HOST/DB_PORT/DB_NAME, and DB_USER/DB_PASSWORD from the master
secret in Secrets Manager). It leaves:

- `DB_OWNER_USER` (default `coldreach_owner`): owns the schema and every table in it;
  the `migrate` task connects as this role.
- `DB_APP_USER` (default `coldreach_app`): the API and the worker. SELECT, INSERT,
  UPDATE, DELETE on the tables and USAGE on the sequences, today's and (through
  default privileges) those later migrations create; no CREATE, ALTER, DROP, TRUNCATE.
- both granted `DB_IAM_ROLE` (default `rds_iam`) when that role exists (on RDS), so
  they log in with IAM tokens (DB_IAM_AUTH=1) and have no password at all.

Tables an earlier deployment created as the master user are handed to the owner.
"""

from __future__ import annotations

import logging
import sys

from psycopg import Connection, OperationalError, sql

from .config import Settings, settings_or_exit
from .rds_auth import RdsAuthToken

log = logging.getLogger("openapi_server.bootstrap_db")

SCHEMA = "public"
DML = sql.SQL("SELECT, INSERT, UPDATE, DELETE")


def _exists(conn: Connection, role: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None


def bootstrap(conn: Connection, settings: Settings, schema: str = SCHEMA) -> list[str]:
    """Bring roles and grants to the wanted state in one transaction; returns what changed."""
    owner, app = sql.Identifier(settings.db_owner_user), sql.Identifier(settings.db_app_user)
    ns = sql.Identifier(schema)
    done: list[str] = []
    for name in (settings.db_owner_user, settings.db_app_user):
        if not _exists(conn, name):
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
            done.append(f"created role {name}")
    if _exists(conn, settings.db_iam_role):
        conn.execute(
            sql.SQL("GRANT {} TO {}, {}").format(sql.Identifier(settings.db_iam_role), owner, app)
        )
    # The master user is not a superuser on RDS: it may hand objects to a role it belongs to.
    conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(owner))
    database = conn.execute("SELECT current_database()").fetchone()
    assert database is not None
    conn.execute(
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}, {}").format(
            sql.Identifier(database[0]), owner, app
        )
    )
    conn.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(ns, owner))
    # Before PostgreSQL 15 every role may create objects in `public`.
    conn.execute(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(ns))
    for kind, name in conn.execute(
        "SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' ELSE 'TABLE' END,"
        " c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'S')"
        " AND pg_get_userbyid(c.relowner) <> %s"
        # Sequences owned by a column move with their table.
        " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid"
        " AND d.deptype IN ('a', 'i') AND c.relkind = 'S')",
        (schema, settings.db_owner_user),
    ).fetchall():
        conn.execute(
            sql.SQL("ALTER {} {}.{} OWNER TO {}").format(
                sql.SQL(kind), ns, sql.Identifier(name), owner
            )
        )
        done.append(f"{kind.lower()} {name} now owned by {settings.db_owner_user}")
    grants = [
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(ns, app),
        sql.SQL("GRANT {} ON ALL TABLES IN SCHEMA {} TO {}").format(DML, ns, app),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(ns, app),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT {} ON TABLES TO {}"
        ).format(owner, ns, DML, app),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {}"
            " GRANT USAGE, SELECT ON SEQUENCES TO {}"
        ).format(owner, ns, app),
    ]
    for statement in grants:
        conn.execute(statement)
    return done


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    del argv  # no arguments; everything comes from the environment
    settings = settings_or_exit()
    if settings.is_sqlite:
        print("bootstrap_db needs PostgreSQL (DB_HOST or DATABASE_URL)", file=sys.stderr)
        return 2
    url = settings.database_url.set(drivername="postgresql")
    if settings.db_iam_auth:  # a master user set up for IAM as well
        token = RdsAuthToken(settings.aws_region)
        url = url.set(password=token(url.host or "", url.port or 5432, url.username or ""))
    try:
        conn = Connection.connect(url.render_as_string(hide_password=False), connect_timeout=10)
    except OperationalError as exc:
        print(f"cannot connect: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    with conn:
        for line in bootstrap(conn, settings):
            print(line)
        conn.commit()
    print(
        f"roles ready: {settings.db_owner_user} (schema owner, migrations), "
        f"{settings.db_app_user} (DML only)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
