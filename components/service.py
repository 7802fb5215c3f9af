"""One container on ECS Fargate: task definition, roles, logs, security group and service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
from pulumi_aws.appautoscaling import (
    PolicyTargetTrackingScalingPolicyConfigurationArgsDict as TrackingConfig,
)
from pulumi_aws.appautoscaling import (
    PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationArgsDict as CustomMetric,  # noqa: E501
)

from components import iam
from components.firewall import SecurityGroup
from components.secrets import SecretRef, StoredSecret

CONTAINER = "app"
# The image's non-root user (app/Dockerfile creates it with this uid:gid).
APP_USER = "10001:10001"


@dataclass
class LoadBalancerTarget:
    target_group_arn: pulumi.Input[str]
    container_port: int


@dataclass
class BacklogMetric:
    """A CloudWatch metric of work waiting (e.g. queued emails), published by the app."""

    namespace: str
    metric_name: str
    target_per_task: int
    """Keep about this much waiting work per running task."""


@dataclass
class Scaling:
    """Target tracking between `min_count` and `max_count` tasks, on CPU or on a backlog."""

    min_count: int
    max_count: int
    cpu_target: int | None = None
    """Average CPU percent to hold (for request-serving services)."""
    backlog: BacklogMetric | None = None
    """Backlog per running task to hold (for queue workers, whose CPU says little)."""


@dataclass(kw_only=True)
class TaskArgs:
    """One app container as a task definition: what it runs, what it sees, what it may do."""

    image: pulumi.Input[str]
    cpu: int
    memory: int
    log_retention_days: int
    command: Sequence[str] | None = None
    """None runs the image's default command."""
    health_command: Sequence[str] | None = None
    """A container health check (exec form), for services no load balancer probes."""
    stop_timeout_seconds: int = 60
    """Time between SIGTERM and SIGKILL: longer than the slowest in-flight call (an SES
    send times out after 30 s), so a scale-in never cuts a send in half."""
    environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Plain settings only. Anything secret goes in `secrets`."""
    secrets: Mapping[str, SecretRef] = field(default_factory=dict)
    """Variable name -> the stored value ECS injects. The execution role may read
    exactly these secrets, and the service waits for their values."""
    readable_secrets: Sequence[StoredSecret] = ()
    """Secrets the execution role may still read although this revision injects none of
    them: the previous revision did, and ECS's rollback to it must be able to start."""
    repository_arn: pulumi.Input[str] | None = None
    """ECR repository the image comes from; None for an image from elsewhere."""
    task_permissions: Sequence[iam.Statement] = ()
    """What the app itself may do in AWS (the task role). Empty means nothing."""


@dataclass(kw_only=True)
class FargateServiceArgs(TaskArgs):
    cluster_arn: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    desired_count: int
    assign_public_ip: bool = False
    """Only phase 1 sets this: no NAT, so tasks pull images through a public IP."""
    load_balancer: LoadBalancerTarget | None = None
    scaling: Scaling | None = None
    """None: exactly `desired_count` tasks. Set: autoscaling owns the count."""
    depends_on: Sequence[pulumi.Resource] = ()
    security_group_tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags on the security group (the topology node it is, whom it admits)."""


@dataclass
class Task:
    """A task definition with its log group and roles, children of the component that owns it."""

    log_group: aws.cloudwatch.LogGroup
    task_definition: aws.ecs.TaskDefinition
    task_role: aws.iam.Role
    policies: list[aws.iam.RolePolicy]
    """The roles' policies: a task launched before they propagate cannot start."""


def stored_secrets(args: TaskArgs) -> list[StoredSecret]:
    """Each secret the task reads, once (several keys may come from one secret)."""
    found: list[StoredSecret] = []
    for ref in args.secrets.values():
        if all(ref.stored is not s for s in found):
            found.append(ref.stored)
    return found


