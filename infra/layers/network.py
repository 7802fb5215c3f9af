"""The network layer: the VPC, its subnets in two AZs and, when the phase says so, NAT."""

from __future__ import annotations

from components.network import NatMode, Network, NetworkArgs
from infra.config import Settings


def nat_mode(s: Settings) -> NatMode:
    if not s.features.nat:
        return "none"
    return "per_az" if s.network.nat_per_az else "single"


def build(s: Settings) -> Network:
    return Network(
        "net",
        NetworkArgs(
            cidr_block=s.network.vpc_cidr,
            flow_log_retention_days=s.log_retention_days,
            nat=nat_mode(s),
        ),
    )
