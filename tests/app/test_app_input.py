"""Input the README promises to refuse, and addresses matched in one form."""

from __future__ import annotations

import json

import pytest
from app_recording import RecordingMailer
from app_sns_signing import Signer, bounce
from fastapi.testclient import TestClient


def _locs(response) -> list[list]:
    return [d["loc"] for d in response.json()["detail"]]


def _client(api: TestClient, email: str = "a@example.com") -> int:
    r = api.post("/clients", json={"name": "A", "email": email})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_tabs_in_single_line_fields_are_refused(api: TestClient) -> None:
    r = api.post("/clients", json={"name": "Ada\tLovelace", "email": "a@example.com"})
    assert r.status_code == 422 and _locs(r) == [["body", "name"]]
    cid = _client(api)
    r = api.post("/email/send", json={"client_id": cid, "subject": "Hi\tthere", "body": "B"})
    assert r.status_code == 422 and _locs(r) == [["body", "subject"]]
    r = api.post("/tasks", json={"client_id": cid, "title": "Call\tback"})
    assert r.status_code == 422 and _locs(r) == [["body", "title"]]
    # Bodies keep their tabs.
    ok = api.post("/email/send", json={"client_id": cid, "subject": "S", "body": "a\tb"})
    assert ok.status_code == 202


@pytest.mark.parametrize(
    "subject",
    [
        "=?utf-8?q?Hi=0D=0ABcc:_attacker@evil.example?=",
        "Hello =?UTF-8?B?SGk=?= there",
    ],
)
def test_subjects_that_spell_encoded_words_are_refused(api: TestClient, subject: str) -> None:
    cid = _client(api)
    r = api.post("/email/send", json={"client_id": cid, "subject": subject, "body": "B"})
    assert r.status_code == 422 and _locs(r) == [["body", "subject"]]
    assert "encoded" in r.json()["detail"][0]["msg"]


def test_strict_types_where_the_readme_promises_them(api: TestClient) -> None:
    cid = _client(api)
    cases = [
        ("/tasks", {"client_id": cid, "title": "T", "due_at": 1_800_000_000}, ["body", "due_at"]),
        ("/tasks", {"client_id": True, "title": "T"}, ["body", "client_id"]),
        ("/tasks", {"client_id": str(cid), "title": "T"}, ["body", "client_id"]),
        ("/email/send", {"client_id": True, "subject": "S", "body": "B"}, ["body", "client_id"]),
        (
            "/email/send",
            {"client_id": float(cid), "subject": "S", "body": "B"},
            ["body", "client_id"],
        ),
    ]
    for path, payload, loc in cases:
        r = api.post(path, json=payload)
        assert r.status_code == 422, (payload, r.text)
        assert _locs(r) == [loc], r.json()
    task = api.post("/tasks", json={"client_id": cid, "title": "T"}).json()
    r = api.patch(f"/tasks/{task['id']}", json={"done": "yes"})
    assert r.status_code == 422 and _locs(r) == [["body", "done"]]
    r = api.patch(f"/tasks/{task['id']}", json={"done": 1})
    assert r.status_code == 422 and _locs(r) == [["body", "done"]]
    ok = api.post("/tasks", json={"client_id": cid, "title": "T", "due_at": "2030-01-02T03:04:05Z"})
    assert ok.status_code == 201 and ok.json()["due_at"].startswith("2030-01-02T03:04:05")
    assert api.get("/tasks").json()["total"] == 2


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_json_bodies_that_are_not_utf8_are_422(api: TestClient, encoding: str) -> None:
    raw = json.dumps({"name": "Ada", "email": "ada@example.com"}).encode(encoding)
    r = api.post("/clients", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and _locs(r) == [["body"]], r.text
    assert api.get("/clients").json()["total"] == 0


def test_internationalized_domains_match_in_either_form(api: TestClient) -> None:
    _client(api, "lead@bücher.example")
    r = api.post("/clients", json={"name": "B", "email": "LEAD@xn--bcher-kva.example"})
    assert r.status_code == 409 and _locs(r) == [["body", "email"]]


def test_mailboxes_ses_cannot_deliver_to_are_refused(api: TestClient) -> None:
    r = api.post("/clients", json={"name": "M", "email": "müller@example.com"})
    assert r.status_code == 422 and _locs(r) == [["body", "email"]]
    assert "ASCII" in r.json()["detail"][0]["msg"]


def test_a_bounce_for_the_punycode_form_suppresses_the_client(make_client) -> None:
    signer = Signer()
    mailer = RecordingMailer()
    api = make_client(mailer, sns_fetcher=signer.fetch_cert)
    cid = _client(api, "lead@bücher.example")
    message = signer.notification(bounce("lead@xn--bcher-kva.example"))
    r = api.post(
        "/webhooks/ses", content=json.dumps(message), headers={"content-type": "text/plain"}
    )
    assert r.status_code == 200 and r.json() == {"status": "processed", "updated": 1}, r.text
    assert api.get(f"/clients/{cid}").json()["status"] == "bounced"
    sent = api.post("/email/send", json={"client_id": cid, "subject": "S", "body": "B"})
    assert sent.json()["status"] == "suppressed"
