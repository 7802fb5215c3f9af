"""Reading a security group's permissions as the EC2 API reports them."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from coldreach.graph import WORLD

DB_PORT = 5432
REDIS_PORT = 6379


def covers(permission: dict[str, Any], port: int) -> bool:
    if str(permission.get("IpProtocol")) == "-1":
        return True
    return int(permission.get("FromPort", 0)) <= port <= int(permission.get("ToPort", 65535))


def port_range(permission: dict[str, Any]) -> str:
    if str(permission.get("IpProtocol")) == "-1":
        return "all traffic"
    low, high = permission.get("FromPort"), permission.get("ToPort")
    return f"{permission.get('IpProtocol')} {low}" if low == high else f"{low}-{high}"


def sources(permission: dict[str, Any]) -> Iterable[tuple[str, str]]:
    """(kind, value) for every source of one permission: cidr, group or prefix list."""
    for r in permission.get("IpRanges") or []:
        yield "cidr", r["CidrIp"]
    for r in permission.get("Ipv6Ranges") or []:
        yield "cidr", r["CidrIpv6"]
    for r in permission.get("UserIdGroupPairs") or []:
        yield "group", r["GroupId"]
    for r in permission.get("PrefixListIds") or []:
        yield "prefix-list", r["PrefixListId"]


def is_world(cidr: str) -> bool:
    if cidr in WORLD:
        return True
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False
