"""EC2: the VPC, subnets, routing, security groups and their rules, NAT."""

from __future__ import annotations

import zlib
from typing import Any

from coldreach.runtime.emulator.backend import MotoBackend, handles, updates
from coldreach.runtime.emulator.call import (
    Call,
    Outputs,
    UnsupportedResource,
    aws_tags,
    drop_none,
    tag_spec,
)
from coldreach.runtime.model import Resource
from policies import tokens as t


def _default_groups(ec2: Any, vpc_id: str) -> list[dict[str, Any]]:
    """The VPC's default security group (a one-item list, or empty if moto has none)."""
    return ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "group-name", "Values": ["default"]},
        ]
    )["SecurityGroups"]


def _revoke_all(ec2: Any, group: dict[str, Any], *, ingress: bool) -> None:
    """Removes every egress rule of `group`, and every ingress rule too if `ingress`."""
    if ingress and group.get("IpPermissions"):
        ec2.revoke_security_group_ingress(
            GroupId=group["GroupId"], IpPermissions=group["IpPermissions"]
        )
    if group.get("IpPermissionsEgress"):
        ec2.revoke_security_group_egress(
            GroupId=group["GroupId"], IpPermissions=group["IpPermissionsEgress"]
        )


@handles(t.VPC)
def vpc(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    ec2 = b.client("ec2")
    vpc = ec2.create_vpc(
        CidrBlock=c.get("cidrBlock"), TagSpecifications=tag_spec("vpc", c.get("tags"))
    )["Vpc"]
    vpc_id = vpc["VpcId"]
    for attribute, key in (
        ("EnableDnsSupport", "enableDnsSupport"),
        ("EnableDnsHostnames", "enableDnsHostnames"),
    ):
        if c.get(key) is not None:
            ec2.modify_vpc_attribute(VpcId=vpc_id, **{attribute: {"Value": bool(c.get(key))}})
    default_sg = _default_groups(ec2, vpc_id)
    main_rt = ec2.describe_route_tables(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "association.main", "Values": ["true"]},
        ]
    )["RouteTables"]
    return vpc_id, {
        "arn": b.arn("ec2", f"vpc/{vpc_id}"),
        "ownerId": vpc.get("OwnerId", b.identity.account),
        "dhcpOptionsId": vpc.get("DhcpOptionsId"),
        "defaultSecurityGroupId": default_sg[0]["GroupId"] if default_sg else None,
        "mainRouteTableId": main_rt[0]["RouteTableId"] if main_rt else None,
        "instanceTenancy": vpc.get("InstanceTenancy", "default"),
    }


