"""Phase 1 (~1,000 users): one API service behind an ALB, one private PostgreSQL.

Background work runs inside the API process (`QUEUE_BACKEND=inline`). To keep
the bill small there is no NAT gateway: tasks sit in the public subnets with a
public IP, admitting traffic only from the load balancer (docs/adr/0001).

Later phases call `foundation` and `web_service` with another `Shape` and keep
every name below, so a promotion updates these resources in place instead of
replacing them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components import firewall, iam
from components.database import PORT as DB_PORT
from components.database import Database, DatabaseArgs
from components.load_balancer import LoadBalancer, LoadBalancerArgs
from components.mail import Mail, MailArgs
from components.network import NatMode, Network, NetworkArgs
from components.registry import AppImage, AppImageArgs, Registry
from components.secrets import GeneratedSecret, SecretRef
from components.service import FargateService, FargateServiceArgs, LoadBalancerTarget, Scaling
from infra.config import Settings

APP_DIR = Path(__file__).resolve().parents[2] / "app"
APP_PORT = 8000
HEALTH_PATH = "/healthz"


@dataclass
class Shape:
    """What a later phase may change in the phase-1 resources (never their names)."""

    nat: NatMode = "none"
    private_services: bool = False
    """Tasks in the private subnets without public IPs (needs a NAT to pull images)."""
    queue_backend: str = "inline"
    read_replica: bool = False
    web_scaling: Scaling | None = None
    environment: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """Extra plain settings for every app container."""
    secrets: dict[str, SecretRef] = field(default_factory=dict)
    """Extra ECS secrets for every app container."""


@dataclass
class Foundation:
    """Everything of phase 1 but the services: network, data, registry, edge, mail."""

    settings: Settings
    network: Network
    registry: Registry
    image: AppImage
    database: Database
    unsubscribe_key: GeneratedSecret
    cluster: aws.ecs.Cluster
    edge: LoadBalancer
    mail: Mail | None

    @property
    def public_url(self) -> pulumi.Output[str]:
        """Where users and SNS reach the app: the configured hostname, else the ALB's name."""
        hostname = self.settings.public_hostname
        if hostname is None:
            return self.edge.url
        scheme = "https" if self.settings.https else "http"
        return pulumi.Output.from_input(f"{scheme}://{hostname}")

    def way_out(self, shape: Shape) -> list[aws.ec2.Route]:
        """Tasks in private subnets cannot pull their image before these routes exist."""
        return self.network.nat_routes if shape.private_services else []

    def app_subnet_ids(self, shape: Shape) -> list[pulumi.Output[str]]:
        net = self.network
        return net.private_subnet_ids if shape.private_services else net.public_subnet_ids

    def app_environment(self, shape: Shape) -> dict[str, pulumi.Input[str]]:
        """Plain settings for every app container. No credentials here: see `app_secrets`."""
        s, mail = self.settings, self.mail
        return {
            "PORT": str(APP_PORT),
            "AWS_REGION": s.region,
            "DB_HOST": self.database.address,
            "DB_PORT": str(DB_PORT),
            "DB_NAME": self.database.name,
            "QUEUE_BACKEND": shape.queue_backend,
            "MAILER": "ses" if mail else "console",
            "MAIL_FROM": mail.mail_from if mail else f"no-reply@{s.stack}.coldreach.invalid",
            "SES_CONFIGURATION_SET": mail.configuration_set.configuration_set_name if mail else "",
            "PUBLIC_BASE_URL": self.public_url,
            # The webhook accepts signed notifications from our feedback topic only.
            "SNS_TOPIC_ARNS": mail.feedback_topic.arn if mail else "",
            # Several tasks may start at once: the app serialises migrations
            # with a database lock.
            "AUTO_MIGRATE": "1",
            **shape.environment,
        }

    def app_secrets(self, shape: Shape) -> dict[str, SecretRef]:
        """Credentials, injected by ECS from Secrets Manager."""
        return {
            "DB_USER": self.database.credential("username"),
            "DB_PASSWORD": self.database.credential("password"),
            "UNSUBSCRIBE_SECRET": self.unsubscribe_key.ref(),
            **shape.secrets,
        }

    def app_permissions(self) -> list[iam.Statement]:
        return [self.mail.send_permission()] if self.mail else []

    def service_args(
        self,
        shape: Shape,
        *,
        cpu: int,
        memory: int,
        count: int,
        pool: tuple[int, int],
        environment: dict[str, pulumi.Input[str]] | None = None,
        permissions: Sequence[iam.Statement] = (),
    ) -> FargateServiceArgs:
        """What every app service shares (image, network, settings, credentials), sized.

        `pool` is the SQLAlchemy (pool size, max overflow) per task: the numbers the
        connection check in infra/config.py adds up.
        """
        s = self.settings
        return FargateServiceArgs(
            cluster_arn=self.cluster.arn,
            cluster_name=self.cluster.name,
            image=self.image.ref,
            vpc_id=self.network.vpc.id,
            subnet_ids=self.app_subnet_ids(shape),
            assign_public_ip=not shape.private_services,
            cpu=cpu,
            memory=memory,
            desired_count=count,
            log_retention_days=s.log_retention_days,
            environment={
                **self.app_environment(shape),
                "DB_POOL_SIZE": str(pool[0]),
                "DB_MAX_OVERFLOW": str(pool[1]),
                **(environment or {}),
            },
            secrets=self.app_secrets(shape),
            repository_arn=None if s.image else self.registry.repository.arn,
            task_permissions=[*self.app_permissions(), *permissions],
            depends_on=self.way_out(shape),
        )

    def app_service(self, name: str, args: FargateServiceArgs) -> FargateService:
        """An app service that may reach the database and AWS's APIs, nothing else yet."""
        service = FargateService(name, args)
        firewall.connect(
            service.security_group, self.database.security_group, DB_PORT, "PostgreSQL"
        )
        service.security_group.allow_https_out(
            "HTTPS to AWS APIs (ECR, Secrets Manager, SES, logs)"
        )
        return service


