"""Mailers: console (local, records every call in an outbox file) and Amazon SES v2.

A mailer either returns the provider's message id or raises. What it raises
decides what the pipeline may do next, because SES has no idempotency token and
a message that might have left must never be sent again:

- `TransientMailerError`: the provider certainly did not accept the message
  (throttled, could not connect). Safe to retry later.
- `PermanentMailerError`: certainly not accepted and retrying will not help
  (rejected, unverified sender). The message fails.
- anything else: the outcome is unknown (read timeout, 5xx after the request
  left). The message is flagged for reconciliation, never resent.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage as MimeMessage
from email.policy import SMTP
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from .addresses import ascii_address
from .config import Settings

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


class TransientMailerError(Exception):
    """The provider did not take the message; retry with backoff."""


class PermanentMailerError(Exception):
    """The provider refused the message for good."""


@dataclass(frozen=True)
class OutgoingEmail:
    message_id: int
    to: str
    subject: str
    body: str
    headers: dict[str, str] = field(default_factory=dict)


class Mailer(Protocol):
    def send(self, email: OutgoingEmail) -> str: ...


# RFC 5322 line limit; headers are never folded, so one value must fit on one line.
_MAX_LINE = 998
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
# Bytes of UTF-8 per encoded-word, so each `=?utf-8?b?...?=` stays within 76 characters.
_WORD_BYTES = 45


def _encoded_words(text: str) -> str:
    """RFC 2047 base64 words, split on character boundaries and folded one per line."""
    words: list[str] = []
    chunk = ""
    for char in text:
        if len((chunk + char).encode()) > _WORD_BYTES:
            words.append(chunk)
            chunk = ""
        chunk += char
    words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w.encode()).decode()}?=" for w in words if w)


def _unstructured(text: str) -> str:
    """A free-text header value (the subject) as written, or as encoded-words.

    Text that is not plain printable ASCII, or that already looks like an encoded-word,
    is encoded whole: a reader decodes it back to exactly the submitted text, and no
    line break it spells out can ever become a header line.
    """
    if _PRINTABLE.fullmatch(text) and "=?" not in text:
        return text
    return _encoded_words(text)


def _header(name: str, value: str) -> bytes:
    lines = f"{name}: {value}".split("\r\n ")  # only encoded-words are folded, one per line
    if not all(_PRINTABLE.fullmatch(line) and len(line) <= _MAX_LINE for line in lines):
        raise ValueError(f"{name} header value is not one line of printable ASCII")
    return f"{name}: {value}\r\n".encode("ascii")


def build_mime(email: OutgoingEmail, mail_from: str) -> bytes:
    """The raw message, headers written out byte for byte.

    Headers are not left to `email.message.EmailMessage`: its default policy folds
    long values into encoded-words (breaking the literal `List-Unsubscribe` link that
    RFC 2369 and RFC 8058 require) and parses values it is given, decoding
    encoded-words in user text into line breaks on some Python builds. Only the body
    part (charset and transfer encoding) comes from the library.
    """
    name, address = parseaddr(mail_from)
    sender = ascii_address(address)
    domain = sender.rpartition("@")[2]
    headers = [
        _header("From", formataddr((name, sender), charset="utf-8")),
        _header("To", ascii_address(email.to)),
        _header("Subject", _unstructured(email.subject)),
        _header("Date", formatdate(usegmt=True)),
        _header("Message-ID", make_msgid(idstring=f"coldreach-{email.message_id}", domain=domain)),
    ]
    headers += [_header(k, v) for k, v in email.headers.items()]
    body = MimeMessage(policy=SMTP)
    body.set_content(email.body)
    return b"".join(headers) + body.as_bytes()


class ConsoleMailer:
    """Logs one line per email and appends the full email to an outbox (JSON lines).

    The outbox line is written before the simulated latency, with one O_APPEND write,
    so a process killed mid-send still leaves a record of the call.
    """

    def __init__(self, outbox: Path | None, latency_ms: int = 0) -> None:
        self.outbox = outbox
        self.latency_s = latency_ms / 1000.0
        if outbox is not None:
            try:
                outbox.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                log.warning("console mailer: no outbox, cannot create %s: %s", outbox.parent, exc)
                self.outbox = None

    def send(self, email: OutgoingEmail) -> str:
        provider_id = f"console-{uuid.uuid4()}"
        if self.outbox is not None:
            line = json.dumps(
                {
                    "message_id": email.message_id,
                    "provider_id": provider_id,
                    "to": email.to,
                    "subject": email.subject,
                    "headers": email.headers,
                    "body": email.body,
                    "pid": os.getpid(),
                    "at": time.time(),
                }
            )
            fd = os.open(self.outbox, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)
        log.info("console mailer: message %s to %s", email.message_id, email.to)
        if self.latency_s:
            time.sleep(self.latency_s)
        return provider_id


_TRANSIENT_CODES = {
    "TooManyRequestsException",
    "ThrottlingException",
    "Throttling",
    "LimitExceededException",
    "SendingPausedException",
    "RequestTimeout",
}


class SesMailer:
    """Amazon SES v2 `SendEmail` with raw MIME content (carries the List-Unsubscribe headers)."""

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self.mail_from = settings.mail_from
        self.configuration_set = settings.ses_configuration_set
        self.latency_s = settings.send_latency_ms / 1000.0
        self.region = settings.aws_region
        if client is None:
            import boto3
            from botocore.config import Config

            # botocore must not retry on its own: a retried read timeout could send twice.
            config = Config(
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            )
            client = boto3.client(
                "sesv2",
                region_name=settings.aws_region,
                endpoint_url=settings.ses_endpoint_url,
                config=config,
            )
        self.client = client

    def send(self, email: OutgoingEmail) -> str:
        if self.latency_s:
            time.sleep(self.latency_s)
        try:
            raw = build_mime(email, self.mail_from)
            to = ascii_address(email.to)
        except ValueError as exc:
            raise PermanentMailerError(f"cannot build the message: {exc}") from exc
        kwargs: dict[str, Any] = {
            "FromEmailAddress": self.mail_from,
            "Destination": {"ToAddresses": [to]},
            "Content": {"Raw": {"Data": raw}},
            "EmailTags": [{"Name": "coldreach_message_id", "Value": str(email.message_id)}],
        }
        if self.configuration_set:
            kwargs["ConfigurationSetName"] = self.configuration_set
        # The AWS SDK span of OpenTelemetry's semantic conventions (Service.Operation).
        with tracer.start_as_current_span(
            "SESV2.SendEmail",
            kind=SpanKind.CLIENT,
            attributes={
                "rpc.system": "aws-api",
                "rpc.service": "SESV2",
                "rpc.method": "SendEmail",
                "aws.region": self.region,
                "coldreach.message_id": email.message_id,
            },
        ) as span:
            response = self._call(span, kwargs)
        return str(response["MessageId"])

    def _call(self, span: trace.Span, kwargs: dict[str, Any]) -> Any:
        from botocore.exceptions import (
            ClientError,
            ConnectTimeoutError,
            EndpointConnectionError,
        )

        try:
            response = self.client.send_email(**kwargs)
            request_id = response.get("ResponseMetadata", {}).get("RequestId")
            if request_id:
                span.set_attribute("aws.request_id", request_id)
            return response
        except (EndpointConnectionError, ConnectTimeoutError) as exc:
            raise TransientMailerError(f"could not reach SES: {exc}") from exc
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in _TRANSIENT_CODES or status == 429:
                raise TransientMailerError(f"SES {code}") from exc
            if 400 <= status < 500:
                raise PermanentMailerError(f"SES {code}: {exc}") from exc
            raise  # 5xx: the request reached SES; outcome unknown


def make_mailer(settings: Settings) -> Mailer:
    if settings.mailer == "ses":
        return SesMailer(settings)
    return ConsoleMailer(settings.mail_outbox, settings.send_latency_ms)
