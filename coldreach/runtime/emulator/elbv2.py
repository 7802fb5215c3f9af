"""Elastic Load Balancing: the ALB, its target groups and listeners."""

from __future__ import annotations

from typing import Any

from coldreach.runtime.emulator.backend import MotoBackend, deletes, handles, updates
from coldreach.runtime.emulator.call import Call, Outputs, aws_tags, drop_none, pascal
from coldreach.runtime.model import Resource
from policies import tokens as t


@handles(t.LOAD_BALANCER)
def load_balancer(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    elb = b.client("elbv2")
    name = b.name(c)
    lb = elb.create_load_balancer(
        **drop_none(
            {
                "Name": name,
                "Subnets": c.get("subnets"),
                "SecurityGroups": c.get("securityGroups"),
                "Scheme": "internal" if c.get("internal") else "internet-facing",
                "Type": c.get("loadBalancerType", "application"),
                "Tags": aws_tags(c.get("tags")) or None,
            }
        )
    )["LoadBalancers"][0]
    arn = lb["LoadBalancerArn"]
    logs = c.get("accessLogs") or {}
    attributes = {
        "routing.http.drop_invalid_header_fields.enabled": c.get("dropInvalidHeaderFields"),
        "routing.http.desync_mitigation_mode": c.get("desyncMitigationMode"),
        "deletion_protection.enabled": c.get("enableDeletionProtection"),
        "access_logs.s3.enabled": logs.get("enabled"),
        "access_logs.s3.bucket": logs.get("bucket"),
        "access_logs.s3.prefix": logs.get("prefix"),
    }
    values = [
        {"Key": k, "Value": str(v).lower() if isinstance(v, bool) else str(v)}
        for k, v in attributes.items()
        if v is not None
    ]
    if values:
        elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=values)
    return arn, {
        "arn": arn,
        "arnSuffix": arn.split(":loadbalancer/", 1)[1],
        "dnsName": lb["DNSName"],
        "zoneId": lb.get("CanonicalHostedZoneId"),
        "vpcId": lb.get("VpcId"),
    }


@handles(t.TARGET_GROUP)
def target_group(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    elb = b.client("elbv2")
    name = b.name(c)
    health = c.get("healthCheck") or {}
    tg = elb.create_target_group(
        **drop_none(
            {
                "Name": name,
                "Protocol": c.get("protocol"),
                "Port": c.get("port"),
                "VpcId": c.get("vpcId"),
                "TargetType": c.get("targetType"),
                "HealthCheckPath": health.get("path"),
                "HealthCheckIntervalSeconds": health.get("interval"),
                "HealthyThresholdCount": health.get("healthyThreshold"),
                "UnhealthyThresholdCount": health.get("unhealthyThreshold"),
                "Matcher": {"HttpCode": health["matcher"]} if health.get("matcher") else None,
                "Tags": aws_tags(c.get("tags")) or None,
            }
        )
    )["TargetGroups"][0]
    arn = tg["TargetGroupArn"]
    if c.get("deregistrationDelay") is not None:
        elb.modify_target_group_attributes(
            TargetGroupArn=arn,
            Attributes=[
                {
                    "Key": "deregistration_delay.timeout_seconds",
                    "Value": str(c.get("deregistrationDelay")),
                }
            ],
        )
    return arn, {"arn": arn, "arnSuffix": arn.rsplit(":", 1)[1]}


@handles(t.LISTENER)
def listener(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    listener = b.client("elbv2").create_listener(
        **drop_none(
            {
                "LoadBalancerArn": c.get("loadBalancerArn"),
                "Port": c.get("port"),
                "Protocol": c.get("protocol"),
                "SslPolicy": c.get("sslPolicy"),
                "Certificates": (
                    [{"CertificateArn": _certificate(b, c.get("certificateArn"))}]
                    if c.get("certificateArn")
                    else None
                ),
                "DefaultActions": _actions(c),
            }
        )
    )["Listeners"][0]
    return listener["ListenerArn"], {"arn": listener["ListenerArn"]}


def _actions(c: Call) -> list[dict[str, Any]]:
    actions = []
    for a in c.get("defaultActions", []):
        action: dict[str, Any] = {"Type": a["type"]}
        if a.get("targetGroupArn"):
            action["TargetGroupArn"] = a["targetGroupArn"]
        if a.get("redirect"):
            action["RedirectConfig"] = pascal(a["redirect"])
        if a.get("forward"):
            # Weighted target groups (the ECS -> cluster cutover).
            action["ForwardConfig"] = {
                "TargetGroups": [
                    {"TargetGroupArn": g["arn"], "Weight": int(g.get("weight", 1))}
                    for g in a["forward"]["targetGroups"]
                ]
            }
        actions.append(action)
    return actions


@updates(t.LISTENER)
def listener_settings(b: MotoBackend, c: Call, old: Resource) -> Outputs:
    """ModifyListener: port, protocol, policy, certificate and actions change in place."""
    c.refuse_other_changes(
        old, {"port", "protocol", "sslPolicy", "certificateArn", "defaultActions", "tags"}
    )
    b.client("elbv2").modify_listener(
        **drop_none(
            {
                "ListenerArn": str(old.id),
                "Port": c.get("port"),
                "Protocol": c.get("protocol"),
                "SslPolicy": c.get("sslPolicy"),
                "Certificates": (
                    [{"CertificateArn": _certificate(b, c.get("certificateArn"))}]
                    if c.get("certificateArn")
                    else None
                ),
                "DefaultActions": _actions(c),
            }
        )
    )
    return {}


@deletes(t.LISTENER)
def delete_listener(b: MotoBackend, old: Resource) -> None:
    b.client("elbv2").delete_listener(ListenerArn=str(old.id))


def _certificate(b: MotoBackend, arn: str) -> str:
    """The stack's certificate is configuration (`cold-reach:certificateArn`), not
    something the program creates, so the emulator does not have it: a stand-in is
    requested from moto's ACM once and used for every HTTPS listener."""
    acm = b.client("acm")
    try:
        acm.describe_certificate(CertificateArn=arn)
        return arn
    except acm.exceptions.ResourceNotFoundException:
        pass
    with b.lock:
        stand_in = b.stand_in_certificate
        if stand_in is None:
            stand_in = acm.request_certificate(
                DomainName="coldreach.invalid", ValidationMethod="DNS"
            )["CertificateArn"]
            b.stand_in_certificate = stand_in
        return str(stand_in)
