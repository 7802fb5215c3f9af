"""REDIS_URL=rediss://:token@host: the broker connection uses TLS and verifies the server.

A TLS-only redis-server with a self-made CA stands in for ElastiCache with
in-transit encryption and an auth token.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from openapi_server.config import Settings
from openapi_server.queues import CeleryQueue

TOKEN = "elasticache-auth-token-0123456789"


def _write_ca_and_server_cert(directory: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "server.pem").write_bytes(cert.public_bytes(pem))
    (directory / "server.key").write_bytes(
        key.private_bytes(
            pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[int]:
    _write_ca_and_server_cert(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = subprocess.Popen(
        [
            server,
            "--port", "0",
            "--tls-port", str(port),
            "--bind", "127.0.0.1",
            "--tls-cert-file", str(tmp_path / "server.pem"),
            "--tls-key-file", str(tmp_path / "server.key"),
            "--tls-ca-cert-file", str(tmp_path / "ca.pem"),
            "--tls-auth-clients", "no",
            "--requirepass", TOKEN,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_celery_enqueue_over_tls_with_auth_token(
    tls_redis: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The default trust store, extended with the test CA the way an image would be.
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    settings = Settings.from_env(
        {"REDIS_URL": f"rediss://:{TOKEN}@localhost:{tls_redis}/0", "CELERY_QUEUE": "tls-q"}
    )
    queue = CeleryQueue(settings)
    queue.enqueue(41)
    queue.enqueue(42)
    client = redis.Redis(
        host="localhost",
        port=tls_redis,
        password=TOKEN,
        ssl=True,
        ssl_ca_certs=str(tmp_path / "ca.pem"),
    )
    assert client.llen("tls-q") == 2
    client.close()


def test_an_untrusted_server_certificate_is_refused(
    tls_redis: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    settings = Settings.from_env(
        {"REDIS_URL": f"rediss://:{TOKEN}@localhost:{tls_redis}/0", "CELERY_QUEUE": "tls-q"}
    )
    queue = CeleryQueue(settings)
    with (
        pytest.raises(Exception, match=r"(?i)certificate"),
        queue.app.connection_for_write() as conn,
    ):
        conn.ensure_connection(max_retries=1)