def task_definition(
    owner: pulumi.Resource, name: str, args: TaskArgs, port: int | None = None
) -> Task:
    """The container wiring every app task shares, whether a service runs it or an operator
    does (`aws ecs run-task`): non-root, read-only root, logs, secrets through ECS, and a
    task role that carries only `args.task_permissions`."""
    child = pulumi.ResourceOptions(parent=owner)
    region = aws.get_region(opts=pulumi.InvokeOptions(parent=owner)).region

    log_group = aws.cloudwatch.LogGroup(
        f"{name}-logs", retention_in_days=args.log_retention_days, opts=child
    )
    execution_role = aws.iam.Role(
        f"{name}-execution",
        assume_role_policy=iam.assume_role_policy("ecs-tasks.amazonaws.com"),
        description=f"{name}: lets ECS pull the image, write logs and read the task's secrets",
        opts=child,
    )
    # IAM is eventually consistent: tasks launched before the policy has propagated
    # cannot pull the image or read secrets, and those failures count toward the
    # circuit breaker, so a service waits for the policies.
    policies = [
        aws.iam.RolePolicy(
            f"{name}-execution",
            role=execution_role.id,
            policy=iam.policy(*_execution_statements(log_group, args)),
            opts=child,
        )
    ]
    task_role = aws.iam.Role(
        f"{name}-task",
        assume_role_policy=iam.assume_role_policy("ecs-tasks.amazonaws.com"),
        description=f"{name}: what the app itself may do in AWS",
        opts=child,
    )
    if args.task_permissions:
        policies.append(
            aws.iam.RolePolicy(
                f"{name}-task",
                role=task_role.id,
                policy=iam.policy(*args.task_permissions),
                opts=child,
            )
        )

    container: dict[str, object] = {
        "name": CONTAINER,
        "image": args.image,
        "essential": True,
        "user": APP_USER,
        "readonlyRootFilesystem": True,
        "privileged": False,
        "stopTimeout": args.stop_timeout_seconds,
        "mountPoints": [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}],
        "environment": [{"name": k, "value": v} for k, v in sorted(args.environment.items())],
        "secrets": [
            {"name": k, "valueFrom": ref.value_from} for k, ref in sorted(args.secrets.items())
        ],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group.name,
                "awslogs-region": region,
                "awslogs-stream-prefix": name,
            },
        },
    }
    if args.command is not None:
        container["command"] = list(args.command)
    if args.health_command is not None:
        container["healthCheck"] = {
            "command": ["CMD", *args.health_command],
            "interval": 30,
            "timeout": 5,
            "retries": 3,
            "startPeriod": 30,
        }
    if port is not None:
        container["portMappings"] = [{"containerPort": port, "hostPort": port, "protocol": "tcp"}]

    definition = aws.ecs.TaskDefinition(
        f"{name}-task",
        # Per stack: several stacks may share an account, and ECS families are global.
        family=f"{pulumi.get_project()}-{pulumi.get_stack()}-{name}",
        cpu=str(args.cpu),
        memory=str(args.memory),
        network_mode="awsvpc",
        requires_compatibilities=["FARGATE"],
        runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
            operating_system_family="LINUX", cpu_architecture="X86_64"
        ),
        execution_role_arn=execution_role.arn,
        task_role_arn=task_role.arn,
        # The only writable path: a task-local volume mounted at /tmp.
        volumes=[aws.ecs.TaskDefinitionVolumeArgs(name="tmp")],
        container_definitions=pulumi.Output.json_dumps([container]),
        opts=child,
    )
    return Task(log_group, definition, task_role, policies)


