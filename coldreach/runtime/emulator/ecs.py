"""ECS: the cluster, task definitions, services."""

from __future__ import annotations

import json

from coldreach.runtime.emulator.backend import MotoBackend, handles
from coldreach.runtime.emulator.call import Call, Outputs, aws_tags, drop_none
from policies import tokens as t


@handles(t.ECS_CLUSTER)
def cluster(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    name = b.name(c)
    cluster = b.client("ecs").create_cluster(
        **drop_none(
            {
                "clusterName": name,
                "settings": [
                    {"name": s["name"], "value": s["value"]} for s in c.get("settings", [])
                ]
                or None,
                "tags": aws_tags(c.get("tags"), "key", "value") or None,
            }
        )
    )["cluster"]
    return cluster["clusterArn"], {"arn": cluster["clusterArn"]}


@handles(t.TASK_DEFINITION)
def task_definition(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    platform = c.get("runtimePlatform")
    task = b.client("ecs").register_task_definition(
        **drop_none(
            {
                "family": c.get("family"),
                "containerDefinitions": json.loads(c.get("containerDefinitions")),
                "cpu": c.get("cpu"),
                "memory": c.get("memory"),
                "networkMode": c.get("networkMode"),
                "requiresCompatibilities": c.get("requiresCompatibilities"),
                "runtimePlatform": platform,
                "executionRoleArn": c.get("executionRoleArn"),
                "taskRoleArn": c.get("taskRoleArn"),
                "volumes": [{"name": v["name"]} for v in c.get("volumes", [])] or None,
                "tags": aws_tags(c.get("tags"), "key", "value") or None,
            }
        )
    )["taskDefinition"]
    arn = task["taskDefinitionArn"]
    return c.get("family"), {
        "arn": arn,
        "arnWithoutRevision": arn.rsplit(":", 1)[0],
        "revision": task["revision"],
    }


@handles(t.ECS_SERVICE)
def service(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    name = b.name(c)
    net = c.get("networkConfiguration") or {}
    breaker = c.get("deploymentCircuitBreaker")
    deployment = drop_none(
        {
            "minimumHealthyPercent": c.get("deploymentMinimumHealthyPercent"),
            "maximumPercent": c.get("deploymentMaximumPercent"),
            "deploymentCircuitBreaker": (
                {"enable": bool(breaker["enable"]), "rollback": bool(breaker["rollback"])}
                if breaker
                else None
            ),
        }
    )
    service = b.client("ecs").create_service(
        **drop_none(
            {
                "cluster": c.get("cluster"),
                "serviceName": name,
                "taskDefinition": c.get("taskDefinition"),
                "desiredCount": c.get("desiredCount", 0),
                "launchType": c.get("launchType"),
                "platformVersion": c.get("platformVersion"),
                "networkConfiguration": (
                    {
                        "awsvpcConfiguration": {
                            "subnets": net.get("subnets", []),
                            "securityGroups": net.get("securityGroups", []),
                            "assignPublicIp": (
                                "ENABLED" if net.get("assignPublicIp") else "DISABLED"
                            ),
                        }
                    }
                    if net
                    else None
                ),
                "loadBalancers": [
                    {
                        "targetGroupArn": lb["targetGroupArn"],
                        "containerName": lb["containerName"],
                        "containerPort": lb["containerPort"],
                    }
                    for lb in c.get("loadBalancers", [])
                ]
                or None,
                "healthCheckGracePeriodSeconds": c.get("healthCheckGracePeriodSeconds"),
                "deploymentConfiguration": deployment or None,
                "enableExecuteCommand": c.get("enableExecuteCommand"),
                "propagateTags": c.get("propagateTags"),
                "tags": aws_tags(c.get("tags"), "key", "value") or None,
            }
        )
    )["service"]
    return service["serviceArn"], {"arn": service["serviceArn"]}
