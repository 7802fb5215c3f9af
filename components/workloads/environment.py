"""What each workload is told, derived from its reaches as the ECS side does it
(infra/layers/compute.py): a database reach gives addresses and the secrets' ARNs (the app
reads the credentials itself through its Pod Identity role; no password is in the pod
spec or the program's state), a peer reach gives the peer's headless DNS name, a Kafka
reach the brokers, a tracing reach the OTLP endpoint. Nothing is set for what a workload
does not reach.
"""

from __future__ import annotations

import pulumi

from components.workloads.access import Access, placements
from components.workloads.identity import consumes, reads_unsubscribe_key
from components.workloads.pods import WORKER_DATA_DIR
from infra.config import Settings
from infra.topology import SES, Kind, Service, Topology

PEER_ENV = {"clients": "CLIENT_SERVICE_ADDR", "campaigns": "CAMPAIGN_SERVICE_ADDR"}
"""The phase-3 app's names for its peers' addresses; any other peer is <NAME>_SERVICE_ADDR."""


def service_host(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.svc.cluster.local"


def peer_address(peer: Service, namespace: str) -> str:
    """gRPC's DNS resolver on the headless name, so clients see every pod and balance calls
    round-robin instead of pinning one HTTP/2 connection to one pod."""
    return f"dns:///{service_host(peer.name, namespace)}:{peer.port}"


def _url(
    address: pulumi.Input[str], port: int, database: pulumi.Input[str], user: str | None
) -> pulumi.Output[str]:
    """A database URL without a password; with IAM sign-in it names the user the app's
    per-connection token is for (the app's sharding reads DB_SHARD_n and DB_DIRECTORY)."""
    login = f"{user}@" if user else ""
    return pulumi.Output.concat("postgresql://", login, address, ":", str(port), "/", database)


def environment(
    s: Settings, service: Service, topology: Topology, access: Access, namespace: str
) -> dict[str, pulumi.Input[str]]:
    f = topology.features
    env: dict[str, pulumi.Input[str]] = {"AWS_REGION": s.region, **access.extra_env}
    if service.port is not None:
        # The app's gRPC servers listen on GRPC_PORT, its HTTP API on PORT.
        env["GRPC_PORT" if service.kind is Kind.GRPC else "PORT"] = str(service.port)
    endpoints = service.database_endpoints(f)
    databases = placements(access.shards, lambda shard: shard.database)
    if endpoints:
        first = access.shards[0]
        directory, directory_name = databases["directory"]
        pod = s.pods[service.name]
        env |= {
            # Shard 1 as today's app reads its one database (DB_HOST, DB_PORT, DB_NAME).
            "DB_HOST": first.address,
            "DB_PORT": str(first.port),
            "DB_NAME": first.database,
            "DB_DIRECTORY": _url(
                directory.address, directory.port, directory_name, access.iam_db_user
            ),
            "DB_POOL_SIZE": str(pod.db_pool_size),
            "DB_MAX_OVERFLOW": str(pod.db_max_overflow),
        }
        if access.iam_db_user is not None:
            # A fresh RDS IAM token per connection, as the least-privilege app role.
            env |= {"DB_IAM_AUTH": "1", "DB_USER": access.iam_db_user}
        else:
            env["DB_DIRECTORY_SECRET_ARN"] = directory.secret_arn
    if "shards" in endpoints:
        for n in range(1, len(access.shards) + 1):
            shard, database = databases[f"shard-{n}"]
            env[f"DB_SHARD_{n}"] = _url(shard.address, shard.port, database, access.iam_db_user)
            if access.iam_db_user is None:
                env[f"DB_SHARD_{n}_SECRET_ARN"] = shard.secret_arn
    for reach in service.reaches_now(f):
        peer = next((p for p in topology.services if p.name == reach.target), None)
        if peer is None or peer.name == "tracing" or peer.port is None:
            continue
        env[PEER_ENV.get(peer.name, f"{peer.name.upper()}_SERVICE_ADDR")] = peer_address(
            peer, namespace
        )
    if service.may_reach(f, "tracing"):
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://{service_host('tracing', namespace)}:4317"
        env["OTEL_SERVICE_NAME"] = service.name
    if service.may_reach(f, "kafka") and access.kafka is not None:
        kafka = access.kafka
        env |= {
            "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_brokers,
            "KAFKA_AUTH": "iam",
            "QUEUE_BACKEND": "kafka",
            "KAFKA_SEND_TOPIC": kafka.send_topic,
            # MSK's topic API created the topics; no role may create one.
            "KAFKA_CREATE_TOPICS": "0",
        }
        if consumes(service):
            env["KAFKA_DLQ_TOPIC"] = kafka.dead_letter_topic
            env["KAFKA_GROUP_ID"] = kafka.consumer_group
    if service.may_reach(f, SES):
        mail = access.mail
        env |= {
            "MAILER": "ses" if mail else "console",
            "MAIL_FROM": mail.mail_from if mail else f"no-reply@{s.stack}.coldreach.invalid",
            "SES_CONFIGURATION_SET": mail.configuration_set.configuration_set_name if mail else "",
        }
    if reads_unsubscribe_key(service, topology):
        env["UNSUBSCRIBE_SECRET_ARN"] = access.unsubscribe_secret_arn
        env["PUBLIC_BASE_URL"] = access.public_url
    if service.kind is Kind.HTTP_API:
        env |= s.api.environment()
    if service.kind is Kind.WORKER:
        env["DATA_DIR"] = WORKER_DATA_DIR
    return env
