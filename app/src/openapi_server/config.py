"""Settings, read once from the environment.

Every variable is documented in app/README.md. Invalid values stop the process
at start with a message that names the variable, rather than failing later.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypedDict, TypeVar
from urllib.parse import urlparse

from sqlalchemy.engine import URL, make_url

from . import aws_secrets
from .aws_secrets import SecretReader

N = TypeVar("N", int, float)

DEV_UNSUBSCRIBE_SECRET = "dev-only-unsubscribe-secret-do-not-use-in-production"

# Signature algorithms an OIDC access token may use: asymmetric only. `none` and the HS*
# family are never accepted (an HS* token "signed" with the issuer's public key is forgeable).
OIDC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class ConfigError(RuntimeError):
    """A setting is missing or invalid; the message names the variable."""


def settings_or_exit() -> Settings:
    """Settings for a server or command: a bad value ends the process with status 2.

    One line on stderr, `configuration error: <message naming the variable>`, no traceback.
    """
    try:
        return Settings.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _str(env, name).lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1/0 (or true/false), got {raw!r}")


def _str(env: Mapping[str, str], name: str, default: str = "") -> str:
    """The stripped value, or `default` when the variable is unset or blank."""
    return env.get(name, "").strip() or default


def _number(
    env: Mapping[str, str], name: str, default: N, minimum: N, parse: type[N], what: str
) -> N:
    raw = _str(env, name)
    if raw == "":
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {what}, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    return _number(env, name, default, minimum, int, "an integer")


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    return _number(env, name, default, minimum, float, "a number")


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _str(env, name).lower() or default
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())


def _https_url(env: Mapping[str, str], name: str) -> str | None:
    """An https URL (plain http only to this machine, for local identity providers)."""
    value = _str(env, name)
    if not value:
        return None
    parsed = urlparse(value)
    local = parsed.hostname in ("localhost", "127.0.0.1", "::1")
    if not parsed.hostname or not (parsed.scheme == "https" or (parsed.scheme == "http" and local)):
        raise ConfigError(f"{name} must be an https:// URL, got {value!r}")
    return value


def _cors_origins(env: Mapping[str, str]) -> tuple[str, ...]:
    origins = _list(env, "CORS_ORIGINS")
    for origin in origins:
        parsed = urlparse(origin)
        if (
            parsed.scheme not in ("http", "https")
            or not parsed.hostname
            or parsed.path not in ("", "/")
            or parsed.query
            or "*" in origin
        ):
            raise ConfigError(
                f"CORS_ORIGINS must list origins like https://app.example.com, got {origin!r}"
            )
    return tuple(o.rstrip("/") for o in origins)


class _OidcSettings(TypedDict):
    oidc_issuer: str | None
    oidc_audience: str | None
    oidc_jwks_url: str | None
    oidc_algorithms: tuple[str, ...]
    oidc_workspace_claim: str
    oidc_scope_prefix: str
    oidc_leeway_s: int
    oidc_jwks_ttl_s: float
    oidc_jwks_refetch_s: float


def _oidc(env: Mapping[str, str]) -> _OidcSettings:
    issuer = _str(env, "OIDC_ISSUER")
    audience = _str(env, "OIDC_AUDIENCE")
    jwks_url = _https_url(env, "OIDC_JWKS_URL")
    given = [bool(issuer), bool(audience), bool(jwks_url)]
    if any(given) and not all(given):
        raise ConfigError("OIDC_ISSUER, OIDC_AUDIENCE and OIDC_JWKS_URL are set together or not")
    algorithms = tuple(a.upper() if a != "EdDSA" else a for a in _list(env, "OIDC_ALGORITHMS"))
    algorithms = algorithms or ("RS256",)
    refused = [a for a in algorithms if a not in OIDC_ALGORITHMS]
    if refused:
        raise ConfigError(
            f"OIDC_ALGORITHMS may hold only {', '.join(sorted(OIDC_ALGORITHMS))}; "
            f"refused {', '.join(refused)}"
        )
    return {
        "oidc_issuer": issuer or None,
        "oidc_audience": audience or None,
        "oidc_jwks_url": jwks_url,
        "oidc_algorithms": algorithms,
        "oidc_workspace_claim": _str(env, "OIDC_WORKSPACE_CLAIM", "workspace"),
        "oidc_scope_prefix": _str(env, "OIDC_SCOPE_PREFIX"),
        "oidc_leeway_s": _int(env, "OIDC_LEEWAY_S", 30, minimum=0),
        "oidc_jwks_ttl_s": _float(env, "OIDC_JWKS_TTL_S", 600.0, minimum=1.0),
        "oidc_jwks_refetch_s": _float(env, "OIDC_JWKS_MIN_REFETCH_S", 30.0, minimum=0.0),
    }


class _GrpcSettings(TypedDict):
    client_service_addr: str | None
    campaign_service_addr: str | None
    grpc_bind: str
    grpc_port: int
    grpc_deadline_s: float
    grpc_reflection: bool
    grpc_max_connection_age_s: float
    grpc_shutdown_grace_s: float


def _grpc(env: Mapping[str, str]) -> _GrpcSettings:
    clients = _str(env, "CLIENT_SERVICE_ADDR") or None
    campaigns = _str(env, "CAMPAIGN_SERVICE_ADDR") or None
    return {
        "client_service_addr": clients,
        "campaign_service_addr": campaigns,
        "grpc_bind": _str(env, "GRPC_BIND", "0.0.0.0"),
        "grpc_port": _int(env, "GRPC_PORT", 50051, minimum=0),
        "grpc_deadline_s": _float(env, "GRPC_DEADLINE_S", 2.0, minimum=0.01),
        "grpc_reflection": _bool(env, "GRPC_REFLECTION", True),
        "grpc_max_connection_age_s": _float(env, "GRPC_MAX_CONNECTION_AGE_S", 300.0, minimum=1.0),
        "grpc_shutdown_grace_s": _float(env, "GRPC_SHUTDOWN_GRACE_S", 10.0),
    }


# -- Kafka queue backend ---------------------------------------------------------------

_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")


@dataclass(frozen=True)
class KafkaSettings:
    """QUEUE_BACKEND=kafka: the broker, topics, consumer group and the outbox relay."""

    # Comma-separated host:port list; empty with `mock_brokers` > 0.
    bootstrap_servers: str = ""
    # > 0: this process starts librdkafka's in-process mock cluster (local runs and tests).
    mock_brokers: int = 0
    auth: str = "none"  # none | iam (MSK IAM: SASL_SSL + OAUTHBEARER signed with AWS credentials)
    tls: bool = False
    send_topic: str = "email.send.v1"
    dlq_topic: str = "email.send.dlq.v1"
    group_id: str = "coldreach-sender"
    # Topic creation through the admin API at start of `consume` (never on the mock cluster,
    # which has no CreateTopics and auto-creates topics with 4 partitions).
    create_topics: bool = True
    partitions: int = 24
    replication_factor: int = 2
    outbox_batch: int = 500
    # A relay owns the rows it claimed for this long; a relay that dies releases them by expiry.
    outbox_lease_s: float = 60.0
    outbox_retention_s: float = 86400.0
    relay_interval_s: float = 0.5
    # Up to this many records in flight per consumer process (defaults to WORKER_CONCURRENCY).
    concurrency: int = 32
    max_poll_interval_ms: int = 300_000


def _kafka(env: Mapping[str, str], selected: bool) -> KafkaSettings:
    mock = _int(env, "KAFKA_MOCK_BROKERS", 0, minimum=0)
    servers = _str(env, "KAFKA_BOOTSTRAP_SERVERS")
    if selected and not servers and not mock:
        raise ConfigError(
            "QUEUE_BACKEND=kafka needs KAFKA_BOOTSTRAP_SERVERS (host:port,...) "
            "or KAFKA_MOCK_BROKERS=N for the local mock cluster"
        )
    topics = {
        name: _str(env, name, default)
        for name, default in (
            ("KAFKA_SEND_TOPIC", "email.send.v1"),
            ("KAFKA_DLQ_TOPIC", "email.send.dlq.v1"),
        )
    }
    for name, value in topics.items():
        if not _TOPIC.fullmatch(value) or value in (".", ".."):
            raise ConfigError(f"{name} must be a Kafka topic name, got {value!r}")
    if topics["KAFKA_SEND_TOPIC"] == topics["KAFKA_DLQ_TOPIC"]:
        raise ConfigError("KAFKA_DLQ_TOPIC must differ from KAFKA_SEND_TOPIC")
    auth = _choice(env, "KAFKA_AUTH", "none", ("none", "iam"))
    lease = _float(env, "KAFKA_OUTBOX_LEASE_S", 60.0, minimum=5.0)
    return KafkaSettings(
        bootstrap_servers=servers,
        mock_brokers=mock,
        auth=auth,
        tls=_bool(env, "KAFKA_TLS", auth == "iam"),
        send_topic=topics["KAFKA_SEND_TOPIC"],
        dlq_topic=topics["KAFKA_DLQ_TOPIC"],
        group_id=_str(env, "KAFKA_GROUP_ID", "coldreach-sender"),
        create_topics=_bool(env, "KAFKA_CREATE_TOPICS", not mock),
        partitions=_int(env, "KAFKA_PARTITIONS", 24, minimum=1),
        replication_factor=_int(env, "KAFKA_REPLICATION_FACTOR", 2, minimum=1),
        outbox_batch=_int(env, "KAFKA_OUTBOX_BATCH", 500, minimum=1),
        outbox_lease_s=lease,
        outbox_retention_s=_float(env, "KAFKA_OUTBOX_RETENTION_S", 86400.0, minimum=60.0),
        relay_interval_s=_float(env, "KAFKA_RELAY_INTERVAL_S", 0.5, minimum=0.01),
        concurrency=_int(
            env, "KAFKA_CONCURRENCY", _int(env, "WORKER_CONCURRENCY", 32, minimum=1), minimum=1
        ),
        max_poll_interval_ms=_int(env, "KAFKA_MAX_POLL_INTERVAL_MS", 300_000, minimum=10_000),
    )


def default_directory_url(first_shard: URL) -> URL:
    """Without DB_DIRECTORY: a database named `<shard 1's database>_directory` on shard 1's
    server (PostgreSQL), or `directory.db` beside shard 1's file (SQLite)."""
    if first_shard.get_backend_name() == "sqlite":
        if not first_shard.database or first_shard.database == ":memory:":
            raise ValueError("an in-memory SQLite shard needs DB_DIRECTORY")
        return first_shard.set(database=str(Path(first_shard.database).with_name("directory.db")))
    return first_shard.set(database=f"{first_shard.database or 'coldreach'}_directory")


