"""Sending mail through SES v2: a DKIM-signed domain identity and bounce/complaint feedback."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import iam


@dataclass
class MailArgs:
    domain: str
    mail_from: str
    configuration_set_name: str
    """Physical name: SES needs one, and it must be unique per account and region."""


class Mail(pulumi.ComponentResource):
    """SES v2 identity for the sender domain, a configuration set, and an SNS feedback topic.

    Bounces and complaints go to the topic and from there to the app, which
    stops mailing those clients. The identity's DKIM records are an output:
    add them to the domain's DNS before the first send.
    """

    identity: aws.sesv2.EmailIdentity
    configuration_set: aws.sesv2.ConfigurationSet
    feedback_topic: aws.sns.Topic

    def __init__(
        self, name: str, args: MailArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("coldreach:mail:Mail", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        caller = aws.get_caller_identity(opts=pulumi.InvokeOptions(parent=self))
        region = aws.get_region(opts=pulumi.InvokeOptions(parent=self)).region
        self._identities = f"arn:aws:ses:{region}:{caller.account_id}:identity/*"
        self._name = name
        self._mail_from = args.mail_from

        self.configuration_set = aws.sesv2.ConfigurationSet(
            f"{name}-config",
            configuration_set_name=args.configuration_set_name,
            delivery_options=aws.sesv2.ConfigurationSetDeliveryOptionsArgs(tls_policy="REQUIRE"),
            reputation_options=aws.sesv2.ConfigurationSetReputationOptionsArgs(
                reputation_metrics_enabled=True
            ),
            suppression_options=aws.sesv2.ConfigurationSetSuppressionOptionsArgs(
                suppressed_reasons=["BOUNCE", "COMPLAINT"]
            ),
            opts=child,
        )
        self.identity = aws.sesv2.EmailIdentity(
            f"{name}-identity",
            email_identity=args.domain,
            configuration_set_name=self.configuration_set.configuration_set_name,
            dkim_signing_attributes=aws.sesv2.EmailIdentityDkimSigningAttributesArgs(
                next_signing_key_length="RSA_2048_BIT"
            ),
            opts=child,
        )

        # The feedback carries recipients' addresses, so the topic is encrypted; with a
        # key of our own, because SES may only publish to an encrypted topic whose key
        # policy lets it, and the AWS-managed SNS key's policy cannot be changed.
        key = aws.kms.Key(
            f"{name}-feedback-key",
            description=f"{name}: encrypts the SES feedback topic",
            enable_key_rotation=True,
            deletion_window_in_days=7,
            policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "AccountAdministersTheKey",
                            "Effect": "Allow",
                            "Principal": {"AWS": f"arn:aws:iam::{caller.account_id}:root"},
                            "Action": "kms:*",
                            "Resource": "*",
                        },
                        {
                            "Sid": "SesPublishesEncrypted",
                            "Effect": "Allow",
                            "Principal": {"Service": "ses.amazonaws.com"},
                            "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
                            "Resource": "*",
                            "Condition": {"StringEquals": {"aws:SourceAccount": caller.account_id}},
                        },
                    ],
                }
            ),
            opts=child,
        )
        self.feedback_topic = aws.sns.Topic(
            f"{name}-feedback", kms_master_key_id=key.arn, opts=child
        )
        aws.sns.TopicPolicy(
            f"{name}-feedback",
            arn=self.feedback_topic.arn,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "SesPublishesFeedback",
                            "Effect": "Allow",
                            "Principal": {"Service": "ses.amazonaws.com"},
                            "Action": "sns:Publish",
                            "Resource": self.feedback_topic.arn,
                            "Condition": {"StringEquals": {"aws:SourceAccount": caller.account_id}},
                        }
                    ],
                }
            ),
            opts=child,
        )
        aws.sesv2.ConfigurationSetEventDestination(
            f"{name}-feedback",
            configuration_set_name=self.configuration_set.configuration_set_name,
            event_destination_name="bounces-and-complaints",
            event_destination=aws.sesv2.ConfigurationSetEventDestinationEventDestinationArgs(
                enabled=True,
                matching_event_types=["BOUNCE", "COMPLAINT"],
                sns_destination=aws.sesv2.ConfigurationSetEventDestinationEventDestinationSnsDestinationArgs(
                    topic_arn=self.feedback_topic.arn
                ),
            ),
            opts=child,
        )
        self.register_outputs(
            {
                "identity_arn": self.identity.arn,
                "configuration_set": self.configuration_set.configuration_set_name,
                "dkim_records": self.dkim_records,
            }
        )

    @property
    def mail_from(self) -> str:
        return self._mail_from

    @property
    def dkim_records(self) -> pulumi.Output[list[str]]:
        """The CNAME records that prove the domain to SES, as zone-file lines."""
        domain = self.identity.email_identity
        tokens = self.identity.dkim_signing_attributes.apply(lambda d: d.tokens or [])
        return pulumi.Output.all(domain, tokens).apply(
            lambda args: [f"{t}._domainkey.{args[0]} CNAME {t}.dkim.amazonses.com" for t in args[1]]
        )

    def subscribe_webhook(
        self, url: pulumi.Input[str], depends_on: list[pulumi.Resource]
    ) -> aws.sns.TopicSubscription:
        """Delivers feedback to the app at `url` (its /webhooks/ses endpoint).

        SNS asks the endpoint to confirm, so this waits for the service
        (`depends_on`); the app confirms the subscription itself.
        """
        protocol = pulumi.Output.from_input(url).apply(lambda u: u.split(":", 1)[0])
        return aws.sns.TopicSubscription(
            f"{self._name}-feedback-webhook",
            topic=self.feedback_topic.arn,
            protocol=protocol,
            endpoint=url,
            # The app checks each notification's SNS signature, which raw delivery drops.
            raw_message_delivery=False,
            # Make the provider wait for the app's confirmation, so an endpoint that
            # never confirms fails `pulumi up` instead of silently dropping feedback.
            endpoint_auto_confirms=True,
            confirmation_timeout_in_minutes=15,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )

    def send_permission(self) -> iam.Statement:
        """The one thing the app may do with SES: send from `mail_from`, through this set.

        SES authorizes SendEmail against every identity the message involves. In the
        SES sandbox that includes each recipient's verified identity, so a policy naming
        only the sender's identity fails every sandbox send. The resource is therefore
        the account's identities in this region, and the condition keeps the sender to
        our address (which only our verified domain can send as).
        """
        return iam.allow(
            ["ses:SendEmail"],
            [self._identities, self.configuration_set.arn],
            condition={"StringEquals": {"ses:FromAddress": self._mail_from}},
        )
