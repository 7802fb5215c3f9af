"""WAF in front of the load balancer: on in production, configurable elsewhere."""

from __future__ import annotations

from collections.abc import Callable

from coldreach.runtime import Deployment

ACL = "aws:wafv2/webAcl:WebAcl"


def test_production_puts_the_alb_behind_managed_rules_and_a_rate_limit(
    program: Callable[..., Deployment],
) -> None:
    d = program("prod")
    [acl] = d.of_type(ACL)
    [association] = d.of_type("aws:wafv2/webAclAssociation:WebAclAssociation")
    assert association.get("resourceArn") == d.named("edge-alb").out("arn")
    assert association.get("webAclArn") == acl.out("arn")
    assert acl.get("scope") == "REGIONAL" and acl.get("defaultAction") == {"allow": {}}
    rules = {r["name"]: r for r in acl.get("rules")}
    managed = {name for name, r in rules.items() if "managedRuleGroupStatement" in r["statement"]}
    assert managed == {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    }
    # Email copy is the API's content: the common set's body rules count, never block.
    overrides = rules["AWSManagedRulesCommonRuleSet"]["statement"]["managedRuleGroupStatement"][
        "ruleActionOverrides"
    ]
    assert {o["name"] for o in overrides if o["actionToUse"] == {"count": {}}} == {
        "SizeRestrictions_BODY",
        "CrossSiteScripting_BODY",
        "GenericLFI_BODY",
        "GenericRFI_BODY",
        "EC2MetaDataSSRF_BODY",
    }
    rate = rules["per-ip-rate-limit"]
    assert rate["action"] == {"block": {}}
    assert rate["statement"]["rateBasedStatement"] == {"limit": 2000, "aggregateKeyType": "IP"}
    assert len({r["priority"] for r in rules.values()}) == len(rules)
    # Credentials never reach the WAF logs.
    [logging] = d.of_type("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration")
    assert logging.get("redactedFields") == [{"singleHeader": {"name": "authorization"}}]
    [group] = [g for g in d.of_type("aws:cloudwatch/logGroup:LogGroup") if g.name == "waf-logs"]
    assert group.get("namePrefix").startswith("aws-waf-logs-")
    assert logging.get("logDestinationConfigs") == [group.out("arn")]


def test_waf_is_configurable_outside_production(program: Callable[..., Deployment]) -> None:
    assert program("staging").of_type(ACL) == []
    [acl] = program("staging", wafEnabled="true", wafRateLimit="500").of_type(ACL)
    rate = next(r for r in acl.get("rules") if r["name"] == "per-ip-rate-limit")
    assert rate["statement"]["rateBasedStatement"]["limit"] == 500
    assert program("prod", wafEnabled="false").of_type(ACL) == []
