"""The optional parts of phase 1: HTTPS, SES mail, throwaway stacks, a given image."""

from __future__ import annotations

import fnmatch

from deployment_helpers import CERT, policy_statements, service_containers

from coldreach.runtime import Deployment


def test_certificate_gives_tls13_https_and_a_redirecting_http_listener(
    dev_https_mail: Deployment,
) -> None:
    listeners = {r.get("port"): r for r in dev_https_mail.of_type("aws:lb/listener:Listener")}
    assert set(listeners) == {80, 443}
    https = listeners[443]
    assert https.get("protocol") == "HTTPS"
    assert https.get("sslPolicy") == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert https.get("certificateArn") == CERT
    redirect = listeners[80].get("defaultActions")[0]
    assert redirect["type"] == "redirect"
    assert redirect["redirect"] == {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}
    assert dev_https_mail.output("url").startswith("https://")


def test_sender_domain_gives_a_dkim_identity_and_feedback_to_the_app(
    dev_https_mail: Deployment,
) -> None:
    d = dev_https_mail
    [identity] = d.of_type("aws:sesv2/emailIdentity:EmailIdentity")
    assert identity.get("emailIdentity") == "mail.example.com"
    assert identity.get("dkimSigningAttributes") == {"nextSigningKeyLength": "RSA_2048_BIT"}
    [config_set] = d.of_type("aws:sesv2/configurationSet:ConfigurationSet")
    assert config_set.get("configurationSetName") == "cold-reach-dev"
    [destination] = d.of_type(
        "aws:sesv2/configurationSetEventDestination:ConfigurationSetEventDestination"
    )
    event = destination.get("eventDestination")
    assert sorted(event["matchingEventTypes"]) == ["BOUNCE", "COMPLAINT"]
    [topic] = d.of_type("aws:sns/topic:Topic")
    assert event["snsDestination"]["topicArn"] == topic.id
    [subscription] = d.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert subscription.get("protocol") == "https"
    assert subscription.get("endpoint") == d.output("url") + "/webhooks/ses"
    web_service = d.of_type("aws:ecs/service:Service")[0]
    assert web_service.urn in subscription.dependencies
    assert len(d.output("mail_dkim_records")) == 3

    [container] = service_containers(d)
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["MAILER"] == "ses"
    assert env["MAIL_FROM"] == "outreach@mail.example.com"
    assert env["SES_CONFIGURATION_SET"] == "cold-reach-dev"


def test_the_app_may_send_from_its_address_and_nothing_else(dev_https_mail: Deployment) -> None:
    d = dev_https_mail
    [identity] = d.of_type("aws:sesv2/emailIdentity:EmailIdentity")
    [config_set] = d.of_type("aws:sesv2/configurationSet:ConfigurationSet")
    task_policy = next(
        r for r in d.of_type("aws:iam/rolePolicy:RolePolicy") if r.name == "web-task"
    )
    [statement] = policy_statements(task_policy.get("policy"))
    assert statement["Action"] == ["ses:SendEmail"]
    # In the SES sandbox a send is also authorized against the recipient's verified
    # identity: the policy covers the account's identities, the sender stays ours.
    identities, config_set_arn = statement["Resource"]
    assert identities == "arn:aws:ses:us-east-1:123456789012:identity/*"
    assert fnmatch.fnmatch(identity.out("arn"), identities)
    assert fnmatch.fnmatch("arn:aws:ses:us-east-1:123456789012:identity/me@example.org", identities)
    assert config_set_arn == config_set.out("arn")
    assert statement["Condition"] == {
        "StringEquals": {"ses:FromAddress": "outreach@mail.example.com"}
    }


def test_without_a_sender_domain_mail_is_skipped_with_a_note(dev: Deployment) -> None:
    assert not dev.of_type("aws:sesv2/emailIdentity:EmailIdentity")
    assert any("senderDomain is not set" in m for _, m in dev.messages)
    [container] = service_containers(dev)
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["MAILER"] == "console"


def test_ephemeral_stack_can_be_destroyed(program) -> None:
    d = program("dev", ephemeral="true")
    assert not [r.name for r in d if r.protect]
    [db] = d.of_type("aws:rds/instance:Instance")
    assert db.get("deletionProtection") is False and db.get("skipFinalSnapshot") is True
    [bucket] = d.of_type("aws:s3/bucket:Bucket")
    assert bucket.get("forceDestroy") is True


def test_given_image_is_used_as_is_and_nothing_is_built(program) -> None:
    image = "public.ecr.aws/example/cold-reach:1.2.3"
    d = program("dev", image=image)
    assert not d.of_type("docker-build:index:Image")
    [container] = service_containers(d)
    assert container["image"] == image
    execution = next(
        r for r in d.of_type("aws:iam/rolePolicy:RolePolicy") if r.name == "web-execution"
    )
    assert "ecr:BatchGetImage" not in execution.get("policy")


def test_built_image_is_pinned_by_digest_and_tagged_by_content(dev: Deployment) -> None:
    [build] = dev.of_type("docker-build:index:Image")
    [repo] = dev.of_type("aws:ecr/repository:Repository")
    [tag] = build.get("tags")
    assert tag.startswith(repo.out("repositoryUrl") + ":") and not tag.endswith(":latest")
    assert build.get("push") is True and build.get("platforms") == ["linux/amd64"]
    # Relative paths: the same program in another checkout must not look changed.
    assert build.get("context")["location"] == "app"
    assert build.get("dockerfile")["location"] == "app/Dockerfile"
    [container] = service_containers(dev)
    assert container["image"] == build.out("ref") and "@sha256:" in container["image"]


def test_feedback_reaches_the_app_signed_encrypted_and_confirmed(
    dev_https_mail: Deployment,
) -> None:
    d = dev_https_mail
    [topic] = d.of_type("aws:sns/topic:Topic")
    [key] = d.of_type("aws:kms/key:Key")
    assert topic.get("kmsMasterKeyId") == key.out("arn")
    assert key.get("enableKeyRotation") is True
    grants = {s["Sid"]: s for s in policy_statements(key.get("policy"))}
    assert grants["SesPublishesEncrypted"]["Principal"] == {"Service": "ses.amazonaws.com"}
    [subscription] = d.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert subscription.get("rawMessageDelivery") is False
    assert subscription.get("endpointAutoConfirms") is True
    [container] = service_containers(d)
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["SNS_TOPIC_ARNS"] == topic.id


def test_public_hostname_is_the_url_users_and_sns_see(program) -> None:
    d = program(
        "dev",
        certificateArn=CERT,
        senderDomain="mail.example.com",
        publicHostname="api.example.com",
        feedbackWebhook="true",
    )
    assert d.output("url") == "https://api.example.com"
    assert d.output("alb_dns_name").endswith(".elb.amazonaws.com")
    [subscription] = d.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert subscription.get("endpoint") == "https://api.example.com/webhooks/ses"
    [container] = service_containers(d)
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["PUBLIC_BASE_URL"] == "https://api.example.com"
    assert not any("publicHostname is not" in m for _, m in d.messages)


def test_certificate_without_hostname_warns(dev_https_mail: Deployment) -> None:
    assert any("publicHostname is not" in m for _, m in dev_https_mail.messages)


def test_services_wait_for_listeners_secret_values_and_health(dev: Deployment) -> None:
    [service] = dev.of_type("aws:ecs/service:Service")
    assert service.get("waitForSteadyState") is True
    needed = {
        r.urn
        for r in dev
        if r.type in ("aws:lb/listener:Listener", "aws:secretsmanager/secretVersion:SecretVersion")
    }
    assert len(needed) == 3 and needed <= set(service.dependencies)
