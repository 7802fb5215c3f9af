"""The compute layer: the app image, the ECS cluster and one Fargate service per running
service of the topology, wired to exactly what each service reaches.

Everything a service gets is derived from its declaration: reaching the
database gives it the database's address, credentials and pool settings and
a security-group rule on 5432; reaching the cache gives it the Redis URL and a
rule on 6379; reaching SES gives it the send permission. A service that does
not name a tier gets none of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components import firewall, iam
from components.database import PORT as DB_PORT
from components.network import Network
from components.registry import AppImage, AppImageArgs, Registry
from components.secrets import GeneratedSecret, SecretRef
from components.service import (
    BacklogMetric,
    FargateService,
    FargateServiceArgs,
    LoadBalancerTarget,
    Scaling,
)
from infra.config import Settings
from infra.layers.data import Data
from infra.layers.edge import ECS_TARGETS, Edge
from infra.topology import AWS_APIS, EDGE, SES, Flow, Kind, Platform, Service, Topology

APP_DIR = Path(__file__).resolve().parents[2] / "app"
APP_PORT = 8000
"""The port the app's image listens on (its PORT), whatever the service."""
WORKER_COMMAND = ("python", "-m", "openapi_server.worker")
WORKER_HEALTH = ("python", "-m", "openapi_server.healthcheck", "--worker")
# The worker publishes the number of queued emails here; its autoscaling reads it.
BACKLOG_METRIC = "QueuedEmails"
# ...and the number of emails whose send outcome is unknown; an alarm watches it.
STUCK_METRIC = "StuckSendingEmails"
HTTPS_OUT = "HTTPS to AWS APIs (ECR, Secrets Manager, SES, logs)"


@dataclass
class Compute:
    registry: Registry
    image: AppImage
    cluster: aws.ecs.Cluster
    services: dict[str, FargateService]
    unsubscribe_key: GeneratedSecret
    """Shared with the cluster's workloads, which sign and check the same links."""


def backlog_namespace(s: Settings) -> str:
    return f"ColdReach/{s.stack}"


@dataclass
class _App:
    """What every app service shares, and what each derives from its reaches."""

    s: Settings
    topology: Topology
    net: Network
    data: Data
    edge: Edge
    registry: Registry
    image: AppImage
    cluster: aws.ecs.Cluster
    unsubscribe_key: GeneratedSecret

    def environment(self, service: Service) -> dict[str, pulumi.Input[str]]:
        """Plain settings. No credentials here: see `secrets`."""
        s, f, mail = self.s, self.topology.features, self.edge.mail
        env: dict[str, pulumi.Input[str]] = {
            "PORT": str(APP_PORT),
            "AWS_REGION": s.region,
            "QUEUE_BACKEND": f.queue,
            "MAILER": "ses" if mail else "console",
            "MAIL_FROM": mail.mail_from if mail else f"no-reply@{s.stack}.coldreach.invalid",
            "SES_CONFIGURATION_SET": mail.configuration_set.configuration_set_name if mail else "",
            "PUBLIC_BASE_URL": self.edge.public_url,
            # The webhook accepts signed notifications from our feedback topic only.
            "SNS_TOPIC_ARNS": mail.feedback_topic.arn if mail else "",
            # Several tasks may start at once: the app serialises migrations
            # with a database lock.
            "AUTO_MIGRATE": "1",
        }
        endpoints = service.database_endpoints(f)
        database = self.data.database
        if "primary" in endpoints:
            settings = s.service(service.name)
            env |= {
                "DB_HOST": database.address,
                "DB_PORT": str(DB_PORT),
                "DB_NAME": database.name,
                "DB_POOL_SIZE": str(settings.db_pool_size),
                "DB_MAX_OVERFLOW": str(settings.db_max_overflow),
            }
        if "replica" in endpoints and database.replica is not None:
            env["DB_READ_HOST"] = database.replica.address
        if service.kind is Kind.HTTP_API:
            env |= s.api.environment()
        if service.kind is Kind.WORKER:
            env |= {
                "WORKER_POOL": "threads",
                "WORKER_CONCURRENCY": str(s.service(service.name).concurrency),
                "BACKLOG_METRIC_NAMESPACE": backlog_namespace(s),
            }
        return env

    def secrets(self, service: Service) -> dict[str, SecretRef]:
        """Credentials, injected by ECS from Secrets Manager: exactly what it reaches."""
        f = self.topology.features
        found: dict[str, SecretRef] = {}
        if service.database_endpoints(f):
            found |= {
                "DB_USER": self.data.database.credential("username"),
                "DB_PASSWORD": self.data.database.credential("password"),
            }
        found["UNSUBSCRIBE_SECRET"] = self.unsubscribe_key.ref()
        if service.may_reach(f, "cache") and self.data.cache is not None:
            found["REDIS_URL"] = self.data.cache.url.ref()
        return found

    def permissions(self, service: Service) -> list[iam.Statement]:
        """What the app may do in AWS (the task role)."""
        found: list[iam.Statement] = []
        if service.may_reach(self.topology.features, SES) and self.edge.mail:
            found.append(self.edge.mail.send_permission())
        if service.kind is Kind.WORKER:
            # PutMetricData has no resource-level permissions; the condition
            # keeps the worker to its own namespace.
            found.append(
                iam.allow(
                    ["cloudwatch:PutMetricData"],
                    ["*"],
                    condition={"StringEquals": {"cloudwatch:namespace": backlog_namespace(self.s)}},
                )
            )
        return found

    def scaling(self, service: Service) -> Scaling | None:
        settings = self.s.service(service.name)
        if not self.topology.features.autoscaling:
            return None
        if service.kind is Kind.WORKER:
            assert settings.backlog_target is not None
            return Scaling(
                settings.count,
                settings.max_count,
                backlog=BacklogMetric(
                    backlog_namespace(self.s), BACKLOG_METRIC, settings.backlog_target
                ),
            )
        return Scaling(settings.count, settings.max_count, cpu_target=settings.cpu_target)

    def args(self, service: Service) -> FargateServiceArgs:
        s, f, net = self.s, self.topology.features, self.net
        settings = s.service(service.name)
        # Tasks in private subnets cannot pull their image before these routes exist.
        depends_on: list[pulumi.Resource] = list(net.nat_routes) if f.private_compute else []
        load_balancer = None
        if service.load_balanced:
            load_balancer = LoadBalancerTarget(
                self.edge.load_balancer.target_groups[ECS_TARGETS].arn, APP_PORT
            )
            depends_on = [*self.edge.load_balancer.listeners, *depends_on]
        worker = service.kind is Kind.WORKER
        return FargateServiceArgs(
            cluster_arn=self.cluster.arn,
            cluster_name=self.cluster.name,
            image=self.image.ref,
            vpc_id=net.vpc.id,
            subnet_ids=net.private_subnet_ids if f.private_compute else net.public_subnet_ids,
            assign_public_ip=not f.private_compute,
            cpu=settings.cpu,
            memory=settings.memory,
            desired_count=settings.count,
            log_retention_days=s.log_retention_days,
            environment=self.environment(service),
            secrets=self.secrets(service),
            repository_arn=None if s.image else self.registry.repository.arn,
            task_permissions=self.permissions(service),
            command=WORKER_COMMAND if worker else None,
            # The worker writes a heartbeat; nothing else probes it.
            health_command=WORKER_HEALTH if worker else None,
            load_balancer=load_balancer,
            scaling=self.scaling(service),
            depends_on=depends_on,
            security_group_tags=self.topology.tags(service.name),
        )


