"""The compute layer: the app image, the ECS cluster and one Fargate service per running
service of the topology, wired to exactly what each service reaches; and the database's
one-off tasks (`bootstrap`, `migrate`) that an operator runs.

Everything a service gets is derived from its declaration: reaching the
database gives it the database's address and pool settings, a way to sign in
(the master credentials, or from `cold-reach:dbIamAuth services` an IAM token as
the app role with `rds-db:connect` on each instance it reaches) and a
security-group rule on 5432; reaching the cache gives it the Redis URL and a
rule on 6379; reaching SES gives it the send permission. A service that does
not name a tier gets none of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components import firewall, iam
from components.database import PORT as DB_PORT
from components.database import Database
from components.network import Network
from components.registry import AppImage, AppImageArgs, Registry
from components.secrets import GeneratedSecret, SecretRef
from components.service import (
    BacklogMetric,
    FargateService,
    FargateServiceArgs,
    LoadBalancerTarget,
    OneOffTask,
    Scaling,
    TaskArgs,
)
from components.workloads.access import placements
from infra.config import Settings
from infra.layers.data import Data
from infra.layers.edge import ECS_TARGETS, Edge
from infra.topology import AWS_APIS, EDGE, ROTATION, SES, Kind, Platform, Service, Topology

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
# The database roles `bootstrap_db` creates (app/README.md, "Database roles"): the services
# sign in as the app role (DML only), the migrate task as the schema owner.
APP_DB_USER = "coldreach_app"
OWNER_DB_USER = "coldreach_owner"
BOOTSTRAP_COMMAND = ("python", "-m", "openapi_server.bootstrap_db")
MIGRATE_COMMAND = ("python", "-m", "openapi_server.migrate")


@dataclass
class Compute:
    registry: Registry
    image: AppImage
    cluster: aws.ecs.Cluster
    services: dict[str, FargateService]
    unsubscribe_key: GeneratedSecret
    """Shared with the cluster's workloads, which sign and check the same links."""
    db_tasks: dict[str, OneOffTask]
    """`bootstrap` and `migrate`, run by an operator (docs/database-access.md); in phase 3
    also `bootstrap-shard-<n>` and `bootstrap-directory`, one per database the pods use."""
    db_task_network: dict[str, pulumi.Input[object]] | None = None
    """Where those tasks run: the subnets and security group of the service they stand in for."""


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
            env |= self.database_address() | {
                "DB_POOL_SIZE": str(settings.db_pool_size),
                "DB_MAX_OVERFLOW": str(settings.db_max_overflow),
            }
            if s.database.services_on_iam:
                # A fresh IAM token per connection, as the DML-only role; that role
                # cannot create tables, so the migrate task runs the migrations.
                env |= {"DB_IAM_AUTH": "1", "DB_USER": APP_DB_USER, "AUTO_MIGRATE": "0"}
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

    def database_address(self) -> dict[str, pulumi.Input[str]]:
        database = self.data.database
        return {"DB_HOST": database.address, "DB_PORT": str(DB_PORT), "DB_NAME": database.name}

    def secrets(self, service: Service) -> dict[str, SecretRef]:
        """Credentials, injected by ECS from Secrets Manager: exactly what it reaches."""
        f = self.topology.features
        found: dict[str, SecretRef] = {}
        if service.database_endpoints(f) and not self.s.database.services_on_iam:
            found |= self.master_credentials()
        found["UNSUBSCRIBE_SECRET"] = self.unsubscribe_key.ref()
        if service.may_reach(f, "cache") and self.data.cache is not None:
            found["REDIS_URL"] = self.data.cache.url.ref()
        return found

    def master_credentials(self, database: Database | None = None) -> dict[str, SecretRef]:
        """The master user of `database`'s instance (the phase-2 one by default)."""
        database = database or self.data.database
        return {
            "DB_USER": database.credential("username"),
            "DB_PASSWORD": database.credential("password"),
        }

    def permissions(self, service: Service) -> list[iam.Statement]:
        """What the app may do in AWS (the task role)."""
        found: list[iam.Statement] = []
        endpoints = service.database_endpoints(self.topology.features)
        if endpoints and self.s.database.services_on_iam:
            # Exactly the app role, on each instance it reads or writes: the replica has
            # a resource id of its own.
            arns = [self.data.database.connect_arn(APP_DB_USER, e) for e in endpoints]
            found.append(iam.allow(["rds-db:connect"], arns))
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
            # Stage `services`: the previous revision signed in with the master password,
            # and ECS's rollback to it must still be able to read it.
            readable_secrets=(
                [self.data.database.credentials]
                if service.database_endpoints(f) and s.database.iam_auth == "services"
                else []
            ),
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

    def one_off(
        self,
        command: tuple[str, ...],
        environment: Mapping[str, pulumi.Input[str]],
        secrets: dict[str, SecretRef],
        permissions: list[iam.Statement],
    ) -> TaskArgs:
        """A task an operator runs to completion, in the app's image, beside the database."""
        return TaskArgs(
            image=self.image.ref,
            cpu=256,
            memory=512,
            log_retention_days=self.s.log_retention_days,
            command=command,
            environment={"AWS_REGION": self.s.region, **self.database_address(), **environment},
            secrets=secrets,
            repository_arn=None if self.s.image else self.registry.repository.arn,
            task_permissions=permissions,
        )

    def db_tasks(self) -> dict[str, OneOffTask]:
        """`bootstrap` creates the roles with the master credentials (the only task that ever
        sees them once the services use IAM); `migrate` runs the migrations as the owner."""
        database = self.data.database
        roles = {"DB_OWNER_USER": OWNER_DB_USER, "DB_APP_USER": APP_DB_USER}
        bootstrap = self.one_off(BOOTSTRAP_COMMAND, roles, self.master_credentials(), [])
        migrate = self.one_off(
            MIGRATE_COMMAND,
            {"DB_IAM_AUTH": "1", "DB_USER": OWNER_DB_USER},
            {},
            [iam.allow(["rds-db:connect"], [database.connect_arn(OWNER_DB_USER)])],
        )
        tasks = {
            "bootstrap": OneOffTask("bootstrap", bootstrap),
            "migrate": OneOffTask("migrate", migrate),
        }
        for name, (instance, database_name) in self.phase3_databases().items():
            # Roles are instance-wide, but CONNECT, the schema and the grants are per
            # database: each database the pods sign in to is bootstrapped on its own, with
            # the master credentials of its own instance only.
            where = {"DB_HOST": instance.address, "DB_NAME": database_name}
            args = self.one_off(
                BOOTSTRAP_COMMAND, {**where, **roles}, self.master_credentials(instance), []
            )
            tasks[name] = OneOffTask(name, args)
        return tasks

    def phase3_databases(self) -> dict[str, tuple[Database, pulumi.Input[str]]]:
        """The bootstrap task's name for each database the phase-3 pods use, with its
        instance and database name (`placements`). Empty before phase 3."""
        found = placements(self.data.shards, lambda instance: instance.name)
        return {f"bootstrap-{name}": where for name, where in found.items()}