@dataclass
class Phase1:
    foundation: Foundation
    web: FargateService

    def outputs(self) -> dict[str, pulumi.Input[object]]:
        f = self.foundation
        return {
            "phase": f.settings.phase,
            "url": f.public_url,
            "alb_dns_name": f.edge.alb.dns_name,
            "vpc_id": f.network.vpc.id,
            "db_endpoint": f.database.instance.endpoint,
            "db_identifier": f.database.instance.identifier,
            "db_secret_arn": f.database.secret_arn,
            "cluster_name": f.cluster.name,
            "web_service_name": self.web.service.name,
            "image": f.image.ref,
            "repository_url": f.registry.repository.repository_url,
            "mail_dkim_records": f.mail.dkim_records if f.mail else [],
        }


def foundation(s: Settings, shape: Shape) -> Foundation:
    network = Network(
        "net",
        NetworkArgs(
            cidr_block=s.vpc_cidr, flow_log_retention_days=s.log_retention_days, nat=shape.nat
        ),
    )
    registry = Registry("registry", protect=s.protect)
    image = AppImage("app-image", AppImageArgs(registry=registry, context=APP_DIR, image=s.image))
    database = Database(
        "db",
        DatabaseArgs(
            vpc_id=network.vpc.id,
            subnet_ids=network.private_subnet_ids,
            instance_class=s.db_instance_class,
            engine_version=s.db_engine_version,
            allocated_storage_gb=s.db_allocated_storage_gb,
            max_allocated_storage_gb=s.db_max_allocated_storage_gb,
            backup_retention_days=s.db_backup_retention_days,
            multi_az=s.db_multi_az,
            protect=s.protect,
            replica_instance_class=s.replica_class if shape.read_replica else None,
        ),
    )
    unsubscribe_key = GeneratedSecret(
        "unsubscribe-key", "Signs the app's one-click unsubscribe links", protect=s.protect
    )
    cluster = aws.ecs.Cluster(
        "cluster",
        settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
    )
    edge = LoadBalancer(
        "edge",
        LoadBalancerArgs(
            vpc_id=network.vpc.id,
            subnet_ids=network.public_subnet_ids,
            target_port=APP_PORT,
            health_check_path=HEALTH_PATH,
            certificate_arn=s.certificate_arn,
            deletion_protection=s.alb_deletion_protection,
            log_retention_days=s.log_retention_days,
            protect=s.protect,
        ),
    )
    mail = None
    if s.sender_domain:
        mail = Mail(
            "mail",
            MailArgs(
                domain=s.sender_domain,
                mail_from=s.mail_from or f"outreach@{s.sender_domain}",
                configuration_set_name=f"cold-reach-{s.stack}",
            ),
        )
    else:
        pulumi.log.warn(
            "cold-reach:senderDomain is not set: no SES identity is created and the app "
            "logs emails instead of sending them (MAILER=console)."
        )
    return Foundation(s, network, registry, image, database, unsubscribe_key, cluster, edge, mail)


def web_service(f: Foundation, shape: Shape) -> FargateService:
    s = f.settings
    args = f.service_args(
        shape,
        cpu=s.web_cpu,
        memory=s.web_memory,
        count=s.web_desired_count,
        pool=(s.web_db_pool_size, s.web_db_max_overflow),
    )
    web = f.app_service(
        "web",
        replace(
            args,
            load_balancer=LoadBalancerTarget(f.edge.target_group.arn, APP_PORT),
            scaling=shape.web_scaling,
            depends_on=[*f.edge.listeners, *args.depends_on],
        ),
    )
    firewall.connect(f.edge.security_group, web.security_group, APP_PORT, "HTTP to the API")
    if f.mail:
        f.mail.subscribe_webhook(
            pulumi.Output.concat(f.public_url, "/webhooks/ses"), depends_on=[web.service]
        )
    return web


def build(s: Settings) -> Phase1:
    shape = Shape()
    f = foundation(s, shape)
    return Phase1(f, web_service(f, shape))
