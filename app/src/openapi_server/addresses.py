"""One form of an email address for matching, and its ASCII form for the wire.

An internationalized domain can arrive as Unicode (`bücher.example`, from the API)
or as punycode (`xn--bcher-kva.example`, from SES notifications); both must reach
the same client and the same suppression. SES takes only ASCII addresses: the
domain in punycode and a 7-bit local part (no SMTPUTF8 mailboxes).
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email


def ascii_address(address: str) -> str:
    """`local@xn--domain`: what goes into the `To:` header and the SES destination.

    Raises ValueError for an invalid address or a local part that is not ASCII.
    """
    try:
        parsed = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    if parsed.ascii_email is None:
        raise ValueError("the part before @ must be ASCII (internationalized mailboxes)")
    return parsed.ascii_email


def email_key(address: str) -> str:
    """The matching key: the ASCII address, lower-cased (uniqueness and suppression)."""
    return ascii_address(address).lower()