def _execution_statements(
    log_group: aws.cloudwatch.LogGroup, args: TaskArgs
) -> list[iam.Statement]:
    statements = [
        iam.allow(
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [pulumi.Output.concat(log_group.arn, ":*")],
        )
    ]
    if args.repository_arn is not None:
        # GetAuthorizationToken has no resource-level permissions: "*" is the only form.
        statements.append(iam.allow(["ecr:GetAuthorizationToken"], ["*"]))
        statements.append(
            iam.allow(
                [
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                [args.repository_arn],
            )
        )
    readable = stored_secrets(args)
    readable += [s for s in args.readable_secrets if all(s is not r for r in readable)]
    if readable:
        statements.append(
            iam.allow(["secretsmanager:GetSecretValue"], [s.secret.arn for s in readable])
        )
    return statements


class OneOffTask(pulumi.ComponentResource):
    """A task definition no service runs: an operator starts it (`aws ecs run-task`) and it
    exits. The same container wiring as a service's (`task_definition`)."""

    task: Task

    def __init__(self, name: str, args: TaskArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("coldreach:service:OneOffTask", name, None, opts)
        self.task = task_definition(self, name, args)
        self.register_outputs(
            {
                "task_definition_arn": self.task.task_definition.arn,
                "log_group": self.task.log_group.name,
            }
        )

    @property
    def arn(self) -> pulumi.Output[str]:
        return self.task.task_definition.arn


class FargateService(pulumi.ComponentResource):
    """A Fargate service that runs as non-root on a read-only root filesystem.

    Credentials reach the container through ECS `secrets` (the execution role
    may read exactly those secrets), never through `environment`. The task
    role is separate and carries only what the caller grants.
    """

    security_group: SecurityGroup
    task_definition: aws.ecs.TaskDefinition
    service: aws.ecs.Service
    log_group: aws.cloudwatch.LogGroup

    def __init__(
        self, name: str, args: FargateServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("coldreach:service:FargateService", name, None, opts)
        self.security_group = SecurityGroup(
            f"{name}-sg", f"{name}: Fargate tasks", args.vpc_id, self, args.security_group_tags
        )
        port = args.load_balancer.container_port if args.load_balancer else None
        task = task_definition(self, name, args, port)
        self.task_definition = task.task_definition
        self.log_group = task.log_group
        policies = task.policies

        lb = args.load_balancer
        self.service = aws.ecs.Service(
            f"{name}-service",
            cluster=args.cluster_arn,
            task_definition=self.task_definition.arn,
            desired_count=args.desired_count,
            launch_type="FARGATE",
            platform_version="LATEST",
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=list(args.subnet_ids),
                security_groups=[self.security_group.id],
                assign_public_ip=args.assign_public_ip,
            ),
            load_balancers=(
                [
                    aws.ecs.ServiceLoadBalancerArgs(
                        target_group_arn=lb.target_group_arn,
                        container_name=CONTAINER,
                        container_port=lb.container_port,
                    )
                ]
                if lb
                else None
            ),
            health_check_grace_period_seconds=60 if lb else None,
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(
                enable=True, rollback=True
            ),
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            enable_execute_command=False,
            propagate_tags="SERVICE",
            # `pulumi up` succeeds only once the new tasks are healthy (the circuit
            # breaker rolls a failed deployment back and the update fails).
            wait_for_steady_state=True,
            # Once autoscaling owns the count, a deploy must not reset it.
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[
                    *args.depends_on,
                    *policies,
                    *(s.version for s in stored_secrets(args)),
                ],
                ignore_changes=["desiredCount"] if args.scaling else None,
            ),
        )
        if args.scaling is not None:
            self._autoscaling(name, args.cluster_name, args.scaling)

        self.register_outputs(
            {
                "service_name": self.service.name,
                "task_definition_arn": self.task_definition.arn,
                "security_group_id": self.security_group.id,
                "log_group": self.log_group.name,
            }
        )

    def _autoscaling(self, name: str, cluster: pulumi.Input[str], scaling: Scaling) -> None:
        child = pulumi.ResourceOptions(parent=self)
        target = aws.appautoscaling.Target(
            f"{name}-scaling",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=pulumi.Output.format("service/{0}/{1}", cluster, self.service.name),
            min_capacity=scaling.min_count,
            max_capacity=scaling.max_count,
            opts=child,
        )

        def track(suffix: str, config: TrackingConfig) -> None:
            # Out fast when work piles up, in slowly so a lull does not flap.
            config["scale_in_cooldown"] = 300
            config["scale_out_cooldown"] = 60
            aws.appautoscaling.Policy(
                f"{name}-{suffix}",
                policy_type="TargetTrackingScaling",
                service_namespace=target.service_namespace,
                scalable_dimension=target.scalable_dimension,
                resource_id=target.resource_id,
                target_tracking_scaling_policy_configuration=config,
                opts=child,
            )

        if scaling.cpu_target is not None:
            track(
                "cpu",
                {
                    "target_value": scaling.cpu_target,
                    "predefined_metric_specification": {
                        "predefined_metric_type": "ECSServiceAverageCPUUtilization"
                    },
                },
            )
        if scaling.backlog is not None:
            track(
                "backlog",
                {
                    "target_value": scaling.backlog.target_per_task,
                    "customized_metric_specification": self._backlog_per_task(
                        cluster, scaling.backlog
                    ),
                },
            )

    def _backlog_per_task(self, cluster: pulumi.Input[str], backlog: BacklogMetric) -> CustomMetric:
        """Metric math: waiting work divided by running tasks (Container Insights)."""
        return {
            "metrics": [
                {
                    "id": "backlog",
                    "metric_stat": {
                        "metric": {
                            "namespace": backlog.namespace,
                            "metric_name": backlog.metric_name,
                        },
                        "stat": "Average",
                    },
                    "return_data": False,
                },
                {
                    "id": "tasks",
                    "metric_stat": {
                        "metric": {
                            "namespace": "ECS/ContainerInsights",
                            "metric_name": "RunningTaskCount",
                            "dimensions": [
                                {"name": "ClusterName", "value": cluster},
                                {"name": "ServiceName", "value": self.service.name},
                            ],
                        },
                        "stat": "Average",
                    },
                    "return_data": False,
                },
                {
                    "id": "per_task",
                    # The documented backlog-per-task form; min capacity >= 1 keeps
                    # the divisor above zero.
                    "expression": "backlog / tasks",
                    "label": "Backlog per running task",
                    "return_data": True,
                },
            ]
        }
