"""SES v2: configuration sets, identities, event destinations."""

from __future__ import annotations

from coldreach.runtime.emulator.backend import MotoBackend, handles
from coldreach.runtime.emulator.call import Call, Outputs, aws_tags, drop_none, pascal
from policies import tokens as t


@handles(t.CONFIGURATION_SET)
def configuration_set(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    name = c.get("configurationSetName")
    delivery = c.get("deliveryOptions") or {}
    reputation = c.get("reputationOptions") or {}
    suppression = c.get("suppressionOptions") or {}
    b.client("sesv2").create_configuration_set(
        **drop_none(
            {
                "ConfigurationSetName": name,
                "DeliveryOptions": pascal(delivery) or None,
                "ReputationOptions": pascal(reputation) or None,
                "SuppressionOptions": pascal(suppression) or None,
                "Tags": aws_tags(c.get("tags")) or None,
            }
        )
    )
    return name, {"arn": b.arn("ses", f"configuration-set/{name}")}


@handles(t.EMAIL_IDENTITY)
def email_identity(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    identity = c.get("emailIdentity")
    signing = c.get("dkimSigningAttributes") or {}
    result = b.client("sesv2").create_email_identity(
        **drop_none(
            {
                "EmailIdentity": identity,
                "ConfigurationSetName": c.get("configurationSetName"),
                "DkimSigningAttributes": pascal(signing) or None,
                "Tags": aws_tags(c.get("tags")) or None,
            }
        )
    )
    dkim = result.get("DkimAttributes") or {}
    tokens = dkim.get("Tokens") or []
    if not tokens:
        # moto's SES v2 returns no tokens; its SES v1 call for the same identity does.
        tokens = b.client("ses").verify_domain_dkim(Domain=identity)["DkimTokens"]
    attrs = dict(signing)
    attrs.update(
        {
            "tokens": tokens,
            "status": dkim.get("Status", "PENDING"),
            "signingAttributesOrigin": dkim.get("SigningAttributesOrigin", "AWS_SES"),
        }
    )
    return identity, {
        "arn": b.arn("ses", f"identity/{identity}"),
        "dkimSigningAttributes": attrs,
        "identityType": result.get("IdentityType", "DOMAIN"),
        "verifiedForSendingStatus": bool(result.get("VerifiedForSendingStatus")),
    }


@handles(t.EVENT_DESTINATION)
def event_destination(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    """moto has no SES v2 call for this; the SES v1 call configures the same set."""
    dest = c.get("eventDestination") or {}
    config_set, name = c.get("configurationSetName"), c.get("eventDestinationName")
    sns = dest.get("snsDestination") or {}
    b.client("ses").create_configuration_set_event_destination(
        ConfigurationSetName=config_set,
        EventDestination=drop_none(
            {
                "Name": name,
                "Enabled": bool(dest.get("enabled")),
                "MatchingEventTypes": [t.lower() for t in dest.get("matchingEventTypes", [])],
                "SNSDestination": {"TopicARN": sns["topicArn"]} if sns else None,
            }
        ),
    )
    return f"{config_set}|{name}", {}
