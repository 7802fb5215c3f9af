"""The raw MIME the SES mailer sends, parsed back from its bytes as a receiving server would."""

from __future__ import annotations

import email
import email.policy

import pytest
from openapi_server.mailer import OutgoingEmail, build_mime
from openapi_server.unsubscribe import make_token, unsubscribe_headers

# A production-length link: a real hostname and a full-length signed token.
BASE_URL = "https://reach-api.eu-west-1.coldreach-production.example.com"
TOKEN = make_token("s" * 48, 2_147_483_000, "first.last@subsidiary.example.co.uk", 60 * 86400)


def _email(subject: str = "Quick question", to: str = "lead@example.com") -> OutgoingEmail:
    return OutgoingEmail(
        message_id=2_147_483_000,
        to=to,
        subject=subject,
        body="Hello\n",
        headers=unsubscribe_headers(BASE_URL, TOKEN),
    )


def _header_lines(raw: bytes) -> list[bytes]:
    """Unfolded header lines of the raw message (continuation lines joined)."""
    head = raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]
    lines: list[bytes] = []
    for line in head.replace(b"\r\n", b"\n").split(b"\n"):
        if line[:1] in (b" ", b"\t") and lines:
            lines[-1] += line
        else:
            lines.append(line)
    return lines


def _named(raw: bytes, name: bytes) -> list[bytes]:
    prefix = name.lower() + b":"
    return [line for line in _header_lines(raw) if line.lower().startswith(prefix)]


def test_list_unsubscribe_is_the_literal_https_link_on_one_line() -> None:
    raw = build_mime(_email(), "Sales <sales@reach.example.com>")
    link = f"<{BASE_URL}/unsubscribe/{TOKEN}>".encode()
    assert len(link) > 78  # long enough to be folded by a default policy
    assert _named(raw, b"List-Unsubscribe") == [b"List-Unsubscribe: " + link]
    assert _named(raw, b"List-Unsubscribe-Post") == [
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"
    ]
    assert b"=?" not in b"".join(_named(raw, b"List-Unsubscribe"))
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["List-Unsubscribe"] == link.decode()


@pytest.mark.parametrize(
    "subject",
    [
        "=?utf-8?q?Hi=0D=0ABcc:_attacker@evil.example?=",
        "=?utf-8?b?SGkNCkJjYzogYXR0YWNrZXJAZXZpbC5leGFtcGxl?=",
        "Hello =?UTF-8?Q?=0ACc:_x@evil.example?= there",
        "Hi\r\nBcc: attacker@evil.example",
    ],
)
def test_encoded_words_in_a_subject_never_become_headers(subject: str) -> None:
    raw = build_mime(_email(subject), "sales@reach.example.com")
    assert len(_named(raw, b"To")) == 1
    assert _named(raw, b"Bcc") == [] and _named(raw, b"Cc") == []
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Bcc"] is None and parsed["Cc"] is None
    # A reader decodes the subject back to the literal text that was submitted.
    assert str(parsed["Subject"]) == subject


def test_non_ascii_subject_is_encoded_and_round_trips() -> None:
    subject = " ".join(["Café meeting ☕"] * 33)  # 500 characters, the longest subject
    raw = build_mime(_email(subject), "Ventes Été <sales@reach.example.com>")
    assert all(line.isascii() for line in _header_lines(raw))
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(parsed["Subject"]) == subject
    assert parsed["From"].addresses[0].display_name == "Ventes Été"


def test_internationalized_domain_goes_out_as_punycode() -> None:
    raw = build_mime(_email(to="lead@bücher.example"), "sales@reach.example.com")
    assert _named(raw, b"To") == [b"To: lead@xn--bcher-kva.example"]


def test_other_header_values_with_line_breaks_are_refused() -> None:
    bad = OutgoingEmail(1, "a@example.com", "S", "B", {"List-Unsubscribe": "<x>\r\nBcc: x@e.com"})
    with pytest.raises(ValueError):
        build_mime(bad, "sales@reach.example.com")


def test_mailboxes_ses_cannot_address_are_refused() -> None:
    with pytest.raises(ValueError):
        build_mime(_email(to="müller@example.com"), "sales@reach.example.com")
