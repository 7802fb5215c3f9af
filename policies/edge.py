"""Load balancer and listener rules (the public edge)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity, StackValidationArgs

from policies import tokens as t
from policies.model import (
    ADVISORY,
    items,
    mapping,
    of_type,
    present,
    property_rule,
    referrers,
    resource_rule,
    stack_rule,
)

# SH ELB.17 / CKV_AWS_103 / AVD-AWS-0047 all accept these; trivy rejects the -Ext variants.
TLS_POLICIES = (
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
)


def _is_application(props: Any) -> bool:
    return str(props.get("loadBalancerType") or "application") == "application"


def _not_application(props: Any) -> bool:
    return not _is_application(props)


def _redirects_to_https(action: Any) -> bool:
    action = mapping(action)
    redirect = mapping(action.get("redirect"))
    return action.get("type") == "redirect" and str(redirect.get("protocol")) == "HTTPS"


@resource_rule(
    "A1",
    "alb-https-only",
    types=t.LISTENERS,
    sources=(
        "SH ELB.1",
        "CKV_AWS_2",
        "CKV2_AWS_20",
        "AVD-AWS-0054",
        "AG alb-http-to-https-redirection",
        "CT.ELASTICLOADBALANCING.PR.1",
    ),
    severity=Severity.HIGH,
    description="Listeners serve HTTPS with a certificate; a plain HTTP listener only redirects",
)
def alb_https_only(args: ResourceValidationArgs) -> Iterator[str]:
    protocol = str(args.props.get("protocol") or "HTTP")
    actions = items(args.props.get("defaultActions"))
    if protocol == "HTTP":
        if not actions or not all(_redirects_to_https(a) for a in actions):
            yield "HTTP listener serves the app instead of redirecting to HTTPS"
    elif protocol == "HTTPS" and not present(args.props, "certificateArn"):
        yield "HTTPS listener has no certificateArn"


@resource_rule(
    "A2",
    "alb-tls-policy",
    types=t.LISTENERS,
    sources=("SH ELB.17", "CKV_AWS_103", "AVD-AWS-0047"),
    severity=Severity.HIGH,
    description="HTTPS and TLS listeners use a TLS 1.2+/1.3 security policy",
)
def alb_tls_policy(args: ResourceValidationArgs) -> Iterator[str]:
    if str(args.props.get("protocol") or "HTTP") not in ("HTTPS", "TLS"):
        return
    policy = args.props.get("sslPolicy")
    if policy is None:
        yield "sslPolicy is not set: the provider default ELBSecurityPolicy-2016-08 allows TLS 1.0"
    elif policy not in TLS_POLICIES:
        yield f"sslPolicy {policy} is not one of {', '.join(TLS_POLICIES)}"


property_rule(
    "A3a",
    "alb-drop-invalid-headers",
    types=t.LOAD_BALANCERS,
    sources=("SH ELB.4", "CKV_AWS_131", "AVD-AWS-0052", "CT.ELB.PR.3"),
    severity=Severity.MEDIUM,
    description="Application load balancers drop invalid HTTP header fields",
    prop="dropInvalidHeaderFields",
    must_be=True,
    strict=True,
    exempt=_not_application,
    message="dropInvalidHeaderFields is not true (the provider default is false)",
)


@resource_rule(
    "A3b",
    "alb-desync-mitigation",
    types=t.LOAD_BALANCERS,
    sources=("SH ELB.12", "CKV_AWS_328", "CT.ELB.PR.4"),
    severity=Severity.MEDIUM,
    description="HTTP desync mitigation is defensive or strictest, never monitor",
)
def alb_desync_mitigation(args: ResourceValidationArgs) -> Iterator[str]:
    mode = args.props.get("desyncMitigationMode")
    if _is_application(args.props) and mode is not None and mode not in ("defensive", "strictest"):
        yield f"desyncMitigationMode is {mode}: use defensive or strictest"


property_rule(
    "A3c",
    "alb-deletion-protection",
    types=t.LOAD_BALANCERS,
    sources=("SH ELB.6", "CKV_AWS_150", "AG elb-deletion-protection-enabled", "CT.ELB.PR.5"),
    severity=Severity.MEDIUM,
    description="Load balancers have deletion protection (mandatory in prod, advisory elsewhere)",
    prop="enableDeletionProtection",
    must_be=True,
    strict=True,
    message="enableDeletionProtection is not true",
)


@resource_rule(
    "A4",
    "alb-access-logs",
    types=t.LOAD_BALANCERS,
    sources=("SH ELB.5", "CKV_AWS_91", "AG elb-logging-enabled", "CT.ELB.PR.6"),
    severity=Severity.MEDIUM,
    description="Load balancers write access logs to a bucket",
)
def alb_access_logs(args: ResourceValidationArgs) -> Iterator[str]:
    logs = mapping(args.props.get("accessLogs"))
    if logs.get("enabled") is not True or not present(logs, "bucket"):
        yield "access logs are off (accessLogs.enabled with a bucket)"


@stack_rule(
    "A5",
    "alb-waf",
    sources=("SH ELB.16", "CKV2_AWS_28"),
    severity=Severity.MEDIUM,
    description="An internet-facing load balancer has a WAF web ACL associated",
    enforcement=ADVISORY,
)
def alb_waf(args: StackValidationArgs) -> Iterator[tuple[str | None, str]]:
    for lb in of_type(args, *t.LOAD_BALANCERS):
        if lb.props.get("internal") is True or not _is_application(lb.props):
            continue
        if not referrers(args, lb, "resourceArn", t.WAF_ASSOCIATION):
            yield lb.urn, "internet-facing load balancer has no WAF web ACL association"
