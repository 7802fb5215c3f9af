"""`coldreach-app`: API keys, quotas, and the service commands, in one console script.

    coldreach-app create-key --workspace NAME [--scope read --scope write --scope send]
    coldreach-app revoke-key KEY_OR_PREFIX
    coldreach-app list-keys [--workspace NAME]
    coldreach-app set-quota --workspace NAME --daily-sends N|default
    coldreach-app migrate [REVISION]
    coldreach-app worker [CELERY_WORKER_OPTIONS...]
    coldreach-app consume
    coldreach-app reconcile [sent|failed|requeue ID [PROVIDER_ID]]
    coldreach-app healthcheck [--http | --grpc [--service NAME] | --worker]
    coldreach-app serve-clients | serve-campaigns | serve-phase3
    coldreach-app migrate-shards --source URL --shard URL --shard URL [--dry-run]

Exit status: 0 done, 1 not found or the database failed, 2 bad usage or configuration.
`python -m openapi_server.{migrate,worker,reconcile,healthcheck}` still work (the image
and the ECS task definitions use them).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from .apikeys import (
    PREFIX,
    ApiKeyError,
    create_key,
    get_or_create_workspace,
    list_keys,
    public_id_of,
    revoke_key,
)
from .config import settings_or_exit
from .db import Database
from .principal import READ, SCOPES, parse_scopes


class CommandError(Exception):
    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@contextmanager
def _session() -> Iterator[Session]:
    settings = settings_or_exit()
    if settings.auto_migrate:  # the embedded SQLite default: make sure the tables exist
        from .migrate import upgrade

        upgrade(settings)
    db = Database(settings.with_(db_pool_size=1, db_max_overflow=0))
    try:
        with db.session() as s:
            yield s
    except DBAPIError as exc:
        raise CommandError(
            f"database error: {str(exc.orig).strip()} "
            "(is DATABASE_URL right, and has `coldreach-app migrate` run?)"
        ) from None
    finally:
        db.dispose()


def _create_key(args: argparse.Namespace) -> int:
    try:
        scopes = parse_scopes(args.scope or [READ])
    except ValueError as exc:
        raise CommandError(str(exc), 2) from None
    with _session() as s:
        key = create_key(s, args.workspace, scopes)
    public = f"{PREFIX}{public_id_of(key)}"
    print(
        f"workspace {args.workspace}: new key {public} with scopes {' '.join(sorted(scopes))}.\n"
        "The key is shown once; store it now. Revoke it with "
        f"`coldreach-app revoke-key {public}`.",
        file=sys.stderr,
    )
    print(key)
    return 0


def _revoke_key(args: argparse.Namespace) -> int:
    with _session() as s:
        if not revoke_key(s, args.key):
            raise CommandError("no such key")
    print("revoked")
    return 0


def _list_keys(args: argparse.Namespace) -> int:
    with _session() as s:
        for k in list_keys(s, args.workspace):
            state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
            used = f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never"
            print(f"crk_{k.public_id}\t{k.workspace}\t{k.scopes}\t{state}\tlast used {used}")
    return 0


def _set_quota(args: argparse.Namespace) -> int:
    if args.daily_sends == "default":
        quota = None
    elif args.daily_sends.isdigit():
        quota = int(args.daily_sends)
    else:
        raise CommandError("--daily-sends takes a whole number or `default`", 2)
    with _session() as s:
        workspace = get_or_create_workspace(s, args.workspace)
        workspace.daily_send_quota = quota
        s.commit()
    shown = "the DAILY_SEND_QUOTA default" if quota is None else str(quota)
    print(f"workspace {args.workspace}: daily send quota {shown}")
    return 0


# Service commands: their own modules parse what follows (`worker` passes it to Celery).
SERVICE_COMMANDS = {
    "migrate": "apply the database migrations (alembic upgrade [REVISION])",
    "worker": "run the Celery email worker",
    "consume": "run a Kafka sender (QUEUE_BACKEND=kafka): consumer, outbox relay, sweeper",
    "reconcile": "list or resolve messages flagged for reconciliation",
    "healthcheck": "container health probe (--http, --grpc, --worker; default by GRPC_PORT)",
    "serve-clients": "run the Client Service (gRPC, phase 3) on GRPC_PORT",
    "serve-campaigns": "run the Campaign Service (gRPC, phase 3) on GRPC_PORT",
    "serve-phase3": "run the phase-3 app on this machine: both services and the HTTP edge",
    "migrate-shards": "copy a phase-2 database onto shards, bucket by bucket (--help)",
}
# module:function of each service command; the others are `openapi_server.<name>:main`.
_ENTRY_POINTS = {
    "serve-clients": "openapi_server.rpc.server:main_clients",
    "serve-campaigns": "openapi_server.rpc.server:main_campaigns",
    "serve-phase3": "openapi_server.rpc.local:main",
    "consume": "openapi_server.kafka.consume:main",
    "migrate-shards": "openapi_server.sharding.migrate_cli:main",
}


def _service(command: str, argv: list[str]) -> int:
    import importlib

    module, function = _ENTRY_POINTS.get(command, f"openapi_server.{command}:main").split(":")
    return int(getattr(importlib.import_module(module), function)(argv) or 0)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="coldreach-app",
        description="Cold Reach app: API keys, quotas and service commands.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser(
        "create-key",
        help="create an API key (and the workspace if missing); prints the key last",
    )
    c.add_argument("--workspace", required=True, help="workspace name, e.g. acme")
    c.add_argument(
        "--scope",
        action="append",
        metavar="SCOPE",
        help=f"{', '.join(SCOPES)}; repeat or separate with commas (default: {READ})",
    )
    c.set_defaults(run=_create_key)

    r = sub.add_parser("revoke-key", help="revoke a key, given whole or as crk_<id>")
    r.add_argument("key", metavar="KEY_OR_PREFIX")
    r.set_defaults(run=_revoke_key)

    ls = sub.add_parser("list-keys", help="list keys (never their secrets)")
    ls.add_argument("--workspace")
    ls.set_defaults(run=_list_keys)

    q = sub.add_parser("set-quota", help="a workspace's own daily send quota")
    q.add_argument("--workspace", required=True)
    q.add_argument("--daily-sends", required=True, metavar="N|default")
    q.set_defaults(run=_set_quota)

    for name, what in SERVICE_COMMANDS.items():
        sub.add_parser(name, help=what)  # listed in --help; main() hands them over
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SERVICE_COMMANDS:
        return _service(argv[0], argv[1:])
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (ApiKeyError, CommandError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.status if isinstance(exc, CommandError) else 2


if __name__ == "__main__":
    raise SystemExit(main())
