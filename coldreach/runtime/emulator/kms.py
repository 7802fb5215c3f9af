"""KMS keys."""

from __future__ import annotations

from coldreach.runtime.emulator.backend import MotoBackend, handles
from coldreach.runtime.emulator.call import Call, Outputs, aws_tags, drop_none
from policies import tokens as t


@handles(t.KMS_KEY)
def kms_key(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    kms = b.client("kms")
    meta = kms.create_key(
        **drop_none(
            {
                "Description": c.get("description"),
                "Policy": c.get("policy"),
                "Tags": aws_tags(c.get("tags"), "TagKey", "TagValue") or None,
            }
        )
    )["KeyMetadata"]
    if c.get("enableKeyRotation"):
        kms.enable_key_rotation(KeyId=meta["KeyId"])
    return meta["KeyId"], {"keyId": meta["KeyId"], "arn": meta["Arn"]}
