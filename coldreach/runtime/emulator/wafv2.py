"""AWS WAF: the web ACL, its association with the load balancer, its logging."""

from __future__ import annotations

from coldreach.runtime.emulator.backend import MotoBackend, handles
from coldreach.runtime.emulator.call import Call, Outputs, aws_tags, drop_none, pascal
from policies import tokens as t

# Where the WAF API's spelling is not the engine's key with a capital first letter.
RENAMES = {"cloudwatchMetricsEnabled": "CloudWatchMetricsEnabled"}


@handles(t.WAF_ACL)
def web_acl(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    summary = b.client("wafv2").create_web_acl(
        **drop_none(
            {
                "Name": b.name(c),
                "Scope": c.get("scope"),
                "Description": c.get("description"),
                "DefaultAction": pascal(c.get("defaultAction"), RENAMES),
                "Rules": pascal(c.get("rules") or [], RENAMES),
                "VisibilityConfig": pascal(c.get("visibilityConfig"), RENAMES),
                "Tags": aws_tags(c.get("tags")) or None,
            }
        )
    )["Summary"]
    return summary["Id"], {"arn": summary["ARN"], "name": summary["Name"], "id": summary["Id"]}


@handles(t.WAF_ASSOCIATION)
def web_acl_association(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    acl, resource = c.get("webAclArn"), c.get("resourceArn")
    b.client("wafv2").associate_web_acl(WebACLArn=acl, ResourceArn=resource)
    return f"{acl},{resource}", {}


@handles(t.WAF_LOGGING)
def web_acl_logging(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    acl = c.get("resourceArn")
    b.client("wafv2").put_logging_configuration(
        LoggingConfiguration={
            "ResourceArn": acl,
            "LogDestinationConfigs": c.get("logDestinationConfigs"),
            "RedactedFields": pascal(c.get("redactedFields") or [], RENAMES),
        }
    )
    return acl, {}
