"""librdkafka configuration for every client the app makes: broker, TLS, MSK IAM auth.

MSK IAM (`KAFKA_AUTH=iam`): SASL_SSL with OAUTHBEARER, the token a SigV4-signed URL made
by `aws-msk-iam-sasl-signer-python` from the default credential chain (Pod Identity,
IRSA, the task role). The signer returns the expiry in milliseconds; librdkafka's
`oauth_cb` wants seconds. librdkafka refreshes the token before it expires (KIP-368
re-authentication needs librdkafka >= 2.2) and runs the callback from `poll()`, so every
client here polls regularly. The signer's token lifetime does not follow the
credentials' own expiry: a burst of authentication errors when role credentials rotate
is a known complaint (aws-msk-iam-sasl-signer-python#48); the clients retry on their own.

Locally, `KAFKA_MOCK_BROKERS=N` starts librdkafka's mock cluster inside this process
(`MockCluster`): other clients of this and other processes reach it on its loopback
listeners. It auto-creates topics (4 partitions) and has no CreateTopics.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from confluent_kafka import Producer

from ..config import KafkaSettings, Settings

log = logging.getLogger(__name__)

Config = dict[str, Any]


def msk_iam_token(region: str) -> tuple[str, float]:
    """An OAUTHBEARER token for MSK IAM and its expiry in seconds since the epoch."""
    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

    token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
    return token, expiry_ms / 1000.0


class MockCluster:
    """librdkafka's in-process mock cluster, alive as long as this object (local runs, tests)."""

    def __init__(self, brokers: int = 3) -> None:
        self._owner = Producer({"test.mock.num.brokers": brokers, "log_level": 3})
        metadata = self._owner.list_topics(timeout=10)
        self.bootstrap_servers = ",".join(
            f"{b.host}:{b.port}" for b in sorted(metadata.brokers.values(), key=lambda b: b.id)
        )

    def close(self) -> None:
        self._owner.flush(0)


_mock_lock = threading.Lock()
_mock: MockCluster | None = None


def bootstrap_servers(kafka: KafkaSettings) -> str:
    """The configured brokers, or this process's mock cluster (started on first use)."""
    global _mock
    if kafka.bootstrap_servers:
        return kafka.bootstrap_servers
    with _mock_lock:
        if _mock is None:
            _mock = MockCluster(kafka.mock_brokers)
            log.warning(
                "Kafka: in-process mock cluster at %s (KAFKA_MOCK_BROKERS, local use only)",
                _mock.bootstrap_servers,
            )
        return _mock.bootstrap_servers


def base_config(settings: Settings, client_id: str) -> Config:
    kafka = settings.kafka
    conf: Config = {
        "bootstrap.servers": bootstrap_servers(kafka),
        "client.id": client_id,
        # Broker-side errors are retried by librdkafka; surface its log through ours.
        "logger": logging.getLogger("openapi_server.kafka.rdkafka"),
    }
    if kafka.auth == "iam":
        region = settings.aws_region
        conf |= {
            "security.protocol": "SASL_SSL",
            "sasl.mechanisms": "OAUTHBEARER",
            "oauth_cb": lambda _config: msk_iam_token(region),
        }
    elif kafka.tls:
        conf["security.protocol"] = "SSL"
    return conf


def producer_config(settings: Settings, client_id: str) -> Config:
    """Idempotent producer: broker-side duplicates from its own retries are dropped.

    `enable.idempotence` implies acks=all and bounded in-flight requests. It does not
    make sending an email idempotent (nothing in Kafka can): the pipeline's claim does.
    Delivery gives up after half the outbox lease, so a relay learns the outcome before
    another relay may take the same rows.
    """
    return base_config(settings, client_id) | {
        "enable.idempotence": True,
        "linger.ms": 5,
        "message.timeout.ms": int(settings.kafka.outbox_lease_s * 1000 / 2),
    }


def consumer_config(settings: Settings, client_id: str) -> Config:
    """At-least-once: offsets are stored by the app after the outcome is recorded.

    `enable.auto.offset.store=false` keeps librdkafka from storing an offset when a
    message is handed out; the periodic auto-commit commits only what was stored.
    """
    kafka = settings.kafka
    return base_config(settings, client_id) | {
        "group.id": kafka.group_id,
        "enable.auto.commit": True,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "max.poll.interval.ms": kafka.max_poll_interval_ms,
        # Prefetch stays small: records wait in the database, not in a consumer's memory.
        "queued.max.messages.kbytes": 1024,
    }