@handles(t.SUBNET)
def subnet(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    ec2 = b.client("ec2")
    subnet = ec2.create_subnet(
        VpcId=c.get("vpcId"),
        CidrBlock=c.get("cidrBlock"),
        AvailabilityZone=c.get("availabilityZone"),
        TagSpecifications=tag_spec("subnet", c.get("tags")),
    )["Subnet"]
    subnet_id = subnet["SubnetId"]
    ec2.modify_subnet_attribute(
        SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": bool(c.get("mapPublicIpOnLaunch"))}
    )
    return subnet_id, {
        "arn": subnet.get("SubnetArn") or b.arn("ec2", f"subnet/{subnet_id}"),
        "availabilityZoneId": subnet.get("AvailabilityZoneId"),
        "ownerId": subnet.get("OwnerId", b.identity.account),
    }


@handles(t.INTERNET_GATEWAY)
def internet_gateway(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    ec2 = b.client("ec2")
    igw = ec2.create_internet_gateway(
        TagSpecifications=tag_spec("internet-gateway", c.get("tags"))
    )["InternetGateway"]
    igw_id = igw["InternetGatewayId"]
    if c.get("vpcId"):
        ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=c.get("vpcId"))
    return igw_id, {"arn": b.arn("ec2", f"internet-gateway/{igw_id}")}


@handles(t.ROUTE_TABLE)
def route_table(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    rt = b.client("ec2").create_route_table(
        VpcId=c.get("vpcId"), TagSpecifications=tag_spec("route-table", c.get("tags"))
    )["RouteTable"]
    rt_id = rt["RouteTableId"]
    return rt_id, {"arn": b.arn("ec2", f"route-table/{rt_id}")}


@handles(t.ROUTE)
def route(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    table, destination = c.get("routeTableId"), c.get("destinationCidrBlock")
    b.client("ec2").create_route(
        **drop_none(
            {
                "RouteTableId": table,
                "DestinationCidrBlock": destination,
                "GatewayId": c.get("gatewayId"),
                "NatGatewayId": c.get("natGatewayId"),
            }
        )
    )
    # The provider's id for a route: the table plus a hash of the destination.
    return f"r-{table}{zlib.crc32(destination.encode())}", {"state": "active"}


@handles(t.ROUTE_TABLE_ASSOCIATION)
def route_association(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    assoc = b.client("ec2").associate_route_table(
        RouteTableId=c.get("routeTableId"), SubnetId=c.get("subnetId")
    )
    return assoc["AssociationId"], {}


@handles(t.DEFAULT_SG)
def default_security_group(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    """Adopts the VPC's default group and removes all its rules (the program lists none:
    the default group is closed; inline rules are not supported here)."""
    if c.get("ingress") or c.get("egress"):
        raise UnsupportedResource(f"{c.type} with inline rules", c.name)
    ec2 = b.client("ec2")
    group = _default_groups(ec2, c.get("vpcId"))[0]
    group_id = group["GroupId"]
    _revoke_all(ec2, group, ingress=True)
    if c.get("tags"):
        ec2.create_tags(Resources=[group_id], Tags=aws_tags(c.get("tags")))
    return group_id, {
        "arn": b.arn("ec2", f"security-group/{group_id}"),
        "name": "default",
        "ownerId": b.identity.account,
        "ingress": [],
        "egress": [],
    }


@handles(t.SECURITY_GROUP)
def security_group(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    if c.get("ingress") or c.get("egress"):
        # The program keeps rules as separate resources (components/firewall.py).
        raise UnsupportedResource(f"{c.type} with inline rules", c.name)
    ec2 = b.client("ec2")
    name = b.name(c)
    group_id = ec2.create_security_group(
        GroupName=name,
        Description=c.get("description", "Managed by Pulumi"),
        VpcId=c.get("vpcId"),
        TagSpecifications=tag_spec("security-group", c.get("tags")),
    )["GroupId"]
    # Like the provider: a new VPC group starts without AWS's allow-all egress rule.
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    _revoke_all(ec2, group, ingress=False)
    return group_id, {
        "arn": b.arn("ec2", f"security-group/{group_id}"),
        "ownerId": b.identity.account,
        "ingress": [],
        "egress": [],
    }


@updates(t.SECURITY_GROUP)
def security_group_tags(b: MotoBackend, c: Call, old: Resource) -> Outputs:
    """Only tags change in place; name, description and VPC replace the group."""
    c.refuse_other_changes(old, {"tags"})
    ec2 = b.client("ec2")
    group_id = str(old.id)
    before, after = old.get("tags") or {}, c.get("tags") or {}
    gone = [{"Key": k} for k in before if k not in after]
    if gone:
        ec2.delete_tags(Resources=[group_id], Tags=gone)
    if after:
        ec2.create_tags(Resources=[group_id], Tags=aws_tags(after))
    return {}


def _permission(c: Call) -> dict[str, Any]:
    protocol = str(c.get("ipProtocol"))
    permission: dict[str, Any] = {"IpProtocol": protocol}
    if protocol != "-1":
        permission["FromPort"] = c.get("fromPort")
        permission["ToPort"] = c.get("toPort")
    description = c.get("description")
    extra = {"Description": description} if description else {}
    if c.get("cidrIpv4"):
        permission["IpRanges"] = [{"CidrIp": c.get("cidrIpv4"), **extra}]
    if c.get("cidrIpv6"):
        permission["Ipv6Ranges"] = [{"CidrIpv6": c.get("cidrIpv6"), **extra}]
    if c.get("referencedSecurityGroupId"):
        permission["UserIdGroupPairs"] = [{"GroupId": c.get("referencedSecurityGroupId"), **extra}]
    if c.get("prefixListId"):
        permission["PrefixListIds"] = [{"PrefixListId": c.get("prefixListId"), **extra}]
    return permission


def _rule(b: MotoBackend, c: Call, egress: bool) -> tuple[str, Outputs]:
    ec2 = b.client("ec2")
    authorize = (
        ec2.authorize_security_group_egress if egress else ec2.authorize_security_group_ingress
    )
    result = authorize(GroupId=c.get("securityGroupId"), IpPermissions=[_permission(c)])
    rules = result.get("SecurityGroupRules") or []
    if rules:
        rule_id = rules[0]["SecurityGroupRuleId"]
    else:  # older moto: no rule ids; keep one of our own, stable per URN
        rule_id = "sgr-" + format(zlib.crc32(c.urn.encode()), "017x")
    return rule_id, {
        "securityGroupRuleId": rule_id,
        "arn": b.arn("ec2", f"security-group-rule/{rule_id}"),
    }


@handles(t.INGRESS)
def ingress(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    return _rule(b, c, egress=False)


@handles(t.EGRESS)
def egress(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    return _rule(b, c, egress=True)


@handles(t.FLOW_LOG)
def flow_log(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    result = b.client("ec2").create_flow_logs(
        **drop_none(
            {
                "ResourceIds": [c.get("vpcId")],
                "ResourceType": "VPC",
                "TrafficType": c.get("trafficType", "ALL"),
                "LogDestinationType": c.get("logDestinationType", "cloud-watch-logs"),
                "LogDestination": c.get("logDestination"),
                "DeliverLogsPermissionArn": c.get("iamRoleArn"),
                "TagSpecifications": tag_spec("vpc-flow-log", c.get("tags")) or None,
            }
        )
    )
    if result.get("Unsuccessful"):
        raise RuntimeError(f"flow log {c.name}: {result['Unsuccessful']}")
    flow_id = result["FlowLogIds"][0]
    return flow_id, {"arn": b.arn("ec2", f"vpc-flow-log/{flow_id}")}


@handles(t.EIP)
def eip(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    eip = b.client("ec2").allocate_address(
        **drop_none(
            {
                "Domain": c.get("domain", "vpc"),
                "TagSpecifications": tag_spec("elastic-ip", c.get("tags")) or None,
            }
        )
    )
    allocation = eip["AllocationId"]
    return allocation, {
        "allocationId": allocation,
        "publicIp": eip["PublicIp"],
        "domain": eip.get("Domain", "vpc"),
        "arn": b.arn("ec2", f"elastic-ip/{allocation}"),
    }


@handles(t.NAT_GATEWAY)
def nat_gateway(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    nat = b.client("ec2").create_nat_gateway(
        SubnetId=c.get("subnetId"),
        AllocationId=c.get("allocationId"),
        TagSpecifications=tag_spec("natgateway", c.get("tags")),
    )["NatGateway"]
    addresses = nat.get("NatGatewayAddresses") or [{}]
    return nat["NatGatewayId"], {
        "publicIp": addresses[0].get("PublicIp"),
        "privateIp": addresses[0].get("PrivateIp"),
        "networkInterfaceId": addresses[0].get("NetworkInterfaceId"),
        "connectivityType": "public",
    }


@handles(t.VPC_ENDPOINT)
def vpc_endpoint(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    endpoint = b.client("ec2").create_vpc_endpoint(
        **drop_none(
            {
                "VpcId": c.get("vpcId"),
                "ServiceName": c.get("serviceName"),
                "VpcEndpointType": c.get("vpcEndpointType"),
                "SubnetIds": c.get("subnetIds"),
                "SecurityGroupIds": c.get("securityGroupIds"),
                "PrivateDnsEnabled": c.get("privateDnsEnabled"),
                "TagSpecifications": tag_spec("vpc-endpoint", c.get("tags")) or None,
            }
        )
    )["VpcEndpoint"]
    endpoint_id = endpoint["VpcEndpointId"]
    return endpoint_id, {
        "arn": b.arn("ec2", f"vpc-endpoint/{endpoint_id}"),
        "dnsEntries": [
            {"dnsName": e.get("DnsName"), "hostedZoneId": e.get("HostedZoneId")}
            for e in endpoint.get("DnsEntries", [])
        ],
        "networkInterfaceIds": endpoint.get("NetworkInterfaceIds", []),
        "state": endpoint.get("State", "available"),
    }
