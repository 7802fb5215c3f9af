"""A self-made signing certificate and SNS-format messages signed with it."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from openapi_server.sns import string_to_sign

CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem"


def sns_timestamp(age_s: float = 0.0) -> str:
    """An SNS `Timestamp` (ISO 8601, milliseconds, Z) `age_s` seconds in the past."""
    moment = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=age_s)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-feedback"


class Signer:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(self.key, hashes.SHA256())
        )
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM)
        self.fetched: list[str] = []
        self.confirmed: list[str] = []

    def fetch_cert(self, url: str) -> bytes:
        self.fetched.append(url)
        return self.pem

    def confirm(self, url: str) -> bytes:
        self.confirmed.append(url)
        return b"<ConfirmSubscriptionResponse/>"

    def sign(self, message: dict[str, Any], version: str = "2") -> dict[str, Any]:
        message = {"SigningCertURL": CERT_URL, **message, "SignatureVersion": version}
        algorithm = hashes.SHA256() if version == "2" else hashes.SHA1()
        signature = self.key.sign(string_to_sign(message), padding.PKCS1v15(), algorithm)
        message["Signature"] = base64.b64encode(signature).decode()
        return message

    def notification(
        self, event: dict[str, Any], version: str = "2", **overrides: Any
    ) -> dict[str, Any]:
        message = {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": TOPIC,
            "Message": json.dumps(event),
            "Timestamp": sns_timestamp(),
            "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
            **overrides,
        }
        return self.sign(message, version)


def bounce(*addresses: str, bounce_type: str = "Permanent") -> dict[str, Any]:
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": a, "status": "5.1.1"} for a in addresses],
            "timestamp": "2026-11-28T10:00:00.000Z",
            "feedbackId": str(uuid.uuid4()),
            "somethingNew": {"nested": True},
        },
        "mail": {"messageId": "ses-1", "destination": list(addresses)},
    }


def complaint(*addresses: str) -> dict[str, Any]:
    return {
        "eventType": "Complaint",  # event-publishing format
        "complaint": {
            "complainedRecipients": [{"emailAddress": a} for a in addresses],
            "complaintFeedbackType": "abuse",
        },
        "mail": {"messageId": "ses-2"},
    }