class _ShardSettings(TypedDict):
    db_shards: tuple[URL, ...]
    db_directory_url: URL | None
    shard_map_ttl_s: float


def _sharding(env: Mapping[str, str], data_dir: Path) -> _ShardSettings:
    """DB_SHARD_1, DB_SHARD_2, ... numbered from 1 without gaps; DB_DIRECTORY optional (the
    router defaults it to a database beside shard 1, see sharding/directory.py).

    PHASE=3 without any database variable: two SQLite shards under DATA_DIR (the
    one-machine phase 3 of `make app PHASE=3`, and `create-key` run beside it)."""
    numbered = {
        int(m.group(1)): name
        for name in env
        if (m := re.fullmatch(r"DB_SHARD_([0-9]+)", name)) and _str(env, name)
    }
    if numbered and sorted(numbered) != list(range(1, len(numbered) + 1)):
        raise ConfigError(
            f"DB_SHARD_n must be numbered 1, 2, 3, ... without gaps; got "
            f"{', '.join(numbered[i] for i in sorted(numbered))}"
        )
    shards = tuple(
        normalize_database_url(_str(env, numbered[i]), numbered[i]) for i in sorted(numbered)
    )
    if (
        not shards
        and _str(env, "PHASE") == "3"
        and not _str(env, "DATABASE_URL")
        and not _str(env, "DB_HOST")
    ):
        shards = tuple(
            URL.create("sqlite+pysqlite", database=str(data_dir / f"shard{i}.db")) for i in (1, 2)
        )
    directory = _str(env, "DB_DIRECTORY")
    if directory and not shards:
        raise ConfigError("DB_DIRECTORY is used only with DB_SHARD_1, DB_SHARD_2, ...")
    return {
        "db_shards": shards,
        "db_directory_url": normalize_database_url(directory, "DB_DIRECTORY")
        if directory
        else None,
        "shard_map_ttl_s": _float(env, "SHARD_MAP_TTL_S", 1.0, minimum=0.0),
    }


