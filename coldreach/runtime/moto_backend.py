"""The moto backend: every AWS resource is created through boto3 in a moto account.

The program runs exactly as under the echo backend, but each registration
becomes real API calls against moto, and the ids and outputs handed back to
the program are the ones moto assigned. Because the program passes those ids
along (a subnet id into a security group, a group id into RDS), the result is
a deployment whose state can be read back with boto3 like any AWS account:
that is what `coldreach verify`, `coldreach local` and tests/moto rely on.

Two ways to reach moto:
- in-process: the caller enters `moto.mock_aws()` itself and builds
  `MotoBackend(region)` inside it, so botocore is patched only as long as the
  caller says;
- a moto server: `MotoBackend(region, endpoint_url="http://127.0.0.1:PORT")`.

Not everything the program declares is AWS. `random:*` values are generated
here; a `docker-build:index:Image` is not built (no Docker daemon is assumed):
a small placeholder manifest is pushed to the moto ECR repository instead,
so the tag and digest the task definitions use exist there. A type without a
handler fails with `UnsupportedResource`, naming it.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import threading
import zlib
from collections.abc import Callable
from typing import Any

from boto3.session import Session
from botocore.config import Config

from coldreach.runtime.echo import KINDS, EchoBackend, Kind
from coldreach.runtime.invokes import Identity, answer
from coldreach.runtime.model import reveal, secret

Outputs = dict[str, Any]
Handler = Callable[["_Call"], tuple[str, Outputs]]

# moto accepts any credentials; these keep boto3 from searching for real ones.
EMULATOR_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class UnsupportedResource(Exception):
    """The program declared a resource type the moto backend cannot create."""

    def __init__(self, type_: str, name: str) -> None:
        super().__init__(
            f"the moto backend cannot create {type_} ({name!r}): no handler in "
            "coldreach/runtime/moto_backend.py. Use the echo backend (coldreach plan) for it, "
            "or add a handler"
        )
        self.type = type_


class _Call:
    """One registration: its names, its plain inputs and the outputs being built."""

    def __init__(self, urn: str, type_: str, name: str, inputs: dict[str, Any]) -> None:
        self.urn = urn
        self.type = type_
        self.name = name
        self.raw = inputs
        self.inputs: dict[str, Any] = reveal(inputs)
        self.outputs: Outputs = dict(inputs)

    def get(self, key: str, default: Any = None) -> Any:
        value = self.inputs.get(key)
        return default if value is None else value


def _tags(tags: dict[str, str] | None, key: str = "Key", value: str = "Value") -> list[dict]:
    return [{key: k, value: v} for k, v in (tags or {}).items()]


def _tag_spec(resource: str, tags: dict[str, str] | None) -> list[dict[str, Any]]:
    return [{"ResourceType": resource, "Tags": _tags(tags)}] if tags else []


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


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


class MotoBackend:
    """Creates each resource in moto and answers with moto's ids and outputs."""

    def __init__(
        self, region: str, *, endpoint_url: str | None = None, account: str = "123456789012"
    ) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.identity = Identity(account=account, region=region)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stand_in_certificate: str | None = None
        # The program registers resources from several threads; boto3 sessions
        # are not thread-safe to create, clients are safe to share.
        self._session = Session(region_name=region, **EMULATOR_CREDENTIALS)
        self.created: list[tuple[str, str, str]] = []
        """(type, name, id) in creation order, for progress and reports."""
        self.on_create: Callable[[str, str, str], None] | None = None
        self.handlers: dict[str, Handler] = {
            "aws:ec2/vpc:Vpc": self._vpc,
            "aws:ec2/subnet:Subnet": self._subnet,
            "aws:ec2/internetGateway:InternetGateway": self._internet_gateway,
            "aws:ec2/routeTable:RouteTable": self._route_table,
            "aws:ec2/route:Route": self._route,
            "aws:ec2/routeTableAssociation:RouteTableAssociation": self._route_association,
            "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": self._default_security_group,
            "aws:ec2/securityGroup:SecurityGroup": self._security_group,
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": self._ingress,
            "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": self._egress,
            "aws:ec2/flowLog:FlowLog": self._flow_log,
            "aws:ec2/eip:Eip": self._eip,
            "aws:ec2/natGateway:NatGateway": self._nat_gateway,
            "aws:cloudwatch/logGroup:LogGroup": self._log_group,
            "aws:iam/role:Role": self._role,
            "aws:iam/rolePolicy:RolePolicy": self._role_policy,
            "aws:rds/subnetGroup:SubnetGroup": self._db_subnet_group,
            "aws:rds/parameterGroup:ParameterGroup": self._db_parameter_group,
            "aws:rds/instance:Instance": self._db_instance,
            "aws:secretsmanager/secret:Secret": self._secret,
            "aws:secretsmanager/secretVersion:SecretVersion": self._secret_version,
            "aws:ecr/repository:Repository": self._repository,
            "aws:ecr/lifecyclePolicy:LifecyclePolicy": self._ecr_lifecycle,
            "docker-build:index:Image": self._image,
            "aws:ecs/cluster:Cluster": self._cluster,
            "aws:ecs/taskDefinition:TaskDefinition": self._task_definition,
            "aws:ecs/service:Service": self._service,
            "aws:lb/loadBalancer:LoadBalancer": self._load_balancer,
            "aws:lb/targetGroup:TargetGroup": self._target_group,
            "aws:lb/listener:Listener": self._listener,
            "aws:s3/bucket:Bucket": self._bucket,
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": self._bucket_public_access,
            "aws:s3/bucketOwnershipControls:BucketOwnershipControls": self._bucket_ownership,
            "aws:s3/bucketServerSideEncryptionConfiguration:"
            "BucketServerSideEncryptionConfiguration": self._bucket_encryption,
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": (
                self._bucket_lifecycle
            ),
            "aws:s3/bucketPolicy:BucketPolicy": self._bucket_policy,
            "aws:elasticache/subnetGroup:SubnetGroup": self._cache_subnet_group,
            "aws:elasticache/replicationGroup:ReplicationGroup": self._replication_group,
            "aws:appautoscaling/target:Target": self._scaling_target,
            "aws:appautoscaling/policy:Policy": self._scaling_policy,
            "aws:sesv2/emailIdentity:EmailIdentity": self._email_identity,
            "aws:sesv2/configurationSet:ConfigurationSet": self._configuration_set,
            "aws:sesv2/configurationSetEventDestination:ConfigurationSetEventDestination": (
                self._event_destination
            ),
            "aws:kms/key:Key": self._kms_key,
            "aws:sns/topic:Topic": self._topic,
            "aws:sns/topicPolicy:TopicPolicy": self._topic_policy,
            "aws:sns/topicSubscription:TopicSubscription": self._subscription,
            "random:index/randomPassword:RandomPassword": self._random_password,
            "random:index/randomId:RandomId": self._random_id,
        }

    # --- the Backend protocol ---------------------------------------------------

    @property
    def supported_types(self) -> list[str]:
        return sorted(self.handlers)

    def create(
        self, urn: str, type_: str, name: str, inputs: dict[str, Any], custom: bool
    ) -> tuple[str | None, dict[str, Any]]:
        if not custom:
            return None, {}
        handler = self.handlers.get(type_)
        if handler is None:
            raise UnsupportedResource(type_, name)
        call = _Call(urn, type_, name, inputs)
        id_, extra = handler(call)
        call.outputs.update(extra)
        call.outputs.pop("id", None)
        self.created.append((type_, name, id_))
        if self.on_create is not None:
            self.on_create(type_, name, id_)
        return id_, call.outputs

    def invoke(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            zones = self.client("ec2").describe_availability_zones()["AvailabilityZones"]
            zones = [z for z in zones if z.get("State", "available") == "available"]
            return {
                "id": self.region,
                "names": [z["ZoneName"] for z in zones],
                "zoneIds": [z["ZoneId"] for z in zones],
                "groupNames": [self.region],
                "state": "available",
                "region": self.region,
            }
        if token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            data = self.client("ecr").get_authorization_token()["authorizationData"][0]
            user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
            return {
                "id": self.region,
                "userName": user,
                "password": password,
                "authorizationToken": data["authorizationToken"],
                "proxyEndpoint": data["proxyEndpoint"],
                "expiresAt": str(data["expiresAt"]),
            }
        return answer(self.identity, token, args)

    # --- helpers -----------------------------------------------------------------

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(
                    service,  # pyright: ignore[reportArgumentType]
                    endpoint_url=self.endpoint_url,
                    config=Config(retries={"max_attempts": 2, "mode": "standard"}),
                )
            return self._clients[service]

    def _name(self, call: _Call) -> str:
        """The physical name: the program's own, or Pulumi-style autonaming (see echo)."""
        kind: Kind = KINDS[call.type]
        assert kind.name_key is not None
        given = call.get(kind.name_key)
        name = str(given) if given else EchoBackend.autoname(call.name, call.urn, kind)
        call.outputs[kind.name_key] = name
        return name

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.identity.account}:{resource}"

    # --- EC2 / VPC -----------------------------------------------------------------

    def _vpc(self, c: _Call) -> tuple[str, Outputs]:
        ec2 = self.client("ec2")
        vpc = ec2.create_vpc(
            CidrBlock=c.get("cidrBlock"), TagSpecifications=_tag_spec("vpc", c.get("tags"))
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
            "arn": self._arn("ec2", f"vpc/{vpc_id}"),
            "ownerId": vpc.get("OwnerId", self.identity.account),
            "dhcpOptionsId": vpc.get("DhcpOptionsId"),
            "defaultSecurityGroupId": default_sg[0]["GroupId"] if default_sg else None,
            "mainRouteTableId": main_rt[0]["RouteTableId"] if main_rt else None,
            "instanceTenancy": vpc.get("InstanceTenancy", "default"),
        }

    def _subnet(self, c: _Call) -> tuple[str, Outputs]:
        ec2 = self.client("ec2")
        subnet = ec2.create_subnet(
            VpcId=c.get("vpcId"),
            CidrBlock=c.get("cidrBlock"),
            AvailabilityZone=c.get("availabilityZone"),
            TagSpecifications=_tag_spec("subnet", c.get("tags")),
        )["Subnet"]
        subnet_id = subnet["SubnetId"]
        ec2.modify_subnet_attribute(
            SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": bool(c.get("mapPublicIpOnLaunch"))}
        )
        return subnet_id, {
            "arn": subnet.get("SubnetArn") or self._arn("ec2", f"subnet/{subnet_id}"),
            "availabilityZoneId": subnet.get("AvailabilityZoneId"),
            "ownerId": subnet.get("OwnerId", self.identity.account),
        }

    def _internet_gateway(self, c: _Call) -> tuple[str, Outputs]:
        ec2 = self.client("ec2")
        igw = ec2.create_internet_gateway(
            TagSpecifications=_tag_spec("internet-gateway", c.get("tags"))
        )["InternetGateway"]
        igw_id = igw["InternetGatewayId"]
        if c.get("vpcId"):
            ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=c.get("vpcId"))
        return igw_id, {"arn": self._arn("ec2", f"internet-gateway/{igw_id}")}

    def _route_table(self, c: _Call) -> tuple[str, Outputs]:
        rt = self.client("ec2").create_route_table(
            VpcId=c.get("vpcId"), TagSpecifications=_tag_spec("route-table", c.get("tags"))
        )["RouteTable"]
        rt_id = rt["RouteTableId"]
        return rt_id, {"arn": self._arn("ec2", f"route-table/{rt_id}")}

    def _route(self, c: _Call) -> tuple[str, Outputs]:
        table, destination = c.get("routeTableId"), c.get("destinationCidrBlock")
        self.client("ec2").create_route(
            **_drop_none(
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

    def _route_association(self, c: _Call) -> tuple[str, Outputs]:
        assoc = self.client("ec2").associate_route_table(
            RouteTableId=c.get("routeTableId"), SubnetId=c.get("subnetId")
        )
        return assoc["AssociationId"], {}

    def _default_security_group(self, c: _Call) -> tuple[str, Outputs]:
        """Adopts the VPC's default group and removes all its rules (the program lists none:
        the default group is closed; inline rules are not supported here)."""
        if c.get("ingress") or c.get("egress"):
            raise UnsupportedResource(f"{c.type} with inline rules", c.name)
        ec2 = self.client("ec2")
        group = _default_groups(ec2, c.get("vpcId"))[0]
        group_id = group["GroupId"]
        _revoke_all(ec2, group, ingress=True)
        if c.get("tags"):
            ec2.create_tags(Resources=[group_id], Tags=_tags(c.get("tags")))
        return group_id, {
            "arn": self._arn("ec2", f"security-group/{group_id}"),
            "name": "default",
            "ownerId": self.identity.account,
            "ingress": [],
            "egress": [],
        }

    def _security_group(self, c: _Call) -> tuple[str, Outputs]:
        if c.get("ingress") or c.get("egress"):
            # The program keeps rules as separate resources (components/firewall.py).
            raise UnsupportedResource(f"{c.type} with inline rules", c.name)
        ec2 = self.client("ec2")
        name = self._name(c)
        group_id = ec2.create_security_group(
            GroupName=name,
            Description=c.get("description", "Managed by Pulumi"),
            VpcId=c.get("vpcId"),
            TagSpecifications=_tag_spec("security-group", c.get("tags")),
        )["GroupId"]
        # Like the provider: a new VPC group starts without AWS's allow-all egress rule.
        group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
        _revoke_all(ec2, group, ingress=False)
        return group_id, {
            "arn": self._arn("ec2", f"security-group/{group_id}"),
            "ownerId": self.identity.account,
            "ingress": [],
            "egress": [],
        }

    @staticmethod
    def _permission(c: _Call) -> dict[str, Any]:
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
            permission["UserIdGroupPairs"] = [
                {"GroupId": c.get("referencedSecurityGroupId"), **extra}
            ]
        if c.get("prefixListId"):
            permission["PrefixListIds"] = [{"PrefixListId": c.get("prefixListId"), **extra}]
        return permission

    def _rule(self, c: _Call, egress: bool) -> tuple[str, Outputs]:
        ec2 = self.client("ec2")
        authorize = (
            ec2.authorize_security_group_egress if egress else ec2.authorize_security_group_ingress
        )
        result = authorize(GroupId=c.get("securityGroupId"), IpPermissions=[self._permission(c)])
        rules = result.get("SecurityGroupRules") or []
        if rules:
            rule_id = rules[0]["SecurityGroupRuleId"]
        else:  # older moto: no rule ids; keep one of our own, stable per URN
            rule_id = "sgr-" + format(zlib.crc32(c.urn.encode()), "017x")
        return rule_id, {
            "securityGroupRuleId": rule_id,
            "arn": self._arn("ec2", f"security-group-rule/{rule_id}"),
        }

    def _ingress(self, c: _Call) -> tuple[str, Outputs]:
        return self._rule(c, egress=False)

    def _egress(self, c: _Call) -> tuple[str, Outputs]:
        return self._rule(c, egress=True)

    def _flow_log(self, c: _Call) -> tuple[str, Outputs]:
        result = self.client("ec2").create_flow_logs(
            **_drop_none(
                {
                    "ResourceIds": [c.get("vpcId")],
                    "ResourceType": "VPC",
                    "TrafficType": c.get("trafficType", "ALL"),
                    "LogDestinationType": c.get("logDestinationType", "cloud-watch-logs"),
                    "LogDestination": c.get("logDestination"),
                    "DeliverLogsPermissionArn": c.get("iamRoleArn"),
                    "TagSpecifications": _tag_spec("vpc-flow-log", c.get("tags")) or None,
                }
            )
        )
        if result.get("Unsuccessful"):
            raise RuntimeError(f"flow log {c.name}: {result['Unsuccessful']}")
        flow_id = result["FlowLogIds"][0]
        return flow_id, {"arn": self._arn("ec2", f"vpc-flow-log/{flow_id}")}

    def _eip(self, c: _Call) -> tuple[str, Outputs]:
        eip = self.client("ec2").allocate_address(
            **_drop_none(
                {
                    "Domain": c.get("domain", "vpc"),
                    "TagSpecifications": _tag_spec("elastic-ip", c.get("tags")) or None,
                }
            )
        )
        allocation = eip["AllocationId"]
        return allocation, {
            "allocationId": allocation,
            "publicIp": eip["PublicIp"],
            "domain": eip.get("Domain", "vpc"),
            "arn": self._arn("ec2", f"elastic-ip/{allocation}"),
        }

    def _nat_gateway(self, c: _Call) -> tuple[str, Outputs]:
        nat = self.client("ec2").create_nat_gateway(
            SubnetId=c.get("subnetId"),
            AllocationId=c.get("allocationId"),
            TagSpecifications=_tag_spec("natgateway", c.get("tags")),
        )["NatGateway"]
        addresses = nat.get("NatGatewayAddresses") or [{}]
        return nat["NatGatewayId"], {
            "publicIp": addresses[0].get("PublicIp"),
            "privateIp": addresses[0].get("PrivateIp"),
            "networkInterfaceId": addresses[0].get("NetworkInterfaceId"),
            "connectivityType": "public",
        }

    # --- logs, IAM, secrets ------------------------------------------------------------

    def _log_group(self, c: _Call) -> tuple[str, Outputs]:
        logs = self.client("logs")
        name = self._name(c)
        logs.create_log_group(
            logGroupName=name, **({"tags": c.get("tags")} if c.get("tags") else {})
        )
        if c.get("retentionInDays"):
            logs.put_retention_policy(logGroupName=name, retentionInDays=c.get("retentionInDays"))
        return name, {"arn": self._arn("logs", f"log-group:{name}")}

    def _role(self, c: _Call) -> tuple[str, Outputs]:
        name = self._name(c)
        role = self.client("iam").create_role(
            **_drop_none(
                {
                    "RoleName": name,
                    "AssumeRolePolicyDocument": c.get("assumeRolePolicy"),
                    "Description": c.get("description"),
                    "Path": c.get("path"),
                    "Tags": _tags(c.get("tags")) or None,
                }
            )
        )["Role"]
        return name, {
            "arn": role["Arn"],
            "uniqueId": role["RoleId"],
            "createDate": str(role["CreateDate"]),
        }

    def _role_policy(self, c: _Call) -> tuple[str, Outputs]:
        name = self._name(c)
        role = c.get("role")
        self.client("iam").put_role_policy(
            RoleName=role, PolicyName=name, PolicyDocument=c.get("policy")
        )
        return f"{role}:{name}", {}

    def _secret(self, c: _Call) -> tuple[str, Outputs]:
        name = self._name(c)
        result = self.client("secretsmanager").create_secret(
            **_drop_none(
                {
                    "Name": name,
                    "Description": c.get("description"),
                    "KmsKeyId": c.get("kmsKeyId"),
                    "Tags": _tags(c.get("tags")) or None,
                }
            )
        )
        return result["ARN"], {"arn": result["ARN"]}

    def _secret_version(self, c: _Call) -> tuple[str, Outputs]:
        result = self.client("secretsmanager").put_secret_value(
            SecretId=c.get("secretId"), SecretString=c.get("secretString")
        )
        return f"{result['ARN']}|{result['VersionId']}", {
            "arn": result["ARN"],
            "versionId": result["VersionId"],
            "versionStages": result.get("VersionStages", ["AWSCURRENT"]),
        }

    # --- RDS ------------------------------------------------------------------------------

    def _db_subnet_group(self, c: _Call) -> tuple[str, Outputs]:
        name = self._name(c)
        group = self.client("rds").create_db_subnet_group(
            DBSubnetGroupName=name,
            DBSubnetGroupDescription=c.get("description", "Managed by Pulumi"),
            SubnetIds=c.get("subnetIds"),
            Tags=_tags(c.get("tags")),
        )["DBSubnetGroup"]
        return name, {
            "arn": group.get("DBSubnetGroupArn") or self._arn("rds", f"subgrp:{name}"),
            "vpcId": group.get("VpcId"),
        }

    def _db_parameter_group(self, c: _Call) -> tuple[str, Outputs]:
        rds = self.client("rds")
        name = self._name(c)
        group = rds.create_db_parameter_group(
            DBParameterGroupName=name,
            DBParameterGroupFamily=c.get("family"),
            Description=c.get("description", "Managed by Pulumi"),
            Tags=_tags(c.get("tags")),
        )["DBParameterGroup"]
        parameters = [
            {
                "ParameterName": p["name"],
                "ParameterValue": str(p["value"]),
                "ApplyMethod": p.get("applyMethod") or "immediate",
            }
            for p in c.get("parameters", [])
        ]
        if parameters:
            rds.modify_db_parameter_group(DBParameterGroupName=name, Parameters=parameters)
        return name, {"arn": group.get("DBParameterGroupArn") or self._arn("rds", f"pg:{name}")}

    def _db_instance(self, c: _Call) -> tuple[str, Outputs]:
        rds = self.client("rds")
        identifier = self._name(c)
        common = {
            "DBInstanceIdentifier": identifier,
            "DBInstanceClass": c.get("instanceClass"),
            "StorageType": c.get("storageType"),
            "MaxAllocatedStorage": c.get("maxAllocatedStorage"),
            "VpcSecurityGroupIds": c.get("vpcSecurityGroupIds"),
            "DBParameterGroupName": c.get("parameterGroupName"),
            "PubliclyAccessible": bool(c.get("publiclyAccessible", False)),
            "MultiAZ": c.get("multiAz"),
            "CopyTagsToSnapshot": c.get("copyTagsToSnapshot"),
            "DeletionProtection": bool(c.get("deletionProtection", False)),
            "EnablePerformanceInsights": c.get("performanceInsightsEnabled"),
            "PerformanceInsightsRetentionPeriod": c.get("performanceInsightsRetentionPeriod"),
            "EnableCloudwatchLogsExports": c.get("enabledCloudwatchLogsExports"),
            "EnableIAMDatabaseAuthentication": c.get("iamDatabaseAuthenticationEnabled"),
            "AutoMinorVersionUpgrade": c.get("autoMinorVersionUpgrade"),
            "Tags": _tags(c.get("tags")) or None,
        }
        source = c.get("replicateSourceDb")
        if source:
            # A replica inherits engine, credentials and encryption from its source;
            # the provider then sets what the replica API does not take.
            db = rds.create_db_instance_read_replica(
                **_drop_none({**common, "SourceDBInstanceIdentifier": source})
            )["DBInstance"]
            modify = _drop_none(
                {
                    "BackupRetentionPeriod": c.get("backupRetentionPeriod"),
                    "DeletionProtection": common["DeletionProtection"],
                    "CACertificateIdentifier": c.get("caCertIdentifier"),
                }
            )
            db = rds.modify_db_instance(
                DBInstanceIdentifier=identifier, ApplyImmediately=True, **modify
            )["DBInstance"]
        else:
            db = rds.create_db_instance(
                **_drop_none(
                    {
                        **common,
                        "Engine": c.get("engine"),
                        "EngineVersion": c.get("engineVersion"),
                        "AllocatedStorage": c.get("allocatedStorage"),
                        "StorageEncrypted": bool(c.get("storageEncrypted", False)),
                        "KmsKeyId": c.get("kmsKeyId"),
                        "DBName": c.get("dbName"),
                        "MasterUsername": c.get("username"),
                        "MasterUserPassword": c.get("password"),
                        "Port": c.get("port"),
                        "DBSubnetGroupName": c.get("dbSubnetGroupName"),
                        "BackupRetentionPeriod": c.get("backupRetentionPeriod"),
                        "PreferredBackupWindow": c.get("backupWindow"),
                        "PreferredMaintenanceWindow": c.get("maintenanceWindow"),
                        "CACertificateIdentifier": c.get("caCertIdentifier"),
                    }
                )
            )["DBInstance"]
        endpoint = db.get("Endpoint") or {}
        port = int(endpoint.get("Port") or c.get("port") or 5432)
        address = endpoint.get("Address") or f"{identifier}.{self.region}.rds.amazonaws.com"
        outputs: Outputs = {
            "arn": db["DBInstanceArn"],
            "address": address,
            "endpoint": f"{address}:{port}",
            "port": port,
            "resourceId": db.get("DbiResourceId"),
            "status": db.get("DBInstanceStatus", "available"),
            "hostedZoneId": endpoint.get("HostedZoneId"),
            "engine": db.get("Engine"),
            "engineVersionActual": db.get("EngineVersion"),
            "storageEncrypted": bool(db.get("StorageEncrypted")),
        }
        if source:
            outputs["username"] = db.get("MasterUsername")
            outputs["dbSubnetGroupName"] = (db.get("DBSubnetGroup") or {}).get("DBSubnetGroupName")
        return identifier, outputs

    # --- ECR, image, ECS ---------------------------------------------------------------------

    def _repository(self, c: _Call) -> tuple[str, Outputs]:
        name = self._name(c)
        encryption = (c.get("encryptionConfigurations") or [{}])[0]
        repo = self.client("ecr").create_repository(
            **_drop_none(
                {
                    "repositoryName": name,
                    "imageTagMutability": c.get("imageTagMutability"),
                    "imageScanningConfiguration": (
                        {"scanOnPush": bool(c.get("imageScanningConfiguration")["scanOnPush"])}
                        if c.get("imageScanningConfiguration")
                        else None
                    ),
                    "encryptionConfiguration": (
                        _drop_none(
                            {
                                "encryptionType": encryption.get("encryptionType"),
                                "kmsKey": encryption.get("kmsKey"),
                            }
                        )
                        if encryption
                        else None
                    ),
                    "tags": _tags(c.get("tags")) or None,
                }
            )
        )["repository"]
        return name, {
            "arn": repo["repositoryArn"],
            "registryId": repo["registryId"],
            "repositoryUrl": repo["repositoryUri"],
        }

    def _ecr_lifecycle(self, c: _Call) -> tuple[str, Outputs]:
        result = self.client("ecr").put_lifecycle_policy(
            repositoryName=c.get("repository"), lifecyclePolicyText=c.get("policy")
        )
        return c.get("repository"), {"registryId": result["registryId"]}

    def _image(self, c: _Call) -> tuple[str, Outputs]:
        """Not built: a placeholder manifest is pushed under the program's tag, so the
        repository holds an image with that tag and the digest the services run."""
        tags = [str(t) for t in c.get("tags", [])]
        if not tags:
            raise UnsupportedResource(f"{c.type} without tags", c.name)
        repo_url, tag = tags[0].rsplit(":", 1)
        repository = repo_url.split("/", 1)[1]
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": 0,
                    "digest": "sha256:" + "0" * 64,
                },
                "layers": [],
                "annotations": {"coldreach.placeholder": f"{c.name}: not built offline"},
            }
        )
        ecr = self.client("ecr")
        image = ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=tag)
        digest = image["image"]["imageId"]["imageDigest"]
        ref = f"{repo_url}@{digest}"
        return ref, {"digest": digest, "ref": ref}

    def _cluster(self, c: _Call) -> tuple[str, Outputs]:
        name = self._name(c)
        cluster = self.client("ecs").create_cluster(
            **_drop_none(
                {
                    "clusterName": name,
                    "settings": [
                        {"name": s["name"], "value": s["value"]} for s in c.get("settings", [])
                    ]
                    or None,
                    "tags": _tags(c.get("tags"), "key", "value") or None,
                }
            )
        )["cluster"]
        return cluster["clusterArn"], {"arn": cluster["clusterArn"]}

    def _task_definition(self, c: _Call) -> tuple[str, Outputs]:
        platform = c.get("runtimePlatform")
        task = self.client("ecs").register_task_definition(
            **_drop_none(
                {
                    "family": c.get("family"),
                    "containerDefinitions": json.loads(c.get("containerDefinitions")),
                    "cpu": c.get("cpu"),
                    "memory": c.get("memory"),
                    "networkMode": c.get("networkMode"),
                    "requiresCompatibilities": c.get("requiresCompatibilities"),
                    "runtimePlatform": platform,
                    "executionRoleArn": c.get("executionRoleArn"),
                    "taskRoleArn": c.get("taskRoleArn"),
                    "volumes": [{"name": v["name"]} for v in c.get("volumes", [])] or None,
                    "tags": _tags(c.get("tags"), "key", "value") or None,
                }
            )
        )["taskDefinition"]
        arn = task["taskDefinitionArn"]
        return c.get("family"), {
            "arn": arn,
            "arnWithoutRevision": arn.rsplit(":", 1)[0],
            "revision": task["revision"],
        }

    def _service(self, c: _Call) -> tuple[str, Outputs]:
        name = self._name(c)
        net = c.get("networkConfiguration") or {}
        breaker = c.get("deploymentCircuitBreaker")
        deployment = _drop_none(
            {
                "minimumHealthyPercent": c.get("deploymentMinimumHealthyPercent"),
                "maximumPercent": c.get("deploymentMaximumPercent"),
                "deploymentCircuitBreaker": (
                    {"enable": bool(breaker["enable"]), "rollback": bool(breaker["rollback"])}
                    if breaker
                    else None
                ),
            }
        )
        service = self.client("ecs").create_service(
            **_drop_none(
                {
                    "cluster": c.get("cluster"),
                    "serviceName": name,
                    "taskDefinition": c.get("taskDefinition"),
                    "desiredCount": c.get("desiredCount", 0),
                    "launchType": c.get("launchType"),
                    "platformVersion": c.get("platformVersion"),
                    "networkConfiguration": (
                        {
                            "awsvpcConfiguration": {
                                "subnets": net.get("subnets", []),
                                "securityGroups": net.get("securityGroups", []),
                                "assignPublicIp": (
                                    "ENABLED" if net.get("assignPublicIp") else "DISABLED"
                                ),
                            }
                        }
                        if net
                        else None
                    ),
                    "loadBalancers": [
                        {
                            "targetGroupArn": lb["targetGroupArn"],
                            "containerName": lb["containerName"],
                            "containerPort": lb["containerPort"],
                        }
                        for lb in c.get("loadBalancers", [])
                    ]
                    or None,
                    "healthCheckGracePeriodSeconds": c.get("healthCheckGracePeriodSeconds"),
                    "deploymentConfiguration": deployment or None,
                    "enableExecuteCommand": c.get("enableExecuteCommand"),
                    "propagateTags": c.get("propagateTags"),
                    "tags": _tags(c.get("tags"), "key", "value") or None,
                }
            )
        )["service"]
        return service["serviceArn"], {"arn": service["serviceArn"]}

    def _scaling_target(self, c: _Call) -> tuple[str, Outputs]:
        client = self.client("application-autoscaling")
        client.register_scalable_target(
            ServiceNamespace=c.get("serviceNamespace"),
            ResourceId=c.get("resourceId"),
            ScalableDimension=c.get("scalableDimension"),
            MinCapacity=c.get("minCapacity"),
            MaxCapacity=c.get("maxCapacity"),
        )
        found = client.describe_scalable_targets(
            ServiceNamespace=c.get("serviceNamespace"), ResourceIds=[c.get("resourceId")]
        )["ScalableTargets"]
        arn = (found[0].get("ScalableTargetARN") if found else None) or self._arn(
            "application-autoscaling", f"scalable-target/{c.get('resourceId')}"
        )
        return c.get("resourceId"), {"arn": arn}

    def _scaling_policy(self, c: _Call) -> tuple[str, Outputs]:
        name = self._name(c)
        config = c.get("targetTrackingScalingPolicyConfiguration") or {}
        result = self.client("application-autoscaling").put_scaling_policy(
            PolicyName=name,
            ServiceNamespace=c.get("serviceNamespace"),
            ResourceId=c.get("resourceId"),
            ScalableDimension=c.get("scalableDimension"),
            PolicyType=c.get("policyType"),
            TargetTrackingScalingPolicyConfiguration=_pascal(config),
        )
        return name, {"arn": result["PolicyARN"], "alarmArns": []}

    # --- load balancing ---------------------------------------------------------------------

    def _load_balancer(self, c: _Call) -> tuple[str, Outputs]:
        elb = self.client("elbv2")
        name = self._name(c)
        lb = elb.create_load_balancer(
            **_drop_none(
                {
                    "Name": name,
                    "Subnets": c.get("subnets"),
                    "SecurityGroups": c.get("securityGroups"),
                    "Scheme": "internal" if c.get("internal") else "internet-facing",
                    "Type": c.get("loadBalancerType", "application"),
                    "Tags": _tags(c.get("tags")) or None,
                }
            )
        )["LoadBalancers"][0]
        arn = lb["LoadBalancerArn"]
        logs = c.get("accessLogs") or {}
        attributes = {
            "routing.http.drop_invalid_header_fields.enabled": c.get("dropInvalidHeaderFields"),
            "routing.http.desync_mitigation_mode": c.get("desyncMitigationMode"),
            "deletion_protection.enabled": c.get("enableDeletionProtection"),
            "access_logs.s3.enabled": logs.get("enabled"),
            "access_logs.s3.bucket": logs.get("bucket"),
            "access_logs.s3.prefix": logs.get("prefix"),
        }
        values = [
            {"Key": k, "Value": str(v).lower() if isinstance(v, bool) else str(v)}
            for k, v in attributes.items()
            if v is not None
        ]
        if values:
            elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=values)
        return arn, {
            "arn": arn,
            "arnSuffix": arn.split(":loadbalancer/", 1)[1],
            "dnsName": lb["DNSName"],
            "zoneId": lb.get("CanonicalHostedZoneId"),
            "vpcId": lb.get("VpcId"),
        }

    def _target_group(self, c: _Call) -> tuple[str, Outputs]:
        elb = self.client("elbv2")
        name = self._name(c)
        health = c.get("healthCheck") or {}
        tg = elb.create_target_group(
            **_drop_none(
                {
                    "Name": name,
                    "Protocol": c.get("protocol"),
                    "Port": c.get("port"),
                    "VpcId": c.get("vpcId"),
                    "TargetType": c.get("targetType"),
                    "HealthCheckPath": health.get("path"),
                    "HealthCheckIntervalSeconds": health.get("interval"),
                    "HealthyThresholdCount": health.get("healthyThreshold"),
                    "UnhealthyThresholdCount": health.get("unhealthyThreshold"),
                    "Matcher": {"HttpCode": health["matcher"]} if health.get("matcher") else None,
                    "Tags": _tags(c.get("tags")) or None,
                }
            )
        )["TargetGroups"][0]
        arn = tg["TargetGroupArn"]
        if c.get("deregistrationDelay") is not None:
            elb.modify_target_group_attributes(
                TargetGroupArn=arn,
                Attributes=[
                    {
                        "Key": "deregistration_delay.timeout_seconds",
                        "Value": str(c.get("deregistrationDelay")),
                    }
                ],
            )
        return arn, {"arn": arn, "arnSuffix": arn.rsplit(":", 1)[1]}

    def _listener(self, c: _Call) -> tuple[str, Outputs]:
        actions = []
        for a in c.get("defaultActions", []):
            action: dict[str, Any] = {"Type": a["type"]}
            if a.get("targetGroupArn"):
                action["TargetGroupArn"] = a["targetGroupArn"]
            if a.get("redirect"):
                action["RedirectConfig"] = _pascal(a["redirect"])
            actions.append(action)
        listener = self.client("elbv2").create_listener(
            **_drop_none(
                {
                    "LoadBalancerArn": c.get("loadBalancerArn"),
                    "Port": c.get("port"),
                    "Protocol": c.get("protocol"),
                    "SslPolicy": c.get("sslPolicy"),
                    "Certificates": (
                        [{"CertificateArn": self._certificate(c.get("certificateArn"))}]
                        if c.get("certificateArn")
                        else None
                    ),
                    "DefaultActions": actions,
                }
            )
        )["Listeners"][0]
        return listener["ListenerArn"], {"arn": listener["ListenerArn"]}

    def _certificate(self, arn: str) -> str:
        """The stack's certificate is configuration (`cold-reach:certificateArn`), not
        something the program creates, so the emulator does not have it: a stand-in is
        requested from moto's ACM once and used for every HTTPS listener."""
        acm = self.client("acm")
        try:
            acm.describe_certificate(CertificateArn=arn)
            return arn
        except acm.exceptions.ResourceNotFoundException:
            pass
        with self._lock:
            stand_in = self._stand_in_certificate
            if stand_in is None:
                stand_in = acm.request_certificate(
                    DomainName="coldreach.invalid", ValidationMethod="DNS"
                )["CertificateArn"]
                self._stand_in_certificate = stand_in
            return str(stand_in)

    # --- S3 ----------------------------------------------------------------------------------

    def _bucket(self, c: _Call) -> tuple[str, Outputs]:
        s3 = self.client("s3")
        name = self._name(c)
        kwargs: dict[str, Any] = {"Bucket": name}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        s3.create_bucket(**kwargs)
        if c.get("tags"):
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tags(c.get("tags"))})
        return name, {
            "arn": f"arn:aws:s3:::{name}",
            "bucketDomainName": f"{name}.s3.amazonaws.com",
            "bucketRegionalDomainName": f"{name}.s3.{self.region}.amazonaws.com",
            "region": self.region,
            "hostedZoneId": "Z3AQBSTGFYJSTF",
        }

    def _bucket_public_access(self, c: _Call) -> tuple[str, Outputs]:
        bucket = c.get("bucket")
        self.client("s3").put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": bool(c.get("blockPublicAcls")),
                "BlockPublicPolicy": bool(c.get("blockPublicPolicy")),
                "IgnorePublicAcls": bool(c.get("ignorePublicAcls")),
                "RestrictPublicBuckets": bool(c.get("restrictPublicBuckets")),
            },
        )
        return bucket, {}

    def _bucket_ownership(self, c: _Call) -> tuple[str, Outputs]:
        bucket = c.get("bucket")
        self.client("s3").put_bucket_ownership_controls(
            Bucket=bucket,
            OwnershipControls={"Rules": [{"ObjectOwnership": c.get("rule")["objectOwnership"]}]},
        )
        return bucket, {}

    def _bucket_encryption(self, c: _Call) -> tuple[str, Outputs]:
        bucket = c.get("bucket")
        self.client("s3").put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    _drop_none(
                        {
                            "ApplyServerSideEncryptionByDefault": _pascal(
                                r.get("applyServerSideEncryptionByDefault") or {},
                                {
                                    "kmsMasterKeyId": "KMSMasterKeyID",
                                    "sseAlgorithm": "SSEAlgorithm",
                                },
                            ),
                            "BucketKeyEnabled": r.get("bucketKeyEnabled"),
                        }
                    )
                    for r in c.get("rules", [])
                ]
            },
        )
        return bucket, {}

    def _bucket_lifecycle(self, c: _Call) -> tuple[str, Outputs]:
        bucket = c.get("bucket")
        rules = []
        for r in c.get("rules", []):
            rule: dict[str, Any] = {"ID": r["id"], "Status": r["status"]}
            flt = r.get("filter") or {}
            rule["Filter"] = {"Prefix": flt.get("prefix", "")}
            if r.get("expiration"):
                rule["Expiration"] = _pascal(r["expiration"])
            rules.append(rule)
        self.client("s3").put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": rules}
        )
        return bucket, {}

    def _bucket_policy(self, c: _Call) -> tuple[str, Outputs]:
        bucket = c.get("bucket")
        self.client("s3").put_bucket_policy(Bucket=bucket, Policy=c.get("policy"))
        return bucket, {}

    # --- ElastiCache ----------------------------------------------------------------------------

    def _cache_subnet_group(self, c: _Call) -> tuple[str, Outputs]:
        name = self._name(c)
        group = self.client("elasticache").create_cache_subnet_group(
            CacheSubnetGroupName=name,
            CacheSubnetGroupDescription=c.get("description", "Managed by Pulumi"),
            SubnetIds=c.get("subnetIds"),
        )["CacheSubnetGroup"]
        return name, {
            "arn": group.get("ARN") or self._arn("elasticache", f"subnetgroup:{name}"),
            "vpcId": group.get("VpcId"),
        }

    def _replication_group(self, c: _Call) -> tuple[str, Outputs]:
        name = self._name(c)
        group = self.client("elasticache").create_replication_group(
            **_drop_none(
                {
                    "ReplicationGroupId": name,
                    "ReplicationGroupDescription": c.get("description", "Managed by Pulumi"),
                    "Engine": c.get("engine"),
                    "EngineVersion": c.get("engineVersion"),
                    "CacheNodeType": c.get("nodeType"),
                    "NumCacheClusters": c.get("numCacheClusters"),
                    "AutomaticFailoverEnabled": c.get("automaticFailoverEnabled"),
                    "MultiAZEnabled": c.get("multiAzEnabled"),
                    "Port": c.get("port"),
                    "CacheSubnetGroupName": c.get("subnetGroupName"),
                    "SecurityGroupIds": c.get("securityGroupIds"),
                    "AtRestEncryptionEnabled": c.get("atRestEncryptionEnabled"),
                    "TransitEncryptionEnabled": c.get("transitEncryptionEnabled"),
                    "TransitEncryptionMode": c.get("transitEncryptionMode"),
                    "AuthToken": c.get("authToken"),
                    "SnapshotRetentionLimit": c.get("snapshotRetentionLimit"),
                    "SnapshotWindow": c.get("snapshotWindow"),
                    "PreferredMaintenanceWindow": c.get("maintenanceWindow"),
                    "AutoMinorVersionUpgrade": c.get("autoMinorVersionUpgrade"),
                    "Tags": _tags(c.get("tags")) or None,
                }
            )
        )["ReplicationGroup"]
        self._member_clusters(c, group.get("MemberClusters", []))
        groups = group.get("NodeGroups") or [{}]
        primary = (groups[0].get("PrimaryEndpoint") or {}).get("Address")
        reader = (groups[0].get("ReaderEndpoint") or {}).get("Address")
        return name, {
            "arn": group.get("ARN") or self._arn("elasticache", f"replicationgroup:{name}"),
            "primaryEndpointAddress": primary or f"master.{name}.cache.amazonaws.com",
            "readerEndpointAddress": reader or f"replica.{name}.cache.amazonaws.com",
            "memberClusters": group.get("MemberClusters", []),
            "engineVersionActual": c.get("engineVersion"),
        }

    def _member_clusters(self, c: _Call, members: list[str]) -> None:
        """AWS lists a replication group's nodes as cache clusters that carry its subnet
        group and security groups; moto does not create them, so they are added here
        (that is where `describe_cache_clusters`, and `coldreach verify`, find them)."""
        elasticache = self.client("elasticache")
        existing = {
            cluster["CacheClusterId"]
            for cluster in elasticache.describe_cache_clusters()["CacheClusters"]
        }
        for member in members:
            if member in existing:
                continue
            elasticache.create_cache_cluster(
                **_drop_none(
                    {
                        "CacheClusterId": member,
                        "ReplicationGroupId": c.get("replicationGroupId")
                        or c.outputs.get("replicationGroupId"),
                        "Engine": c.get("engine"),
                        "EngineVersion": c.get("engineVersion"),
                        "CacheNodeType": c.get("nodeType"),
                        "CacheSubnetGroupName": c.get("subnetGroupName"),
                        "SecurityGroupIds": c.get("securityGroupIds"),
                        "Port": c.get("port"),
                        "TransitEncryptionEnabled": c.get("transitEncryptionEnabled"),
                    }
                )
            )

    # --- SES, SNS ----------------------------------------------------------------------------

    def _configuration_set(self, c: _Call) -> tuple[str, Outputs]:
        name = c.get("configurationSetName")
        delivery = c.get("deliveryOptions") or {}
        reputation = c.get("reputationOptions") or {}
        suppression = c.get("suppressionOptions") or {}
        self.client("sesv2").create_configuration_set(
            **_drop_none(
                {
                    "ConfigurationSetName": name,
                    "DeliveryOptions": _pascal(delivery) or None,
                    "ReputationOptions": _pascal(reputation) or None,
                    "SuppressionOptions": _pascal(suppression) or None,
                    "Tags": _tags(c.get("tags")) or None,
                }
            )
        )
        return name, {"arn": self._arn("ses", f"configuration-set/{name}")}

    def _email_identity(self, c: _Call) -> tuple[str, Outputs]:
        identity = c.get("emailIdentity")
        signing = c.get("dkimSigningAttributes") or {}
        result = self.client("sesv2").create_email_identity(
            **_drop_none(
                {
                    "EmailIdentity": identity,
                    "ConfigurationSetName": c.get("configurationSetName"),
                    "DkimSigningAttributes": _pascal(signing) or None,
                    "Tags": _tags(c.get("tags")) or None,
                }
            )
        )
        dkim = result.get("DkimAttributes") or {}
        tokens = dkim.get("Tokens") or []
        if not tokens:
            # moto's SES v2 returns no tokens; its SES v1 call for the same identity does.
            tokens = self.client("ses").verify_domain_dkim(Domain=identity)["DkimTokens"]
        attrs = dict(signing)
        attrs.update(
            {
                "tokens": tokens,
                "status": dkim.get("Status", "PENDING"),
                "signingAttributesOrigin": dkim.get("SigningAttributesOrigin", "AWS_SES"),
            }
        )
        return identity, {
            "arn": self._arn("ses", f"identity/{identity}"),
            "dkimSigningAttributes": attrs,
            "identityType": result.get("IdentityType", "DOMAIN"),
            "verifiedForSendingStatus": bool(result.get("VerifiedForSendingStatus")),
        }

    def _event_destination(self, c: _Call) -> tuple[str, Outputs]:
        """moto has no SES v2 call for this; the SES v1 call configures the same set."""
        dest = c.get("eventDestination") or {}
        config_set, name = c.get("configurationSetName"), c.get("eventDestinationName")
        sns = dest.get("snsDestination") or {}
        self.client("ses").create_configuration_set_event_destination(
            ConfigurationSetName=config_set,
            EventDestination=_drop_none(
                {
                    "Name": name,
                    "Enabled": bool(dest.get("enabled")),
                    "MatchingEventTypes": [t.lower() for t in dest.get("matchingEventTypes", [])],
                    "SNSDestination": {"TopicARN": sns["topicArn"]} if sns else None,
                }
            ),
        )
        return f"{config_set}|{name}", {}

    def _kms_key(self, c: _Call) -> tuple[str, Outputs]:
        kms = self.client("kms")
        meta = kms.create_key(
            **_drop_none(
                {
                    "Description": c.get("description"),
                    "Policy": c.get("policy"),
                    "Tags": _tags(c.get("tags"), "TagKey", "TagValue") or None,
                }
            )
        )["KeyMetadata"]
        if c.get("enableKeyRotation"):
            kms.enable_key_rotation(KeyId=meta["KeyId"])
        return meta["KeyId"], {"keyId": meta["KeyId"], "arn": meta["Arn"]}

    def _topic(self, c: _Call) -> tuple[str, Outputs]:
        name = self._name(c)
        attributes = _drop_none({"KmsMasterKeyId": c.get("kmsMasterKeyId")})
        arn = self.client("sns").create_topic(
            **_drop_none(
                {
                    "Name": name,
                    "Attributes": attributes or None,
                    "Tags": _tags(c.get("tags")) or None,
                }
            )
        )["TopicArn"]
        return arn, {"arn": arn, "owner": self.identity.account}

    def _topic_policy(self, c: _Call) -> tuple[str, Outputs]:
        arn = c.get("arn")
        self.client("sns").set_topic_attributes(
            TopicArn=arn, AttributeName="Policy", AttributeValue=c.get("policy")
        )
        return arn, {"owner": self.identity.account}

    def _subscription(self, c: _Call) -> tuple[str, Outputs]:
        result = self.client("sns").subscribe(
            TopicArn=c.get("topic"),
            Protocol=c.get("protocol"),
            Endpoint=c.get("endpoint"),
            ReturnSubscriptionArn=True,
        )
        arn = result["SubscriptionArn"]
        return arn, {"arn": arn, "ownerId": self.identity.account, "pendingConfirmation": False}

    # --- values generated here (not AWS) -------------------------------------------------------

    def _random_password(self, c: _Call) -> tuple[str, Outputs]:
        length = int(c.get("length", 16))
        alphabet = string.ascii_letters + string.digits
        if c.get("special", True):
            alphabet += c.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?"
        value = "".join(secrets.choice(alphabet) for _ in range(length))
        return "none-" + secrets.token_hex(8), {"result": secret(value), "bcryptHash": secret("")}

    def _random_id(self, c: _Call) -> tuple[str, Outputs]:
        raw = secrets.token_bytes(int(c.get("byteLength", 4)))
        b64url = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return b64url, {
            "hex": raw.hex(),
            "dec": str(int.from_bytes(raw, "big")),
            "b64Std": base64.b64encode(raw).decode(),
            "b64Url": b64url,
        }


def _pascal(value: Any, renames: dict[str, str] | None = None) -> Any:
    """camelCase engine keys to the PascalCase of the AWS APIs (`targetValue` -> `TargetValue`)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            key = (renames or {}).get(k) or (k[:1].upper() + k[1:])
            out[key] = _pascal(v)
        return out
    if isinstance(value, list):
        return [_pascal(v) for v in value]
    return value
