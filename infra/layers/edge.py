"""The edge layer: the internet-facing load balancer (behind WAF where configured), and the
SES identity mail leaves from."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.load_balancer import LoadBalancer, LoadBalancerArgs, Target
from components.mail import Mail, MailArgs
from components.network import Network
from components.waf import WebFirewall, WebFirewallArgs
from infra.config import Settings
from infra.topology import EDGE, Platform, Topology

HEALTH_PATH = "/healthz"
ECS_TARGETS = "targets"
"""The phase-2 target group (ECS tasks by IP), kept under its URN."""
CLUSTER_TARGETS = "cluster-targets"
"""Phase 3's target group: the cluster's nodes, on the API Service's NodePort (ADR 0004)."""
API_NODE_PORT = 30080
"""The fixed NodePort of the cluster's API Service, in the default 30000-32767 range."""


@dataclass
class Edge:
    load_balancer: LoadBalancer
    mail: Mail | None
    firewall: WebFirewall | None
    public_url: pulumi.Output[str]
    """Where users and SNS reach the app: the configured hostname, else the ALB's name."""


def targets(s: Settings, topology: Topology) -> list[Target]:
    """Where the listeners send requests: the ECS API, the cluster's API, or both, weighted
    by `cold-reach:eksTrafficPercent` while both run."""
    ecs = [svc for svc in topology.on(Platform.ECS) if svc.load_balanced]
    eks = [svc for svc in topology.on(Platform.EKS) if svc.load_balanced]
    share = s.cluster.traffic_percent
    found: list[Target] = []
    for api in ecs:
        assert api.port is not None
        found.append(Target(ECS_TARGETS, api.port, "ip", weight=100 - share))
    if eks:
        found.append(Target(CLUSTER_TARGETS, API_NODE_PORT, "instance", weight=share))
    return found


def build(s: Settings, topology: Topology, net: Network) -> Edge:
    load_balancer = LoadBalancer(
        EDGE,
        LoadBalancerArgs(
            vpc_id=net.vpc.id,
            subnet_ids=net.public_subnet_ids,
            targets=targets(s, topology),
            health_check_path=HEALTH_PATH,
            certificate_arn=s.edge.certificate_arn,
            deletion_protection=s.edge.alb_deletion_protection,
            log_retention_days=s.log_retention_days,
            protect=s.protect,
            security_group_tags=topology.tags(EDGE),
            depends_on=net.internet_access,
        ),
    )
    firewall = None
    if s.edge.waf_enabled:
        firewall = WebFirewall(
            "waf",
            WebFirewallArgs(
                load_balancer_arn=load_balancer.alb.arn,
                rate_limit=s.edge.waf_rate_limit,
                log_retention_days=s.log_retention_days,
            ),
        )
    mail = None
    if s.mail.sender_domain:
        mail = Mail(
            "mail",
            MailArgs(
                domain=s.mail.sender_domain,
                mail_from=s.mail.mail_from or f"outreach@{s.mail.sender_domain}",
                configuration_set_name=f"cold-reach-{s.stack}",
            ),
        )
    else:
        pulumi.log.warn(
            "cold-reach:senderDomain is not set: no SES identity is created and the app "
            "logs emails instead of sending them (MAILER=console)."
        )
    hostname = s.edge.public_hostname
    if hostname is None:
        public_url = load_balancer.url
    else:
        scheme = "https" if s.edge.https else "http"
        public_url = pulumi.Output.from_input(f"{scheme}://{hostname}")
    return Edge(load_balancer, mail, firewall, public_url)
