"""POST /webhooks/ses: SNS signatures, subscription confirmation, bounces and complaints."""

from __future__ import annotations

import json

import pytest
from app_recording import RecordingMailer
from app_sns_signing import CERT_URL, TOPIC, Signer, bounce, complaint, sns_timestamp
from openapi_server.sns import is_sns_url


@pytest.fixture
def signer() -> Signer:
    return Signer()


@pytest.fixture
def hook(make_client, signer: Signer):
    return make_client(
        RecordingMailer(), sns_fetcher=signer.fetch_cert, confirm_fetcher=signer.confirm
    )


def _post(api, message: dict, content_type: str = "text/plain; charset=UTF-8"):
    # SNS posts JSON with a text/plain content type.
    return api.post(
        "/webhooks/ses",
        content=json.dumps(message).encode(),
        headers={"content-type": content_type, "x-amz-sns-message-type": message.get("Type", "")},
    )


def _client(api, email: str) -> int:
    return api.post("/clients", json={"name": "X", "email": email}).json()["id"]


def test_permanent_bounce_marks_client_bounced_and_suppresses(hook, signer: Signer) -> None:
    cid = _client(hook, "Gone@Example.com")
    keep = _client(hook, "stays@example.com")
    r = _post(hook, signer.notification(bounce("gone@example.com")))
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "processed", "updated": 1}
    assert hook.get(f"/clients/{cid}").json()["status"] == "bounced"
    assert hook.get(f"/clients/{keep}").json()["status"] == "active"
    sent = hook.post("/email/send", json={"client_id": cid, "subject": "S", "body": "B"})
    assert sent.json()["status"] == "suppressed"
    assert signer.fetched == [CERT_URL]


def test_complaint_event_format_and_signature_v1(hook, signer: Signer) -> None:
    cid = _client(hook, "angry@example.com")
    r = _post(hook, signer.notification(complaint("Angry <angry@example.com>"), version="1"))
    assert r.status_code == 200 and r.json()["updated"] == 1
    assert hook.get(f"/clients/{cid}").json()["status"] == "complained"


def test_a_complaint_replaces_a_bounce_but_not_the_other_way_round(hook, signer: Signer) -> None:
    first_bounced = _client(hook, "b@example.com")
    first_complained = _client(hook, "c@example.com")
    for event in (bounce("b@example.com"), complaint("c@example.com")):
        assert _post(hook, signer.notification(event)).json()["updated"] == 1
    assert _post(hook, signer.notification(complaint("b@example.com"))).json()["updated"] == 1
    assert _post(hook, signer.notification(bounce("c@example.com"))).json()["updated"] == 0
    assert hook.get(f"/clients/{first_bounced}").json()["status"] == "complained"
    assert hook.get(f"/clients/{first_complained}").json()["status"] == "complained"


def test_same_notification_twice_is_processed_once(hook, signer: Signer) -> None:
    cid = _client(hook, "x@example.com")
    message = signer.notification(bounce("x@example.com"))
    assert _post(hook, message).json()["status"] == "processed"
    hook.patch(f"/clients/{cid}", json={"name": "still bounced"})
    again = _post(hook, message)
    assert again.status_code == 200 and again.json() == {"status": "duplicate", "updated": 0}


def test_transient_bounce_and_deliveries_do_not_suppress(hook, signer: Signer) -> None:
    cid = _client(hook, "busy@example.com")
    r = _post(hook, signer.notification(bounce("busy@example.com", bounce_type="Transient")))
    assert r.json()["status"] == "ignored"
    delivery = {"notificationType": "Delivery", "delivery": {"recipients": ["busy@example.com"]}}
    assert _post(hook, signer.notification(delivery)).json()["status"] == "ignored"
    assert hook.get(f"/clients/{cid}").json()["status"] == "active"


def _subscription(signer: Signer, topic: str = TOPIC) -> tuple[str, dict]:
    url = "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=abc"
    message = signer.sign(
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": "sub-1",
            "Token": "abc",
            "TopicArn": topic,
            "Message": "You have chosen to subscribe",
            "SubscribeURL": url,
            "Timestamp": sns_timestamp(),
        }
    )
    return url, message


def _allowing(make_client, settings, signer: Signer, *topics: str):
    return make_client(
        RecordingMailer(),
        settings_=settings.with_(sns_topic_arns=frozenset(topics)),
        sns_fetcher=signer.fetch_cert,
        confirm_fetcher=signer.confirm,
    )


def test_subscription_confirmation_is_confirmed_once(make_client, settings, signer) -> None:
    hook = _allowing(make_client, settings, signer, TOPIC)
    url, message = _subscription(signer)
    r = _post(hook, message, content_type="application/json")
    assert r.status_code == 200 and r.json()["status"] == "subscription confirmed"
    assert _post(hook, message).json()["status"] == "duplicate"
    assert signer.confirmed == [url]