def normalize_database_url(raw: str, name: str = "DATABASE_URL") -> URL:
    """Accept the plain `postgresql://` form (and `postgres://`) and pick the psycopg 3 driver."""
    try:
        url = make_url(raw)
    except Exception:
        raise ConfigError(f"{name} is not a valid database URL") from None
    if url.drivername in ("postgres", "postgresql", "postgresql+psycopg2"):
        url = url.set(drivername="postgresql+psycopg")
    if url.drivername not in ("postgresql+psycopg", "sqlite", "sqlite+pysqlite"):
        raise ConfigError(f"{name} must be a postgresql:// or sqlite:// URL")
    return url


def _postgres_from_parts(env: Mapping[str, str], host: str) -> URL:
    port = _int(env, "DB_PORT", 5432, minimum=1)
    query = {}
    sslmode = _str(env, "DB_SSLMODE")
    if sslmode:
        query["sslmode"] = sslmode
    return URL.create(
        "postgresql+psycopg",
        username=env.get("DB_USER") or None,
        password=env.get("DB_PASSWORD") or None,
        host=host,
        port=port,
        database=_str(env, "DB_NAME", "coldreach"),
        query=query,
    )


# TLS modes that encrypt: an IAM token is a bearer credential for 15 minutes.
_TLS_MODES = ("require", "verify-ca", "verify-full")
_ROLE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _iam_url(url: URL) -> URL:
    if url.get_backend_name() != "postgresql" or not url.host:
        raise ConfigError("DB_IAM_AUTH=1 needs a PostgreSQL database (DB_HOST or DATABASE_URL)")
    if not url.username:
        raise ConfigError("DB_IAM_AUTH=1 needs DB_USER (the database user the token is for)")
    sslmode = url.query.get("sslmode")
    if sslmode is None:
        return url.update_query_dict({"sslmode": "require"})
    if sslmode not in _TLS_MODES:
        raise ConfigError(
            f"DB_SSLMODE must be one of {', '.join(_TLS_MODES)} with DB_IAM_AUTH=1, got {sslmode!r}"
        )
    return url


