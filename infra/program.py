"""The Cold Reach program: read the stack's settings, declare its topology for the phase,
then build the layers in order. It reads like the seed's table: what each phase turns on
is `infra/phases.py`, who reaches what is `infra/topology.py`.
"""

from __future__ import annotations

import pulumi

from infra import capacity, config, topology
from infra.layers import cluster, compute, data, edge, network, observability


def _warn_about(s: config.Settings) -> None:
    classes = {s.database.instance_class, s.database.replica_instance_class}
    if s.features.shards:
        classes.add(s.shards.instance_class)
    for instance_class in sorted(classes):
        if capacity.max_connections(instance_class) is None:
            pulumi.log.warn(
                f"{instance_class}: max_connections unknown to infra/capacity.py, so the "
                "connection pools were not checked against it"
            )
    if s.edge.https and s.edge.public_hostname is None:
        pulumi.log.warn(
            "cold-reach:certificateArn is set but cold-reach:publicHostname is not: no "
            "certificate can match the load balancer's own name, so browsers and SNS will "
            "refuse https://<alb>. Set publicHostname and point its DNS record at the ALB."
        )


def run_task_command(
    cluster: pulumi.Input[str],
    task_arn: pulumi.Input[str],
    network: dict[str, pulumi.Input[object]],
) -> pulumi.Output[str]:
    """The exact `aws ecs run-task` that starts a one-off task (docs/database-access.md)."""

    def render(values: list[object]) -> str:
        cluster, arn, subnets, groups, public = values
        assert isinstance(subnets, list) and isinstance(groups, list)
        vpc = (
            f"awsvpcConfiguration={{subnets=[{','.join(subnets)}],"
            f"securityGroups=[{','.join(groups)}],assignPublicIp={public}}}"
        )
        return (
            f"aws ecs run-task --cluster {cluster} --launch-type FARGATE "
            f"--task-definition {arn} --network-configuration '{vpc}' "
            "--query 'tasks[0].taskArn' --output text"
        )

    return pulumi.Output.all(
        cluster,
        task_arn,
        pulumi.Output.all(*network["subnets"]),  # type: ignore[misc]
        pulumi.Output.all(*network["securityGroups"]),  # type: ignore[misc]
        network["assignPublicIp"],
    ).apply(render)


def main() -> None:
    s = config.load()
    pending = s.features.not_built()
    if pending:
        raise pulumi.RunError(
            f"cold-reach:phase = {s.phase}: phase {s.phase} needs {', '.join(pending)}, "
            "which this program does not build yet"
        )
    _warn_about(s)
    declared = topology.declare(s.features, rotation=s.database.master_closed)

    net = network.build(s)
    tiers = data.build(s, declared, net)
    front = edge.build(s, declared, net)
    apps = compute.build(s, declared, net, tiers, front)
    rotation = tiers.rotation.function.name if tiers.rotation is not None else None
    alerts = observability.build(s, declared, tiers, rotation)
    eks = cluster.build(s, declared, net, tiers, front, apps) if s.features.cluster else None

    db = tiers.database
    outputs: dict[str, pulumi.Input[object]] = {
        "phase": s.phase,
        "url": front.public_url,
        "alb_dns_name": front.load_balancer.alb.dns_name,
        "vpc_id": net.vpc.id,
        "db_endpoint": db.instance.endpoint,
        "db_identifier": db.instance.identifier,
        "db_secret_arn": db.secret_arn,
        "cluster_name": apps.cluster.name,
        "image": apps.image.ref,
        "repository_url": apps.registry.repository.repository_url,
        "mail_dkim_records": front.mail.dkim_records if front.mail else [],
    }
    for name, service in apps.services.items():
        outputs[f"{name}_service_name"] = service.service.name
    for name, task in apps.db_tasks.items():
        outputs[f"db_{name}_task_arn"] = task.arn
    if apps.db_task_network is not None:
        outputs["db_task_network"] = apps.db_task_network
        outputs["db_task_commands"] = {
            name: run_task_command(apps.cluster.name, task.arn, apps.db_task_network)
            for name, task in apps.db_tasks.items()
        }
    if tiers.rotation is not None:
        outputs["db_rotation_function"] = tiers.rotation.function.name
    if db.replica is not None:
        outputs["db_replica_endpoint"] = db.replica.endpoint
        outputs["db_replica_identifier"] = db.replica.identifier
    if alerts is not None:
        outputs["alerts_topic_arn"] = alerts.topic.arn
    if eks is not None:
        outputs["eks_cluster_name"] = eks.cluster.name
        outputs["eks_endpoint"] = eks.cluster.cluster.endpoint
        outputs["eks_traffic_percent"] = s.cluster.traffic_percent if s.features.ecs else 100
    if tiers.cache is not None:
        outputs["redis_endpoint"] = tiers.cache.replication_group.primary_endpoint_address
    outputs |= tiers.outputs()
    shape = declared.to_json()
    if eks is not None:
        shape["plumbing"] = [flow.to_json() for flow in eks.plumbing]
    outputs["topology"] = shape
    for key, value in outputs.items():
        pulumi.export(key, value)