def _flows(topology: Topology) -> list[Flow]:
    """The flows between the ECS services, the edge and the tiers; the cluster's workloads
    wire their own flows with the same `firewall.wire` (components/workloads)."""
    cluster = topology.flows_on(Platform.EKS)
    return [f for f in topology.flows() if f not in cluster]


def build(s: Settings, topology: Topology, net: Network, data: Data, edge: Edge) -> Compute:
    registry = Registry("registry", protect=s.protect)
    image = AppImage("app-image", AppImageArgs(registry=registry, context=APP_DIR, image=s.image))
    unsubscribe_key = GeneratedSecret(
        "unsubscribe-key", "Signs the app's one-click unsubscribe links", protect=s.protect
    )
    cluster = aws.ecs.Cluster(
        "cluster",
        settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
    )
    app = _App(s, topology, net, data, edge, registry, image, cluster, unsubscribe_key)
    services = {
        svc.name: FargateService(svc.name, app.args(svc)) for svc in topology.on(Platform.ECS)
    }

    groups = {name: service.security_group for name, service in services.items()}
    groups[EDGE] = edge.load_balancer.security_group
    flows = _flows(topology)
    for tier in topology.tiers:
        if any(flow.target == tier.name for flow in flows):
            groups[tier.name] = data.security_group(tier.name)
    firewall.wire(flows, groups, AWS_APIS, HTTPS_OUT)

    if edge.mail and s.mail.feedback_webhook:
        # SNS confirms through the API: wait for it where it runs on ECS (after the cutover
        # it runs on the cluster only, which serves the same path).
        apis: list[pulumi.Resource] = [
            services[svc.name].service for svc in topology.on(Platform.ECS) if svc.load_balanced
        ]
        edge.mail.subscribe_webhook(
            pulumi.Output.concat(edge.public_url, "/webhooks/ses"), depends_on=apis
        )
    elif edge.mail:
        pulumi.log.warn(
            "cold-reach:feedbackWebhook is off: bounces and complaints stay on the SNS topic. "
            "Once the public hostname resolves to the ALB, turn it on and run `pulumi up` "
            "(README.md, Deploying for real)."
        )
    return Compute(registry, image, cluster, services, unsubscribe_key)
