"""ECS services at their desired count without exposed tasks; load balancer targets healthy."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from coldreach.verify.aws import Aws, paginate
from coldreach.verify.discovery import State
from coldreach.verify.findings import FAIL, PASS, SKIP, Finding, verdict
from coldreach.verify.permissions import port_range, sources


def check_services(state: State, aws: Aws) -> list[Finding]:
    out: list[Finding] = []
    expected = [state.outputs.get("web_service_name")]
    if state.phase >= 2:
        expected.append(state.outputs.get("worker_service_name"))
    scaling = _scalable_targets(aws, str(state.outputs["cluster_name"]))
    for name in [str(n) for n in expected if n]:
        s = state.services.get(name)
        if s is None or s.get("status") != "ACTIVE":
            status = s.get("status") if s else "not found"
            out.append(Finding("ecs.desired_count", name, FAIL, f"service {status}"))
            continue
        out.append(_desired_count(s, scaling.get(name), aws.emulator))
        net = (s.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
        public = net.get("assignPublicIp") == "ENABLED"
        if not public:
            out.append(Finding("ecs.public_ip", name, PASS, "tasks get no public IP"))
        elif state.phase < 2:
            out.append(_phase1_public_ip(state, name, net.get("securityGroups") or []))
        else:
            out.append(Finding("ecs.public_ip", name, FAIL, "tasks get a public IP in phase 2"))
    return out


def _phase1_public_ip(state: State, name: str, group_ids: list[str]) -> Finding:
    """Phase 1 has no NAT, so tasks take a public IP (docs/adr/0001); that is only
    acceptable while nothing but the load balancer can reach them."""
    others = sorted(
        f"{port_range(p)} from {kind} {source}"
        for group_id in group_ids
        for p in (state.groups.get(group_id) or {}).get("IpPermissions") or []
        for kind, source in sources(p)
        if kind != "group" or source not in state.alb_groups
    )
    if others:
        detail = "public IP (phase 1) and reachable other than from the ALB: " + "; ".join(others)
        return Finding("ecs.public_ip", name, FAIL, detail)
    detail = "public IP, allowed in phase 1 (no NAT, docs/adr/0001): only the ALB gets in"
    return Finding("ecs.public_ip", name, PASS, detail)


def _scalable_targets(aws: Aws, cluster: str) -> dict[str, dict[str, Any]]:
    try:
        targets = paginate(
            aws("application-autoscaling"),
            "describe_scalable_targets",
            "ScalableTargets",
            ServiceNamespace="ecs",
        )
    except ClientError:
        return {}
    prefix = f"service/{cluster}/"
    return {
        t["ResourceId"][len(prefix) :]: t for t in targets if t["ResourceId"].startswith(prefix)
    }


def _desired_count(
    service: dict[str, Any], target: dict[str, Any] | None, emulator: bool
) -> Finding:
    name = service["serviceName"]
    desired = int(service.get("desiredCount") or 0)
    running = int(service.get("runningCount") or 0)
    pending = int(service.get("pendingCount") or 0)
    counts = f"desired {desired}, running {running}, pending {pending}"
    if desired < 1:
        return Finding("ecs.desired_count", name, FAIL, f"{counts}: nothing scheduled")
    if target is not None:
        low, high = int(target["MinCapacity"]), int(target["MaxCapacity"])
        counts += f", autoscaling {low}-{high}"
        if not low <= desired <= high:
            return Finding("ecs.desired_count", name, FAIL, f"{counts}: outside the bounds")
    if running == desired:
        return Finding("ecs.desired_count", name, PASS, counts)
    if emulator and running + pending == desired:
        detail = f"{counts} (emulator: tasks scheduled, no containers start)"
        return Finding("ecs.desired_count", name, PASS, detail)
    return Finding("ecs.desired_count", name, FAIL, f"{counts}: not at the desired count")


def check_targets(state: State, aws: Aws) -> list[Finding]:
    if state.load_balancer is None:
        return [Finding("alb.target_health", str(state.outputs.get("url")), FAIL, "ALB not found")]
    out: list[Finding] = []
    for tg in state.target_groups:
        name = tg.get("TargetGroupName") or tg["TargetGroupArn"]
        described = aws("elbv2").describe_target_health(TargetGroupArn=tg["TargetGroupArn"])
        health = described.get("TargetHealthDescriptions") or []
        if not health:
            why = "the emulator runs no tasks" if aws.emulator else "none registered yet"
            out.append(Finding("alb.target_health", name, SKIP, f"no targets ({why})"))
            continue
        states = [h.get("TargetHealth", {}).get("State", "unknown") for h in health]
        healthy = states.count("healthy")
        detail = f"{healthy}/{len(states)} healthy" + (
            "" if healthy == len(states) else f" ({', '.join(sorted(set(states)))})"
        )
        out.append(verdict("alb.target_health", name, healthy == len(states), detail))
    return out
