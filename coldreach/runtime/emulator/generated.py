"""Values generated here, not in AWS: random passwords and ids."""

from __future__ import annotations

import base64
import secrets
import string

from coldreach.runtime.emulator.backend import MotoBackend, handles
from coldreach.runtime.emulator.call import Call, Outputs
from coldreach.runtime.model import secret
from policies import tokens as t


@handles(t.RANDOM_PASSWORD)
def random_password(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    length = int(c.get("length", 16))
    alphabet = string.ascii_letters + string.digits
    if c.get("special", True):
        alphabet += c.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?"
    value = "".join(secrets.choice(alphabet) for _ in range(length))
    return "none-" + secrets.token_hex(8), {"result": secret(value), "bcryptHash": secret("")}


@handles(t.RANDOM_ID)
def random_id(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    raw = secrets.token_bytes(int(c.get("byteLength", 4)))
    b64url = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return b64url, {
        "hex": raw.hex(),
        "dec": str(int.from_bytes(raw, "big")),
        "b64Std": base64.b64encode(raw).decode(),
        "b64Url": b64url,
    }
