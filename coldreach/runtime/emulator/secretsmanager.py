"""Secrets Manager."""

from __future__ import annotations

from coldreach.runtime.emulator.backend import MotoBackend, handles
from coldreach.runtime.emulator.call import Call, Outputs, aws_tags, drop_none
from policies import tokens as t


@handles(t.SECRET)
def managed_secret(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    name = b.name(c)
    result = b.client("secretsmanager").create_secret(
        **drop_none(
            {
                "Name": name,
                "Description": c.get("description"),
                "KmsKeyId": c.get("kmsKeyId"),
                "Tags": aws_tags(c.get("tags")) or None,
            }
        )
    )
    return result["ARN"], {"arn": result["ARN"]}


@handles(t.SECRET_VERSION)
def secret_version(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    result = b.client("secretsmanager").put_secret_value(
        SecretId=c.get("secretId"), SecretString=c.get("secretString")
    )
    return f"{result['ARN']}|{result['VersionId']}", {
        "arn": result["ARN"],
        "versionId": result["VersionId"],
        "versionStages": result.get("VersionStages", ["AWSCURRENT"]),
    }


@handles(t.SECRET_ROTATION)
def secret_rotation(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    rules = c.get("rotationRules") or {}
    b.client("secretsmanager").rotate_secret(
        **drop_none(
            {
                "SecretId": c.get("secretId"),
                "RotationLambdaARN": c.get("rotationLambdaArn"),
                "RotationRules": drop_none(
                    {
                        "AutomaticallyAfterDays": rules.get("automaticallyAfterDays"),
                        "Duration": rules.get("duration"),
                        "ScheduleExpression": rules.get("scheduleExpression"),
                    }
                ),
                # The emulator runs no function: an immediate rotation would only record
                # a new version with the old value. The schedule is what it keeps.
                "RotateImmediately": False,
            }
        )
    )
    return f"{c.get('secretId')}/rotation", {"rotationEnabled": True}
