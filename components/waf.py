"""AWS WAF in front of the load balancer: AWS's managed rule sets and a per-IP rate limit."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# AWS managed rule groups, in evaluation order (cheap reputation check first).
MANAGED_RULE_GROUPS = (
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesCommonRuleSet",
)
# The common rule set's body rules only count. The API's purpose is to carry email
# copy (`POST /email/send` bodies hold up to 100,000 characters of it), where markup,
# links to IP addresses or `../` paths are content, not attacks; WAF behind an ALB
# reads only the first 8 KB of a body anyway. SES feedback from SNS can exceed the
# 8 KB size rule, and the app limits bodies itself, route by route. Matches still
# show in the WAF logs and metrics.
COUNT_ONLY = {
    "AWSManagedRulesCommonRuleSet": (
        "SizeRestrictions_BODY",
        "CrossSiteScripting_BODY",
        "GenericLFI_BODY",
        "GenericRFI_BODY",
        "EC2MetaDataSSRF_BODY",
    )
}


@dataclass
class WebFirewallArgs:
    load_balancer_arn: pulumi.Input[str]
    rate_limit: int
    """Requests one client IP may send in any 5 minutes before it is blocked."""
    log_retention_days: int


class WebFirewall(pulumi.ComponentResource):
    """A regional web ACL associated with the ALB, logging to CloudWatch.

    The logs never hold credentials: the `Authorization` header (API keys, OIDC
    tokens) is redacted before WAF writes them.
    """

    acl: aws.wafv2.WebAcl

    def __init__(
        self, name: str, args: WebFirewallArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("coldreach:edge:WebFirewall", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        rules = [
            self._managed(group, priority) for priority, group in enumerate(MANAGED_RULE_GROUPS)
        ]
        rules.append(self._rate_limit(args.rate_limit, len(rules)))
        self.acl = aws.wafv2.WebAcl(
            f"{name}-acl",
            scope="REGIONAL",
            description=f"{name}: managed rule sets and a per-IP rate limit",
            default_action={"allow": {}},
            rules=rules,
            visibility_config=self._visibility(name),
            opts=child,
        )
        aws.wafv2.WebAclAssociation(
            f"{name}-alb",
            resource_arn=args.load_balancer_arn,
            web_acl_arn=self.acl.arn,
            opts=child,
        )
        # WAF writes only to log groups whose name starts with aws-waf-logs-.
        logs = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name_prefix="aws-waf-logs-coldreach-",
            retention_in_days=args.log_retention_days,
            opts=child,
        )
        aws.wafv2.WebAclLoggingConfiguration(
            f"{name}-logging",
            resource_arn=self.acl.arn,
            log_destination_configs=[logs.arn],
            redacted_fields=[{"single_header": {"name": "authorization"}}],
            opts=child,
        )
        self.register_outputs({"web_acl_arn": self.acl.arn})

    @staticmethod
    def _visibility(metric: str) -> aws.wafv2.WebAclVisibilityConfigArgsDict:
        return {
            "cloudwatch_metrics_enabled": True,
            "metric_name": metric,
            "sampled_requests_enabled": True,
        }

    def _managed(self, group: str, priority: int) -> aws.wafv2.WebAclRuleArgsDict:
        statement: aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementArgsDict = {
            "vendor_name": "AWS",
            "name": group,
        }
        if group in COUNT_ONLY:
            statement["rule_action_overrides"] = [
                {"name": rule, "action_to_use": {"count": {}}} for rule in COUNT_ONLY[group]
            ]
        return {
            "name": group,
            "priority": priority,
            "override_action": {"none": {}},
            "statement": {"managed_rule_group_statement": statement},
            "visibility_config": self._visibility(group),
        }

    def _rate_limit(self, limit: int, priority: int) -> aws.wafv2.WebAclRuleArgsDict:
        return {
            "name": "per-ip-rate-limit",
            "priority": priority,
            "action": {"block": {}},
            "statement": {"rate_based_statement": {"limit": limit, "aggregate_key_type": "IP"}},
            "visibility_config": self._visibility("per-ip-rate-limit"),
        }
