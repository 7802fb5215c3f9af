"""The SES v2 mailer against moto, and how it classifies failures."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber
from moto import mock_aws
from openapi_server.config import Settings
from openapi_server.mailer import (
    OutgoingEmail,
    PermanentMailerError,
    SesMailer,
    TransientMailerError,
)

EMAIL = OutgoingEmail(
    message_id=42,
    to="lead@example.com",
    subject="Quick question",
    body="Hello\n\n--\nTo stop receiving these emails: https://x/unsubscribe/t",
    headers={
        "List-Unsubscribe": "<https://reach.example.com/unsubscribe/1.2.abc>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    },
)


def _settings(**env: str) -> Settings:
    return Settings.from_env(
        {
            "MAILER": "ses",
            "MAIL_FROM": "sales@reach.example.com",
            "UNSUBSCRIBE_SECRET": "x" * 32,
            "AWS_REGION": "eu-west-1",
            **env,
        }
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


def test_sends_raw_mime_with_unsubscribe_headers_and_tags(aws) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    boto3.client("ses", region_name="eu-west-1").verify_domain_identity(Domain="reach.example.com")
    mailer = SesMailer(_settings(SES_CONFIGURATION_SET=""))
    provider_id = mailer.send(EMAIL)
    assert provider_id
    sent = ses_backends[DEFAULT_ACCOUNT_ID]["eu-west-1"].sent_messages
    assert len(sent) == 1
    raw = sent[0].raw_data
    assert "List-Unsubscribe: <https://reach.example.com/unsubscribe/1.2.abc>" in raw
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw
    assert "Subject: Quick question" in raw and "To: lead@example.com" in raw


def test_unverified_sender_is_a_permanent_failure(aws) -> None:
    with pytest.raises(PermanentMailerError):
        SesMailer(_settings()).send(EMAIL)


def _stubbed(error: Exception | None = None, code: str = "", status: int = 400):
    client = boto3.client(
        "sesv2",
        region_name="eu-west-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    stub = Stubber(client)
    if code:
        stub.add_client_error("send_email", service_error_code=code, http_status_code=status)
    stub.activate()
    mailer = SesMailer(_settings(SES_CONFIGURATION_SET="tracking"), client=client)
    if error is not None:

        def boom(**_: object) -> None:
            raise error

        client.send_email = boom  # type: ignore[method-assign]
    return mailer, stub


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("TooManyRequestsException", 429, TransientMailerError),
        ("LimitExceededException", 400, TransientMailerError),
        ("MessageRejected", 400, PermanentMailerError),
        ("MailFromDomainNotVerifiedException", 400, PermanentMailerError),
        ("InternalFailure", 500, ClientError),  # reached SES, outcome unknown
    ],
)
def test_error_classification(code: str, status: int, expected: type[Exception]) -> None:
    mailer, _ = _stubbed(code=code, status=status)
    with pytest.raises(expected):
        mailer.send(EMAIL)


def test_connection_errors_retry_but_read_timeouts_do_not() -> None:
    mailer, _ = _stubbed(error=EndpointConnectionError(endpoint_url="https://email"))
    with pytest.raises(TransientMailerError):
        mailer.send(EMAIL)
    mailer, _ = _stubbed(error=ReadTimeoutError(endpoint_url="https://email"))
    with pytest.raises(ReadTimeoutError):  # may have been sent: the pipeline flags it
        mailer.send(EMAIL)


def test_botocore_never_retries_on_its_own(aws) -> None:
    mailer = SesMailer(_settings())
    assert mailer.client.meta.config.retries["total_max_attempts"] == 1


def test_configuration_set_and_correlation_tag_are_sent() -> None:
    from botocore.stub import ANY

    mailer, stub = _stubbed()
    stub.add_response(
        "send_email",
        {"MessageId": "0100-abc"},
        expected_params={
            "FromEmailAddress": "sales@reach.example.com",
            "Destination": {"ToAddresses": ["lead@example.com"]},
            "Content": {"Raw": {"Data": ANY}},
            "EmailTags": [{"Name": "coldreach_message_id", "Value": "42"}],
            "ConfigurationSetName": "tracking",
        },
    )
    assert mailer.send(EMAIL) == "0100-abc"
    stub.assert_no_pending_responses()
