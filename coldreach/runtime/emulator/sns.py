"""SNS topics, their policies and subscriptions."""

from __future__ import annotations

from coldreach.runtime.emulator.backend import MotoBackend, handles
from coldreach.runtime.emulator.call import Call, Outputs, aws_tags, drop_none
from policies import tokens as t


@handles(t.SNS_TOPIC)
def topic(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    name = b.name(c)
    attributes = drop_none({"KmsMasterKeyId": c.get("kmsMasterKeyId")})
    arn = b.client("sns").create_topic(
        **drop_none(
            {
                "Name": name,
                "Attributes": attributes or None,
                "Tags": aws_tags(c.get("tags")) or None,
            }
        )
    )["TopicArn"]
    return arn, {"arn": arn, "owner": b.identity.account}


@handles(t.SNS_TOPIC_POLICY)
def topic_policy(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    arn = c.get("arn")
    b.client("sns").set_topic_attributes(
        TopicArn=arn, AttributeName="Policy", AttributeValue=c.get("policy")
    )
    return arn, {"owner": b.identity.account}


@handles(t.SNS_SUBSCRIPTION)
def subscription(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    result = b.client("sns").subscribe(
        TopicArn=c.get("topic"),
        Protocol=c.get("protocol"),
        Endpoint=c.get("endpoint"),
        ReturnSubscriptionArn=True,
    )
    arn = result["SubscriptionArn"]
    return arn, {"arn": arn, "ownerId": b.identity.account, "pendingConfirmation": False}
