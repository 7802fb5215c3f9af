"""Application Auto Scaling for the ECS services."""

from __future__ import annotations

from coldreach.runtime.emulator.backend import MotoBackend, handles
from coldreach.runtime.emulator.call import Call, Outputs, pascal
from policies import tokens as t


@handles(t.SCALING_TARGET)
def scaling_target(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    client = b.client("application-autoscaling")
    client.register_scalable_target(
        ServiceNamespace=c.get("serviceNamespace"),
        ResourceId=c.get("resourceId"),
        ScalableDimension=c.get("scalableDimension"),
        MinCapacity=c.get("minCapacity"),
        MaxCapacity=c.get("maxCapacity"),
    )
    found = client.describe_scalable_targets(
        ServiceNamespace=c.get("serviceNamespace"), ResourceIds=[c.get("resourceId")]
    )["ScalableTargets"]
    arn = (found[0].get("ScalableTargetARN") if found else None) or b.arn(
        "application-autoscaling", f"scalable-target/{c.get('resourceId')}"
    )
    return c.get("resourceId"), {"arn": arn}


@handles(t.SCALING_POLICY)
def scaling_policy(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    name = b.name(c)
    config = c.get("targetTrackingScalingPolicyConfiguration") or {}
    result = b.client("application-autoscaling").put_scaling_policy(
        PolicyName=name,
        ServiceNamespace=c.get("serviceNamespace"),
        ResourceId=c.get("resourceId"),
        ScalableDimension=c.get("scalableDimension"),
        PolicyType=c.get("policyType"),
        TargetTrackingScalingPolicyConfiguration=pascal(config),
    )
    return name, {"arn": result["PolicyARN"], "alarmArns": []}