def test_forged_or_foreign_messages_are_rejected(hook, signer: Signer) -> None:
    cid = _client(hook, "v@example.com")
    good = signer.notification(bounce("v@example.com"))

    tampered = {**good, "Message": json.dumps(bounce("v@example.com", "other@example.com"))}
    assert _post(hook, tampered).status_code == 403

    assert _post(hook, good).status_code == 200
    assert hook.get(f"/clients/{cid}").json()["status"] == "bounced"

    # Signed with another key, pointing at the real certificate URL: rejected.
    impostor = Signer()
    forged = impostor.notification(bounce("v@example.com"))
    assert _post(hook, forged).status_code == 403

    for cert_url in (
        "https://evil.example.com/cert.pem",
        "http://sns.eu-west-1.amazonaws.com/cert.pem",
        "https://sns.eu-west-1.amazonaws.com.evil.com/cert.pem",
        "https://sns.eu-west-1.amazonaws.com/cert.txt",
    ):
        msg = {**forged, "SigningCertURL": cert_url, "MessageId": cert_url}
        r = _post(hook, msg)
        assert r.status_code == 403, cert_url
        assert r.json()["detail"][0]["loc"] == ["body", "Signature"]
    assert signer.fetched == [CERT_URL] and impostor.fetched == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", ["body"]),
        (b"[1,2]", ["body"]),
        (b'{"Type": "Nope", "MessageId": "1"}', ["body", "Type"]),
        (b'{"Type": "Notification"}', ["body", "MessageId"]),
        (b'{"Type": "Notification", "MessageId": "1"}', ["body", "Timestamp"]),
        (
            b'{"Type": "Notification", "MessageId": "1", "Timestamp": "%s"}',
            ["body", "Signature"],
        ),
        (
            b'{"Type": "Notification", "MessageId": "1", "SignatureVersion": "2",'
            b' "Signature": "%%%%%%", "SigningCertURL": "x", "Timestamp": "%s"}',
            ["body", "Signature"],
        ),
    ],
)
def test_malformed_bodies_are_4xx_naming_the_field(hook, body: bytes, field: list) -> None:
    if b"%s" in body:
        body = body % sns_timestamp().encode()
    r = hook.post("/webhooks/ses", content=body, headers={"content-type": "text/plain"})
    assert 400 <= r.status_code < 500
    assert r.json()["detail"][0]["loc"] == field


def test_topic_allow_list(make_client, settings, signer: Signer) -> None:
    api = make_client(
        settings_=settings.with_(sns_topic_arns=frozenset({"arn:aws:sns:eu-west-1:1:other"})),
        sns_fetcher=signer.fetch_cert,
    )
    r = _post(api, signer.notification(bounce("a@example.com")))
    assert r.status_code == 403 and r.json()["detail"][0]["loc"] == ["body", "TopicArn"]


def test_sns_host_check() -> None:
    assert is_sns_url("https://sns.us-east-1.amazonaws.com/x.pem")
    assert is_sns_url("https://sns.cn-north-1.amazonaws.com.cn/x.pem")
    assert not is_sns_url("https://sns.us-east-1.amazonaws.com:8443/x.pem")
    assert not is_sns_url("https://user@sns.us-east-1.amazonaws.com/x.pem")
    assert not is_sns_url("https://s3.amazonaws.com/sns.us-east-1.amazonaws.com/x.pem")


def test_without_an_allow_list_no_subscription_is_confirmed(hook, signer: Signer) -> None:
    _, message = _subscription(signer)
    r = _post(hook, message)
    assert r.status_code == 403 and r.json()["detail"][0]["loc"] == ["body", "TopicArn"]
    assert signer.confirmed == []


def test_a_foreign_topic_is_refused_before_any_certificate_is_fetched(
    make_client, settings, signer: Signer
) -> None:
    api = _allowing(make_client, settings, signer, "arn:aws:sns:eu-west-1:1:other")
    for message in (signer.notification(bounce("a@example.com")), _subscription(signer)[1]):
        r = _post(api, message)
        assert r.status_code == 403 and r.json()["detail"][0]["loc"] == ["body", "TopicArn"]
    assert signer.fetched == [] and signer.confirmed == []


@pytest.mark.parametrize("age_s", [3601.0, 86400.0, -600.0])
def test_stale_or_future_messages_are_refused(hook, signer: Signer, age_s: float) -> None:
    cid = _client(hook, "old@example.com")
    message = signer.notification(bounce("old@example.com"), Timestamp=sns_timestamp(age_s))
    r = _post(hook, message)
    assert r.status_code == 403 and r.json()["detail"][0]["loc"] == ["body", "Timestamp"]
    assert hook.get(f"/clients/{cid}").json()["status"] == "active"
    fresh = signer.notification(bounce("old@example.com"), Timestamp=sns_timestamp(60))
    assert _post(hook, fresh).json() == {"status": "processed", "updated": 1}


def test_a_bounce_suppresses_the_address_in_every_workspace(hook, signer: Signer) -> None:
    from app_helpers import bearer, issue_key

    other = bearer(issue_key(hook, "another-sender"))
    ours = _client(hook, "gone@example.com")
    theirs = hook.post(
        "/clients", json={"name": "X", "email": "Gone@example.com"}, headers=other
    ).json()["id"]
    r = _post(hook, signer.notification(bounce("gone@example.com")))
    assert r.json() == {"status": "processed", "updated": 2}
    assert hook.get(f"/clients/{ours}").json()["status"] == "bounced"
    assert hook.get(f"/clients/{theirs}", headers=other).json()["status"] == "bounced"
    # A client created later, in any workspace, is not mailed either.
    third = bearer(issue_key(hook, "third"))
    later = hook.post("/clients", json={"name": "X", "email": "gone@example.com"}, headers=third)
    sent = hook.post(
        "/email/send",
        json={"client_id": later.json()["id"], "subject": "S", "body": "B"},
        headers=third,
    )
    assert sent.status_code == 202 and sent.json()["status"] == "suppressed"
