"""The VPC: two AZs, public subnets for the load balancer and NAT, private subnets for the rest."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from components import iam

NatMode = Literal["none", "single", "per_az"]

# Zones (by id: names map to zones differently in every account) that lack newer
# instance types; a subnet there cannot host the cache, database or node classes
# later phases need, and AWS steers new capacity away from it.
CONSTRAINED_ZONE_IDS = ["use1-az3"]


@dataclass
class NetworkArgs:
    cidr_block: str
    """The VPC range; each subnet takes 1/16 of it, so a /16 gives /20 subnets."""
    flow_log_retention_days: int
    nat: NatMode = "none"
    """`none`: private subnets have no route out (phase 1); `single`: one NAT for both
    AZs; `per_az`: a NAT in each AZ, so losing one AZ does not cut the other off."""
    az_count: int = 2


class Network(pulumi.ComponentResource):
    """VPC with public and private subnets in `az_count` AZs, the default SG closed, flow logs on.

    Public subnets never hand out public IPs on their own: anything that needs
    one (the ALB, a NAT, a phase-1 task) asks for it explicitly.
    """

    vpc: aws.ec2.Vpc
    public_subnets: list[aws.ec2.Subnet]
    private_subnets: list[aws.ec2.Subnet]
    private_route_tables: list[aws.ec2.RouteTable]
    nat_gateways: list[aws.ec2.NatGateway]
    nat_routes: list[aws.ec2.Route]
    """The private subnets' way out; tasks there cannot pull images before these exist."""
    internet_access: list[pulumi.Resource]
    """What makes the public subnets public: the gateway, its route, the associations."""

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("coldreach:network:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        zones = aws.get_availability_zones(
            state="available",
            exclude_zone_ids=CONSTRAINED_ZONE_IDS,
            opts=pulumi.InvokeOptions(parent=self),
        )
        if len(zones.names) < args.az_count:
            raise pulumi.RunError(
                f"{name}: the region offers {len(zones.names)} AZs, {args.az_count} are needed"
            )
        azs = zones.names[: args.az_count]
        # 16 equal blocks: public subnets take the first az_count, private the next
        # az_count; the rest stays free for later phases (EKS, MSK).
        blocks = list(ipaddress.ip_network(args.cidr_block).subnets(prefixlen_diff=4))

        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr_block,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={"Name": f"{name}-vpc"},
            opts=child,
        )
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=self.vpc.id,
            # No ingress and no egress: nothing can use the default SG by accident.
            tags={"Name": f"{name}-default-closed"},
            opts=child,
        )
        igw = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=self.vpc.id, tags={"Name": f"{name}-igw"}, opts=child
        )

        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=self.vpc.id, tags={"Name": f"{name}-public"}, opts=child
        )
        public_default = aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_rt.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=igw.id,
            opts=child,
        )

        self.public_subnets = []
        self.private_subnets = []
        self.private_route_tables = []
        self.internet_access = [igw, public_default]
        for i, az in enumerate(azs):
            public = aws.ec2.Subnet(
                f"{name}-public-{i}",
                vpc_id=self.vpc.id,
                cidr_block=str(blocks[i]),
                availability_zone=az,
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-public-{az}", "tier": "public"},
                opts=child,
            )
            self.internet_access.append(
                aws.ec2.RouteTableAssociation(
                    f"{name}-public-{i}",
                    subnet_id=public.id,
                    route_table_id=public_rt.id,
                    opts=child,
                )
            )
            private = aws.ec2.Subnet(
                f"{name}-private-{i}",
                vpc_id=self.vpc.id,
                cidr_block=str(blocks[args.az_count + i]),
                availability_zone=az,
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-private-{az}", "tier": "private"},
                opts=child,
            )
            # One private route table per AZ from the start, so switching NAT modes
            # only adds or repoints routes and never replaces a table.
            private_rt = aws.ec2.RouteTable(
                f"{name}-private-rt-{i}",
                vpc_id=self.vpc.id,
                tags={"Name": f"{name}-private-{az}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{i}",
                subnet_id=private.id,
                route_table_id=private_rt.id,
                opts=child,
            )
            self.public_subnets.append(public)
            self.private_subnets.append(private)
            self.private_route_tables.append(private_rt)

        self.nat_gateways, self.nat_routes = self._nat(name, args.nat, igw)
        self._flow_logs(name, args.flow_log_retention_days)

        self.register_outputs(
            {
                "vpc_id": self.vpc.id,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
                "availability_zones": azs,
                "availability_zone_ids": zones.zone_ids[: args.az_count],
            }
        )

    @property
    def public_subnet_ids(self) -> list[pulumi.Output[str]]:
        return [s.id for s in self.public_subnets]

    @property
    def private_subnet_ids(self) -> list[pulumi.Output[str]]:
        return [s.id for s in self.private_subnets]

    def _nat(
        self, name: str, mode: NatMode, igw: aws.ec2.InternetGateway
    ) -> tuple[list[aws.ec2.NatGateway], list[aws.ec2.Route]]:
        if mode == "none":
            return [], []
        count = 1 if mode == "single" else len(self.public_subnets)
        gateways: list[aws.ec2.NatGateway] = []
        for i in range(count):
            eip = aws.ec2.Eip(
                f"{name}-nat-eip-{i}",
                domain="vpc",
                tags={"Name": f"{name}-nat-{i}"},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
            )
            gateways.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{i}",
                    allocation_id=eip.id,
                    subnet_id=self.public_subnets[i].id,
                    tags={"Name": f"{name}-nat-{i}"},
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        routes = [
            aws.ec2.Route(
                f"{name}-private-default-{i}",
                route_table_id=table.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=gateways[i % count].id,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for i, table in enumerate(self.private_route_tables)
        ]
        return gateways, routes

    def _flow_logs(self, name: str, retention_days: int) -> None:
        child = pulumi.ResourceOptions(parent=self)
        group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs", retention_in_days=retention_days, opts=child
        )
        role = aws.iam.Role(
            f"{name}-flow-logs",
            assume_role_policy=iam.assume_role_policy("vpc-flow-logs.amazonaws.com"),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=iam.policy(
                iam.allow(
                    [
                        "logs:CreateLogStream",
                        "logs:PutLogEvents",
                        "logs:DescribeLogGroups",
                        "logs:DescribeLogStreams",
                    ],
                    [group.arn, pulumi.Output.concat(group.arn, ":*")],
                )
            ),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=group.arn,
            iam_role_arn=role.arn,
            tags={"Name": f"{name}-flow-log"},
            opts=child,
        )