def _wire(
    topology: Topology, groups: dict[str, firewall.SecurityGroup]
) -> dict[str, list[pulumi.Resource]]:
    """One pair of rules per declared flow between our groups, and HTTPS out to AWS's APIs.
    Returns the rules each node's flows opened, by the node they start from.

    The internet's way to the edge is the load balancer's own (its listeners).
    """
    opened: dict[str, list[pulumi.Resource]] = {}
    for flow in topology.flows():
        if flow.source not in groups:
            continue  # the cluster's services: the cluster layer wires their flows
        if flow.target == AWS_APIS:
            groups[flow.source].allow_https_out(HTTPS_OUT)
        elif flow.target in groups:
            rules = firewall.connect(
                groups[flow.source], groups[flow.target], flow.port, flow.label
            )
            opened.setdefault(flow.source, []).extend(rules)
    return opened


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
    groups |= data.groups(topology)
    opened = _wire(topology, groups)
    if data.rotation is not None:
        # The first rotation starts at once: only once the function can reach the
        # database and the endpoint.
        data.rotation.schedule(depends_on=opened[ROTATION])

    # They run in the ECS API's network and group; once the cluster has taken over and ECS
    # is retired there is none, and the task definitions go with the services.
    ecs_api = any(svc.load_balanced for svc in topology.on(Platform.ECS))
    db_tasks = app.db_tasks() if s.database.roles and ecs_api else {}
    if s.database.roles and not ecs_api:
        pulumi.log.warn(
            "cold-reach:retireEcs: the one-off bootstrap and migrate tasks (the shards' and "
            "the directory's bootstraps too) ran beside the ECS API and are retired with it; "
            "run further migrations from the cluster (docs/database-access.md)"
        )
    network = None
    if db_tasks:
        # They run where the API runs, in its security group: the one the database admits.
        (api,) = [svc for svc in topology.on(Platform.ECS) if svc.load_balanced]
        private = topology.features.private_compute
        network = {
            "subnets": net.private_subnet_ids if private else net.public_subnet_ids,
            "securityGroups": [services[api.name].security_group.id],
            "assignPublicIp": "DISABLED" if private else "ENABLED",
        }

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
    return Compute(registry, image, cluster, services, unsubscribe_key, db_tasks, network)