def _role(env: Mapping[str, str], name: str, default: str) -> str:
    value = _str(env, name, default)
    if not _ROLE.fullmatch(value):
        raise ConfigError(f"{name} must be a lower-case PostgreSQL identifier, got {value!r}")
    return value


@dataclass(frozen=True)
class Settings:
    database_url: URL
    database_read_url: URL | None = None
    data_dir: Path = Path("./var")
    auto_migrate: bool = True
    db_pool_size: int = 5
    db_max_overflow: int = 5
    db_pool_timeout_s: float = 30.0
    db_connect_attempts: int = 5
    # Each new connection authenticates with an RDS IAM token instead of a password.
    db_iam_auth: bool = False
    # Roles that `bootstrap_db` creates: migrations run as the owner, services as the app.
    db_owner_user: str = "coldreach_owner"
    db_app_user: str = "coldreach_app"
    db_iam_role: str = "rds_iam"
    db_connect_backoff_s: float = 1.0

    queue_backend: str = "inline"  # inline | celery | kafka
    redis_url: str = "redis://127.0.0.1:6379/0"
    celery_queue: str = "coldreach-email"
    celery_key_prefix: str = ""
    celery_visibility_timeout_s: int = 3600
    broker_timeout_s: float = 2.0
    worker_pool: str = "threads"
    worker_concurrency: int = 32

    mailer: str = "console"  # console | ses
    mail_from: str = "Cold Reach <noreply@localhost>"
    mail_outbox: Path | None = None
    ses_configuration_set: str | None = None
    aws_region: str = "us-east-1"
    ses_endpoint_url: str | None = None
    send_latency_ms: int = 0

    unsubscribe_secret: str = DEV_UNSUBSCRIBE_SECRET
    unsubscribe_ttl_days: int = 60
    public_base_url: str = "http://localhost:8000"
    sns_topic_arns: frozenset[str] = field(default_factory=frozenset)
    sns_max_age_s: float = 3600.0

    max_attempts: int = 5
    retry_backoff_base_s: float = 2.0
    retry_backoff_max_s: float = 300.0
    sending_timeout_s: float = 300.0
    requeue_after_s: float = 600.0
    sweep_interval_s: float = 30.0

    backlog_metric_namespace: str | None = None
    backlog_metric_name: str = "QueuedEmails"
    backlog_metric_interval_s: float = 60.0

    max_body_bytes: int = 1024 * 1024
    max_webhook_body_bytes: int = 1024 * 1024

    port: int = 8000

    # Authentication (auth.py, apikeys.py, oidc.py) and quotas (ratelimit.py, quota.py).
    api_key_cache_ttl_s: float = 10.0
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_algorithms: tuple[str, ...] = ("RS256",)
    oidc_workspace_claim: str = "workspace"
    oidc_scope_prefix: str = ""
    oidc_leeway_s: int = 30
    oidc_jwks_ttl_s: float = 600.0
    oidc_jwks_refetch_s: float = 30.0
    cors_origins: tuple[str, ...] = ()
    rate_limit_per_minute: int = 1200
    rate_limit_backend: str = "memory"  # memory | redis
    rate_limit_key_prefix: str = "coldreach:ratelimit:"
    daily_send_quota: int = 2000

    # -- phase 3: gRPC services (rpc/) -------------------------------------------------
    # Both set: the HTTP API is the edge, clients, tasks and email go to the services.
    # The Campaign Service needs CLIENT_SERVICE_ADDR alone.
    client_service_addr: str | None = None
    campaign_service_addr: str | None = None
    grpc_bind: str = "0.0.0.0"
    grpc_port: int = 50051
    # Every call carries a deadline; the Campaign Service's GetClient gets the smaller of
    # this and what is left of its own caller's deadline.
    grpc_deadline_s: float = 2.0
    grpc_reflection: bool = True
    # Servers close connections after this age so that clients re-resolve a headless
    # name and spread over new replicas.
    grpc_max_connection_age_s: float = 300.0
    grpc_shutdown_grace_s: float = 10.0

    @property
    def phase3_edge(self) -> bool:
        return self.client_service_addr is not None and self.campaign_service_addr is not None

    # -- Kafka queue backend (openapi_server/kafka/, QUEUE_BACKEND=kafka) ----------------
    kafka: KafkaSettings = field(default_factory=KafkaSettings)

    # Sharding (phase 3, sharding/): DB_SHARD_1, DB_SHARD_2, ... and the directory database.
    db_shards: tuple[URL, ...] = ()
    db_directory_url: URL | None = None
    shard_map_ttl_s: float = 1.0

    @property
    def oidc_enabled(self) -> bool:
        return self.oidc_jwks_url is not None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.get_backend_name() == "sqlite"

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, read_secret: SecretReader | None = None
    ) -> Settings:
        """`read_secret`: how `*_SECRET_ARN` variables are read (Secrets Manager by default)."""
        env = os.environ if env is None else env
        try:  # the pods' secrets by ARN: credentials in the URLs, the unsubscribe key
            env = aws_secrets.resolve(env, read_secret)
        except aws_secrets.SecretError as exc:
            raise ConfigError(str(exc)) from None
        data_dir = Path(_str(env, "DATA_DIR", "./var"))

        if database_url := _str(env, "DATABASE_URL"):
            url = normalize_database_url(database_url)
        elif db_host := _str(env, "DB_HOST"):
            url = _postgres_from_parts(env, db_host)
        else:
            url = URL.create("sqlite+pysqlite", database=str(data_dir / "coldreach.db"))

        iam = _bool(env, "DB_IAM_AUTH", False)
        if iam:
            url = _iam_url(url)

        read_url: URL | None = None
        if database_read_url := _str(env, "DATABASE_READ_URL"):
            read_url = normalize_database_url(database_read_url, "DATABASE_READ_URL")
        elif read_host := _str(env, "DB_READ_HOST"):
            if url.get_backend_name() != "postgresql":
                raise ConfigError(
                    "DB_READ_HOST needs a PostgreSQL primary (DB_HOST or DATABASE_URL)"
                )
            read_url = url.set(host=read_host)

        if iam and read_url is not None:
            read_url = _iam_url(read_url)

        mailer = _choice(env, "MAILER", "console", ("console", "ses"))
        secret = env.get("UNSUBSCRIBE_SECRET", "")
        if not secret:
            if mailer != "console":
                raise ConfigError(
                    "UNSUBSCRIBE_SECRET is required when MAILER is not 'console': it signs the "
                    "unsubscribe links in every email. Set it to a random value of 32+ bytes."
                )
            secret = DEV_UNSUBSCRIBE_SECRET
        elif len(secret) < 16:
            raise ConfigError("UNSUBSCRIBE_SECRET must be at least 16 characters")
        mail_from = _str(env, "MAIL_FROM")
        if mailer == "ses" and not mail_from:
            raise ConfigError("MAIL_FROM is required when MAILER=ses (a verified SES identity)")

        is_sqlite = url.get_backend_name() == "sqlite"
        outbox_raw = env.get("MAIL_OUTBOX")
        if outbox_raw is None:
            outbox: Path | None = data_dir / "outbox.jsonl"
        else:
            outbox = Path(outbox_raw) if outbox_raw.strip() else None

        base_url = _str(env, "PUBLIC_BASE_URL", "http://localhost:8000")
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError("PUBLIC_BASE_URL must start with http:// or https://")

        topics = frozenset(_list(env, "SNS_TOPIC_ARNS"))
        queue_backend = _choice(env, "QUEUE_BACKEND", "inline", ("inline", "celery", "kafka"))

        settings = cls(
            database_url=url,
            database_read_url=read_url,
            data_dir=data_dir,
            auto_migrate=_bool(env, "AUTO_MIGRATE", is_sqlite),
            db_pool_size=_int(env, "DB_POOL_SIZE", 5, minimum=1),
            db_max_overflow=_int(env, "DB_MAX_OVERFLOW", 5, minimum=0),
            db_pool_timeout_s=_float(env, "DB_POOL_TIMEOUT", 30.0, minimum=0.1),
            db_connect_attempts=_int(env, "DB_CONNECT_ATTEMPTS", 5, minimum=1),
            db_iam_auth=iam,
            db_owner_user=_role(env, "DB_OWNER_USER", "coldreach_owner"),
            db_app_user=_role(env, "DB_APP_USER", "coldreach_app"),
            db_iam_role=_role(env, "DB_IAM_ROLE", "rds_iam"),
            db_connect_backoff_s=_float(env, "DB_CONNECT_BACKOFF_S", 1.0),
            queue_backend=queue_backend,
            redis_url=_str(env, "REDIS_URL", "redis://127.0.0.1:6379/0"),
            celery_queue=_str(env, "CELERY_QUEUE", "coldreach-email"),
            celery_key_prefix=_str(env, "CELERY_KEY_PREFIX"),
            celery_visibility_timeout_s=_int(env, "CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60),
            broker_timeout_s=_float(env, "BROKER_TIMEOUT_S", 2.0, minimum=0.1),
            worker_pool=_choice(
                env, "WORKER_POOL", "threads", ("threads", "prefork", "solo", "gevent", "eventlet")
            ),
            worker_concurrency=_int(env, "WORKER_CONCURRENCY", 32, minimum=1),
            mailer=mailer,
            mail_from=mail_from or "Cold Reach <noreply@localhost>",
            mail_outbox=outbox,
            ses_configuration_set=_str(env, "SES_CONFIGURATION_SET") or None,
            aws_region=_str(env, "AWS_REGION") or _str(env, "AWS_DEFAULT_REGION", "us-east-1"),
            ses_endpoint_url=_str(env, "SES_ENDPOINT_URL") or None,
            send_latency_ms=_int(env, "SEND_LATENCY_MS", 0, minimum=0),
            unsubscribe_secret=secret,
            unsubscribe_ttl_days=_int(env, "UNSUBSCRIBE_TTL_DAYS", 60, minimum=1),
            public_base_url=base_url.rstrip("/"),
            sns_topic_arns=topics,
            sns_max_age_s=_float(env, "SNS_MAX_AGE_S", 3600.0, minimum=60.0),
            max_attempts=_int(env, "MAX_SEND_ATTEMPTS", 5, minimum=1),
            retry_backoff_base_s=_float(env, "RETRY_BACKOFF_BASE_S", 2.0),
            retry_backoff_max_s=_float(env, "RETRY_BACKOFF_MAX_S", 300.0),
            sending_timeout_s=_float(env, "SENDING_TIMEOUT_S", 300.0, minimum=1.0),
            requeue_after_s=_float(env, "REQUEUE_AFTER_S", 600.0, minimum=1.0),
            sweep_interval_s=_float(env, "SWEEP_INTERVAL_S", 30.0, minimum=0.1),
            backlog_metric_namespace=_str(env, "BACKLOG_METRIC_NAMESPACE") or None,
            backlog_metric_name=_str(env, "BACKLOG_METRIC_NAME", "QueuedEmails"),
            backlog_metric_interval_s=_float(env, "BACKLOG_METRIC_INTERVAL_S", 60.0, minimum=1.0),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 1024 * 1024, minimum=1024),
            max_webhook_body_bytes=_int(env, "MAX_WEBHOOK_BODY_BYTES", 1024 * 1024, minimum=1024),
            port=_int(env, "PORT", 8000, minimum=1),
            api_key_cache_ttl_s=_float(env, "API_KEY_CACHE_TTL_S", 10.0),
            cors_origins=_cors_origins(env),
            rate_limit_per_minute=_int(env, "RATE_LIMIT_PER_MINUTE", 1200, minimum=0),
            # Several web tasks (phase 2, Celery on Redis) must share one count per
            # workspace; a single process (phase 1) counts in memory.
            rate_limit_backend=_choice(
                env,
                "RATE_LIMIT_BACKEND",
                "redis" if queue_backend == "celery" else "memory",
                ("memory", "redis"),
            ),
            rate_limit_key_prefix=_str(env, "RATE_LIMIT_KEY_PREFIX", "coldreach:ratelimit:"),
            daily_send_quota=_int(env, "DAILY_SEND_QUOTA", 2000, minimum=0),
            kafka=_kafka(env, queue_backend == "kafka"),
            **_oidc(env),
            **_grpc(env),
            **_sharding(env, data_dir),
        )
        if settings.db_shards:
            shards, directory = settings.db_shards, settings.db_directory_url
            if iam:  # every shard and the directory sign in with tokens, over TLS
                shards = tuple(_iam_url(u) for u in shards)
                directory = _iam_url(directory) if directory else None
            # Sharded: the database of global data (API keys, workspaces: the edge,
            # create-key, readiness) is the directory, never one shard.
            settings = settings.with_(
                db_shards=shards,
                db_directory_url=directory,
                database_url=directory or default_directory_url(shards[0]),
                database_read_url=None,
                auto_migrate=_bool(
                    env, "AUTO_MIGRATE", settings.db_shards[0].get_backend_name() == "sqlite"
                ),
            )
        if settings.retry_backoff_max_s >= settings.celery_visibility_timeout_s:
            # A countdown longer than the visibility timeout makes Redis redeliver the retry
            # again and again; keep every delay well inside it.
            raise ConfigError("RETRY_BACKOFF_MAX_S must be lower than CELERY_VISIBILITY_TIMEOUT")
        return settings
