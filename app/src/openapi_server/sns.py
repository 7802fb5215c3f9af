"""Amazon SNS message signature verification (SignatureVersion 1 and 2).

The signing certificate is fetched only over https from an `sns.<region>.amazonaws.com`
host, and cached. The fetcher is injectable so tests can sign with their own
certificate without network access.
"""

from __future__ import annotations

import base64
import re
import threading
import urllib.request
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")

NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
SUBSCRIPTION_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)

Fetcher = Callable[[str], bytes]


class SnsVerificationError(ValueError):
    pass


def is_sns_url(url: str) -> bool:
    parsed = urlparse(url)
    return (
        parsed.scheme == "https"
        and parsed.hostname is not None
        and SNS_HOST.match(parsed.hostname) is not None
        and parsed.port in (None, 443)
        and not parsed.username
    )


def default_fetcher(url: str) -> bytes:
    if not is_sns_url(url):
        raise SnsVerificationError("refusing to fetch from a non-SNS URL")
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read(65536)


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    kind = message.get("Type")
    if kind == "Notification":
        keys = NOTIFICATION_KEYS
    elif kind in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        keys = SUBSCRIPTION_KEYS
    else:
        raise SnsVerificationError("unknown message Type")
    out = []
    for key in keys:
        if key not in message:
            if key == "Subject":
                continue
            raise SnsVerificationError(f"missing field {key}")
        value = message[key]
        if not isinstance(value, str):
            raise SnsVerificationError(f"field {key} must be a string")
        out.append(f"{key}\n{value}\n")
    return "".join(out).encode()


# Clocks differ a little; SNS never dates a message in the future by more than that.
CLOCK_SKEW_S = 300.0


def check_fresh(message: Mapping[str, Any], max_age_s: float, now: datetime | None = None) -> None:
    """Refuse a message whose signed `Timestamp` is older than `max_age_s` (a replay)."""
    raw = message.get("Timestamp")
    if not isinstance(raw, str):
        raise SnsVerificationError("missing Timestamp")
    try:
        sent = datetime.fromisoformat(raw)
    except ValueError:
        raise SnsVerificationError("Timestamp is not ISO 8601") from None
    if sent.tzinfo is None:
        raise SnsVerificationError("Timestamp has no time zone")
    age = ((now or datetime.now(UTC)) - sent).total_seconds()
    if age > max_age_s:
        raise SnsVerificationError(f"message is {age:.0f} s old (limit {max_age_s:.0f} s)")
    if age < -CLOCK_SKEW_S:
        raise SnsVerificationError("Timestamp is in the future")


class SnsVerifier:
    def __init__(self, fetcher: Fetcher | None = None) -> None:
        self.fetcher = fetcher or default_fetcher
        self._certs: dict[str, x509.Certificate] = {}
        self._lock = threading.Lock()

    def _certificate(self, url: str) -> x509.Certificate:
        if not is_sns_url(url) or not urlparse(url).path.endswith(".pem"):
            raise SnsVerificationError("SigningCertURL is not an SNS certificate URL")
        with self._lock:
            cert = self._certs.get(url)
        if cert is None:
            try:
                cert = x509.load_pem_x509_certificate(self.fetcher(url))
            except SnsVerificationError:
                raise
            except Exception as exc:
                raise SnsVerificationError(f"could not load signing certificate: {exc}") from exc
            with self._lock:
                self._certs[url] = cert
        return cert

    def verify(self, message: Mapping[str, Any]) -> None:
        version = message.get("SignatureVersion")
        if version == "1":
            algorithm: hashes.HashAlgorithm = hashes.SHA1()
        elif version == "2":
            algorithm = hashes.SHA256()
        else:
            raise SnsVerificationError("unsupported SignatureVersion")
        signature_b64 = message.get("Signature")
        cert_url = message.get("SigningCertURL")
        if not isinstance(signature_b64, str) or not isinstance(cert_url, str):
            raise SnsVerificationError("missing Signature or SigningCertURL")
        try:
            signature = base64.b64decode(signature_b64, validate=True)
        except Exception:
            raise SnsVerificationError("Signature is not base64") from None
        data = string_to_sign(message)
        key = self._certificate(cert_url).public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise SnsVerificationError("signing certificate does not hold an RSA key")
        try:
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        except InvalidSignature:
            raise SnsVerificationError("signature does not match") from None
