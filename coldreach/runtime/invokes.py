"""Answers to the provider functions (invokes) the program calls, for one account and region."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

# The regional Elastic Load Balancing accounts that deliver ALB access logs
# (AWS docs: "Enable access logs for your Application Load Balancer").
ELB_ACCOUNTS = {
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-west-1": "027434742980",
    "us-west-2": "797873946194",
    "ca-central-1": "985666609251",
    "eu-west-1": "156460612806",
    "eu-west-2": "652711504416",
    "eu-west-3": "009996457667",
    "eu-central-1": "054676820928",
    "eu-north-1": "897822967062",
    "eu-south-1": "635631232127",
    "ap-south-1": "718504428378",
    "ap-northeast-1": "582318560864",
    "ap-northeast-2": "600734575887",
    "ap-northeast-3": "383597477331",
    "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266",
    "sa-east-1": "507241528517",
}


# AWS maps zone names to physical zones (zone ids) per account. In this account, as
# in some real ones, us-east-1b is use1-az3, the zone that lacks newer instance types.
ZONE_IDS = {"us-east-1": ["use1-az1", "use1-az3", "use1-az2", "use1-az4", "use1-az6", "use1-az5"]}


def availability_zones(region: str, args: dict[str, Any]) -> dict[str, Any]:
    """The region's zones, filtered by `excludeNames` and `excludeZoneIds` as AWS does."""
    geo, direction, number = region.split("-")
    prefix = f"{geo}{direction[0]}{number}"
    ids = ZONE_IDS.get(region) or [f"{prefix}-az{i + 1}" for i in range(6)]
    zones = [
        (f"{region}{letter}", zone_id)
        for letter, zone_id in zip("abcdef", ids, strict=True)
        if f"{region}{letter}" not in (args.get("excludeNames") or [])
        and zone_id not in (args.get("excludeZoneIds") or [])
    ]
    return {
        "id": region,
        "names": [name for name, _ in zones],
        "zoneIds": [zone_id for _, zone_id in zones],
        "groupNames": [region],
        "state": args.get("state") or "available",
        "region": region,
    }


@dataclass(frozen=True)
class Identity:
    account: str
    region: str


class UnknownInvoke(Exception):
    def __init__(self, token: str) -> None:
        super().__init__(
            f"the offline runtime has no answer for the provider function {token!r}; "
            "add one to coldreach/runtime/invokes.py"
        )


def answer(who: Identity, token: str, args: dict[str, Any]) -> dict[str, Any]:
    region = str(args.get("region") or who.region)
    if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
        return availability_zones(region, args)
    if token == "aws:index/getRegion:getRegion":
        return {
            "id": region,
            "name": region,
            "region": region,
            "description": region,
            "endpoint": f"ec2.{region}.amazonaws.com",
        }
    if token == "aws:index/getCallerIdentity:getCallerIdentity":
        return {
            "id": who.account,
            "accountId": who.account,
            "arn": f"arn:aws:iam::{who.account}:user/offline",
            "userId": "AIDAOFFLINEUSER",
        }
    if token == "aws:iam/getSessionContext:getSessionContext":
        # An assumed-role ARN resolves to its role; any other identity to itself.
        arn = str(args["arn"])
        issuer = arn
        if ":assumed-role/" in arn:
            role = arn.split(":assumed-role/", 1)[1].rsplit("/", 1)[0]
            issuer = f"arn:aws:iam::{who.account}:role/{role}"
        return {"id": arn, "arn": arn, "issuerArn": issuer, "issuerName": issuer.rsplit("/")[-1]}
    if token == "aws:eks/getAddonVersion:getAddonVersion":
        # Offline there is no catalogue of add-on builds: a stand-in that changes with the
        # Kubernetes version, as the real default does.
        version = f"v{args['kubernetesVersion']}-offline-default"
        return {**args, "id": args["addonName"], "version": version}
    if token == "aws:index/getPartition:getPartition":
        return {"id": "aws", "partition": "aws", "dnsSuffix": "amazonaws.com"}
    if token == "aws:elb/getServiceAccount:getServiceAccount":
        account = ELB_ACCOUNTS[region]
        return {"id": account, "arn": f"arn:aws:iam::{account}:root", "region": region}
    if token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
        password = "offline-ecr-token"
        return {
            "id": region,
            "userName": "AWS",
            "password": password,
            "authorizationToken": base64.b64encode(f"AWS:{password}".encode()).decode(),
            "proxyEndpoint": f"https://{who.account}.dkr.ecr.{region}.amazonaws.com",
            "expiresAt": "2099-01-01T00:00:00Z",
        }
    raise UnknownInvoke(token)
