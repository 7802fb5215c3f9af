"""RFC 8058 one-click unsubscribe with signed, expiring tokens."""

from __future__ import annotations

import pytest
from app_helpers import wait_for
from app_recording import RecordingMailer
from openapi_server.unsubscribe import (
    TokenClaims,
    TokenError,
    make_token,
    parse_token,
    verify_token,
)

SECRET = "test-secret-0123456789abcdef"


def _token_from_sent_mail(make_client) -> tuple[object, int, str, RecordingMailer]:
    mailer = RecordingMailer()
    api = make_client(mailer)
    cid = api.post("/clients", json={"name": "L", "email": "Lead@Example.com"}).json()["id"]
    api.post("/email/send", json={"client_id": cid, "subject": "S", "body": "B"})
    wait_for(lambda: mailer.calls)
    url = mailer.calls[0].headers["List-Unsubscribe"].strip("<>")
    return api, cid, url.rsplit("/", 1)[1], mailer


def test_one_click_post_without_cookies_unsubscribes_and_suppresses(make_client) -> None:
    api, cid, token, mailer = _token_from_sent_mail(make_client)
    api.cookies.clear()
    r = api.post(
        f"/unsubscribe/{token}",
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "unsubscribed", "client_id": cid}
    assert api.get(f"/clients/{cid}").json()["status"] == "unsubscribed"
    # Clicking twice is fine.
    assert api.post(f"/unsubscribe/{token}").status_code == 200

    r = api.post("/email/send", json={"client_id": cid, "subject": "S2", "body": "B"})
    assert r.json()["status"] == "suppressed"
    assert len(mailer.calls) == 1


def test_get_shows_a_form_and_changes_nothing(make_client) -> None:
    api, cid, token, _ = _token_from_sent_mail(make_client)
    r = api.get(f"/unsubscribe/{token}")
    assert r.status_code == 200 and "<form method='post'" in r.text
    assert api.get(f"/clients/{cid}").json()["status"] == "active"


def test_tampered_expired_and_foreign_tokens_are_400(make_client) -> None:
    api, cid, token, _ = _token_from_sent_mail(make_client)
    other = api.post("/clients", json={"name": "O", "email": "o@example.com"}).json()["id"]
    cid_s, exp, sig = token.split(".")
    bad_tokens = [
        f"{cid_s}.{int(exp) + 1}.{sig}",  # extended expiry
        f"{other}.{exp}.{sig}",  # someone else's id
        f"{cid_s}.{exp}.{'A' * len(sig)}",
        make_token(SECRET, cid, "lead@example.com", ttl_s=-10),  # expired
        make_token("another-secret-0123456789", cid, "lead@example.com", ttl_s=3600),
        f"999999.{exp}.{sig}",
    ]
    for bad in bad_tokens:
        r = api.post(f"/unsubscribe/{bad}")
        assert r.status_code == 400, bad
        assert r.json()["detail"][0]["loc"] == ["path", "token"]
    assert api.post("/unsubscribe/not-a-token").status_code == 422
    assert api.get(f"/clients/{cid}").json()["status"] == "active"
    assert api.get(f"/clients/{other}").json()["status"] == "active"


def test_token_functions() -> None:
    token = make_token(SECRET, 7, "a@example.com", ttl_s=60, now=1000)
    assert parse_token(token) == TokenClaims(client_id=7, expires_at=1060)
    assert verify_token(SECRET, token, "a@example.com", now=1059).expires_at == 1060
    with pytest.raises(TokenError, match="bad signature"):  # bound to the address
        verify_token(SECRET, token, "b@example.com", now=1000)
    with pytest.raises(TokenError, match="bad signature"):
        verify_token("another-secret-0123456789", token, "a@example.com", now=1000)
    with pytest.raises(TokenError, match="token expired"):
        verify_token(SECRET, token, "a@example.com", now=1061)
    for malformed in ("7.1060", "x.1060.sig", "\u00b2.1060.sig", "7.1060.sig.x", f"7.{10**12}.s"):
        with pytest.raises(TokenError, match="malformed"):
            parse_token(malformed)
    assert "a@example.com" not in token


def test_ids_beyond_the_column_range_are_an_invalid_token(make_client) -> None:
    api, _, token, _ = _token_from_sent_mail(make_client)
    _, exp, sig = token.split(".")
    for cid in ("2147483648", "9999999999", "0"):
        r = api.post(f"/unsubscribe/{cid}.{exp}.{sig}")
        assert r.status_code == 400, (cid, r.text)
        assert r.json()["detail"][0]["loc"] == ["path", "token"]


def test_an_unsubscribe_holds_in_its_workspace_only_and_survives_deleting_the_client(
    make_client,
) -> None:
    from app_helpers import bearer, issue_key

    api, cid, token, mailer = _token_from_sent_mail(make_client)
    other = bearer(issue_key(api, "another-sender"))
    their_client = api.post(
        "/clients", json={"name": "L", "email": "lead@example.com"}, headers=other
    ).json()["id"]
    assert api.post(f"/unsubscribe/{token}").status_code == 200

    ours = api.post("/email/send", json={"client_id": cid, "subject": "S", "body": "B"})
    assert ours.json()["status"] == "suppressed"
    theirs = api.post(
        "/email/send", json={"client_id": their_client, "subject": "S", "body": "B"}, headers=other
    )
    assert theirs.json()["status"] == "queued"
    wait_for(lambda: len(mailer.calls) == 2)
    assert api.get(f"/clients/{their_client}", headers=other).json()["status"] == "active"

    # Deleting and re-creating the client does not undo the opt-out.
    assert api.delete(f"/clients/{cid}").status_code == 204
    again = api.post("/clients", json={"name": "L", "email": "LEAD@example.com"}).json()["id"]
    r = api.post("/email/send", json={"client_id": again, "subject": "S", "body": "B"})
    assert r.json()["status"] == "suppressed"
    assert len(mailer.calls) == 2
