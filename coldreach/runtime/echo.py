"""The echo backend: deterministic ids and realistic outputs, no AWS involved.

Ids are derived from the URN, so they are unique per resource and identical
from one run to the next: `plan --json` diffs cleanly and a resource keeps its
id across phases exactly when it keeps its URN. Physical names follow
Pulumi's autonaming (logical name plus a suffix), because that is what the
real provider would send to AWS.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

from coldreach.runtime.invokes import Identity, answer
from coldreach.runtime.model import reveal, secret
from policies import tokens as t
from policies.resource_types import TYPES, ResourceType

Outputs = dict[str, Any]


def digest(urn: str, length: int) -> str:
    return hashlib.sha256(urn.encode()).hexdigest()[:length]


Extra = Callable[[Identity, str, Outputs], Outputs]
"""What AWS adds to a type's inputs: (who, urn, outputs so far) -> more outputs."""


def _arn(service: str, resource: str, *, global_: bool = False) -> Callable[..., Outputs]:
    def extra(who: Identity, _urn: str, o: Outputs) -> Outputs:
        region = "" if global_ else who.region
        return {"arn": f"arn:aws:{service}:{region}:{who.account}:{resource.format(**o)}"}

    return extra


def _rds_instance(who: Identity, urn: str, o: Outputs) -> Outputs:
    host = f"{o['identifier']}.c{digest(urn, 10)}.{who.region}.rds.amazonaws.com"
    port = int(o.get("port") or 5432)
    return {
        "arn": f"arn:aws:rds:{who.region}:{who.account}:db:{o['identifier']}",
        "address": host,
        "endpoint": f"{host}:{port}",
        "port": port,
        "resourceId": "db-" + digest(urn, 26).upper(),
        "status": "available",
    }


def _load_balancer(who: Identity, urn: str, o: Outputs) -> Outputs:
    suffix = f"app/{o['name']}/{digest(urn, 16)}"
    return {
        "arn": f"arn:aws:elasticloadbalancing:{who.region}:{who.account}:loadbalancer/{suffix}",
        "arnSuffix": suffix,
        "dnsName": f"{o['name']}-{int(digest(urn, 8), 16)}.{who.region}.elb.amazonaws.com",
        "zoneId": "Z35SXDOTRQ7X7K",
    }


def _target_group(who: Identity, urn: str, o: Outputs) -> Outputs:
    suffix = f"targetgroup/{o['name']}/{digest(urn, 16)}"
    return {
        "arn": f"arn:aws:elasticloadbalancing:{who.region}:{who.account}:{suffix}",
        "arnSuffix": suffix,
    }


def _listener(who: Identity, urn: str, o: Outputs) -> Outputs:
    lb = str(o.get("loadBalancerArn", ""))
    return {"arn": lb.replace(":loadbalancer/", ":listener/") + "/" + digest(urn, 16)}


def _repository(who: Identity, _urn: str, o: Outputs) -> Outputs:
    return {
        "arn": f"arn:aws:ecr:{who.region}:{who.account}:repository/{o['name']}",
        "registryId": who.account,
        "repositoryUrl": f"{who.account}.dkr.ecr.{who.region}.amazonaws.com/{o['name']}",
    }


def _image(_who: Identity, urn: str, o: Outputs) -> Outputs:
    tags = reveal(o.get("tags") or [])
    repo = str(tags[0]).rsplit(":", 1)[0] if tags else "image"
    sha = "sha256:" + hashlib.sha256(urn.encode()).hexdigest()
    return {"digest": sha, "ref": f"{repo}@{sha}"}


def _task_definition(who: Identity, _urn: str, o: Outputs) -> Outputs:
    family = o["family"]
    arn = f"arn:aws:ecs:{who.region}:{who.account}:task-definition/{family}:1"
    return {"arn": arn, "arnWithoutRevision": arn.rsplit(":", 1)[0], "revision": 1}


def _vpc_endpoint(who: Identity, urn: str, o: Outputs) -> Outputs:
    service = str(o.get("serviceName", "")).rsplit(".", 1)[-1]
    vpce = f"vpce-{digest(urn, 17)}"
    return {
        "arn": f"arn:aws:ec2:{who.region}:{who.account}:vpc-endpoint/{vpce}",
        "dnsEntries": [
            {
                "dnsName": f"{vpce}-{digest(urn, 8)}.{service}.{who.region}.vpce.amazonaws.com",
                "hostedZoneId": "Z7HUB22UULQXV",
            }
        ],
        "networkInterfaceIds": [f"eni-{digest(urn + str(i), 17)}" for i in o.get("subnetIds", [])],
        "state": "available",
    }


def _lambda_function(who: Identity, _urn: str, o: Outputs) -> Outputs:
    arn = f"arn:aws:lambda:{who.region}:{who.account}:function:{o['name']}"
    return {
        "arn": arn,
        "qualifiedArn": f"{arn}:$LATEST",
        "invokeArn": f"arn:aws:apigateway:{who.region}:lambda:path/2015-03-31/functions/{arn}"
        "/invocations",
        "version": "$LATEST",
    }


def _secret_version(_who: Identity, urn: str, o: Outputs) -> Outputs:
    return {"versionId": digest(urn, 8) + "-" + digest(urn + "v", 4)}


def _random_password(_who: Identity, urn: str, o: Outputs) -> Outputs:
    length = int(o.get("length") or 32)
    value = (hashlib.sha256(("password" + urn).encode()).hexdigest() * 4)[:length]
    return {"result": secret(value)}


def _random_id(_who: Identity, urn: str, o: Outputs) -> Outputs:
    raw = hashlib.sha256(urn.encode()).digest()[: int(o.get("byteLength") or 4)]
    return {
        "hex": raw.hex(),
        "dec": str(int.from_bytes(raw, "big")),
        "b64Std": base64.b64encode(raw).decode(),
        "b64Url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }


def _email_identity(who: Identity, urn: str, o: Outputs) -> Outputs:
    tokens = [digest(urn + str(i), 32) for i in range(3)]
    attrs = dict(reveal(o.get("dkimSigningAttributes") or {}))
    attrs.update({"tokens": tokens, "status": "PENDING", "signingAttributesOrigin": "AWS_SES"})
    return {
        "arn": f"arn:aws:ses:{who.region}:{who.account}:identity/{o['emailIdentity']}",
        "dkimSigningAttributes": attrs,
        "identityType": "DOMAIN",
        "verifiedForSendingStatus": False,
    }


def _eip(_who: Identity, urn: str, o: Outputs) -> Outputs:
    n = int(digest(urn, 4), 16)
    return {"publicIp": f"198.51.100.{n % 254 + 1}", "allocationId": "eipalloc-" + digest(urn, 17)}


def _replication_group(who: Identity, urn: str, o: Outputs) -> Outputs:
    name = o["replicationGroupId"]
    host = f"{name}.{digest(urn, 6)}.ng.0001.{who.region[:4]}.cache.amazonaws.com"
    return {
        "arn": f"arn:aws:elasticache:{who.region}:{who.account}:replicationgroup:{name}",
        "primaryEndpointAddress": "master." + host,
        "readerEndpointAddress": "replica." + host,
        "memberClusters": [
            f"{name}-{i + 1:03d}" for i in range(int(o.get("numCacheClusters") or 1))
        ],
    }


def _kms_key(who: Identity, urn: str, o: Outputs) -> Outputs:
    h = digest(urn, 32)
    key_id = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
    return {"keyId": key_id, "arn": f"arn:aws:kms:{who.region}:{who.account}:key/{key_id}"}


def _eks_cluster(who: Identity, urn: str, o: Outputs) -> Outputs:
    name = o["name"]
    vpc = dict(reveal(o.get("vpcConfig") or {}))
    vpc["clusterSecurityGroupId"] = "sg-" + digest(urn + "cluster-sg", 17)
    ca = base64.b64encode(f"offline certificate authority of {name}".encode()).decode()
    return {
        "arn": f"arn:aws:eks:{who.region}:{who.account}:cluster/{name}",
        "endpoint": f"https://{digest(urn, 32).upper()}.gr7.{who.region}.eks.amazonaws.com",
        "certificateAuthority": {"data": ca},
        "vpcConfig": vpc,
        "platformVersion": "eks.1",
        "status": "ACTIVE",
    }


def _node_group(who: Identity, urn: str, o: Outputs) -> Outputs:
    name = o["nodeGroupName"]
    return {
        "arn": f"arn:aws:eks:{who.region}:{who.account}:nodegroup/{o['clusterName']}/{name}",
        "resources": [{"autoscalingGroups": [{"name": f"eks-{name}-{digest(urn, 8)}"}]}],
        "status": "ACTIVE",
    }


def _launch_template(who: Identity, urn: str, o: Outputs) -> Outputs:
    return {"latestVersion": 1, "defaultVersion": 1}


def _bucket(who: Identity, _urn: str, o: Outputs) -> Outputs:
    return {
        "arn": f"arn:aws:s3:::{o['bucket']}",
        "bucketDomainName": f"{o['bucket']}.s3.amazonaws.com",
        "region": who.region,
    }


def _uuid(urn: str) -> str:
    h = digest(urn, 32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _msk_cluster(who: Identity, urn: str, o: Outputs) -> Outputs:
    """MSK's ARN (`cluster/<name>/<uuid>-<n>`) and one broker DNS name per broker, on the
    listener of each client authentication the cluster enables (9098 for IAM)."""
    name = o["clusterName"]
    brokers = int(o.get("numberOfBrokerNodes") or 2)
    tag = digest(urn, 6)

    def listener(port: int) -> str:
        return ",".join(
            f"b-{n}.{name}.{tag}.c2.kafka.{who.region}.amazonaws.com:{port}"
            for n in range(1, brokers + 1)
        )

    sasl = dict(reveal(o.get("clientAuthentication") or {}).get("sasl") or {})
    return {
        "arn": f"arn:aws:kafka:{who.region}:{who.account}:cluster/{name}/{_uuid(urn)}-2",
        "bootstrapBrokersSaslIam": listener(9098) if sasl.get("iam") else "",
        "bootstrapBrokersSaslScram": listener(9096) if sasl.get("scram") else "",
        "currentVersion": "K" + digest(urn + "v", 13).upper(),
        "clusterUuid": _uuid(urn) + "-2",
    }


def _msk_configuration(who: Identity, urn: str, o: Outputs) -> Outputs:
    arn = f"arn:aws:kafka:{who.region}:{who.account}:configuration/{o['name']}/{_uuid(urn)}-2"
    return {"arn": arn, "latestRevision": 1}


def _msk_topic(_who: Identity, _urn: str, o: Outputs) -> Outputs:
    """`topic/<cluster name>/<cluster uuid>/<topic>`, as MSK's topic API names it."""
    cluster = str(o.get("clusterArn", ""))
    return {"arn": cluster.replace(":cluster/", ":topic/", 1) + "/" + str(o.get("name"))}


# What AWS adds to each type's inputs (ARNs, endpoints, generated values); the ids and
# names come from the registry (policies/resource_types.py).
OUTPUTS: dict[str, Extra] = {
    t.VPC: _arn("ec2", "vpc/{id}"),
    t.SUBNET: _arn("ec2", "subnet/{id}"),
    t.SECURITY_GROUP: _arn("ec2", "security-group/{id}"),
    t.EIP: _eip,
    t.LOG_GROUP: _arn("logs", "log-group:{name}"),
    t.WAF_ACL: _arn("wafv2", "regional/webacl/{name}/{id}"),
    t.IAM_ROLE: _arn("iam", "role/{name}", global_=True),
    t.RDS_SUBNET_GROUP: _arn("rds", "subgrp:{name}"),
    t.RDS_PARAMETER_GROUP: _arn("rds", "pg:{name}"),
    t.RDS_INSTANCE: _rds_instance,
    t.SECRET: _arn("secretsmanager", "secret:{name}-AbCdEf"),
    t.SECRET_VERSION: _secret_version,
    t.VPC_ENDPOINT: _vpc_endpoint,
    t.LAMBDA_FUNCTION: _lambda_function,
    t.ECR_REPOSITORY: _repository,
    t.DOCKER_IMAGE: _image,
    t.ECS_CLUSTER: _arn("ecs", "cluster/{name}"),
    t.TASK_DEFINITION: _task_definition,
    t.ECS_SERVICE: _arn("ecs", "service/{name}"),
    t.LOAD_BALANCER: _load_balancer,
    t.TARGET_GROUP: _target_group,
    t.LISTENER: _listener,
    t.BUCKET: _bucket,
    t.EKS_CLUSTER: _eks_cluster,
    t.EKS_NODE_GROUP: _node_group,
    t.LAUNCH_TEMPLATE: _launch_template,
    t.EMAIL_IDENTITY: _email_identity,
    t.CONFIGURATION_SET: _arn("ses", "configuration-set/{configurationSetName}"),
    t.CACHE_SUBNET_GROUP: _arn("elasticache", "subnetgroup:{name}"),
    t.REPLICATION_GROUP: _replication_group,
    t.SCALING_TARGET: _arn("application-autoscaling", "scalable-target/{resourceId}"),
    t.SCALING_POLICY: _arn("autoscaling", "scalingPolicy:{name}"),
    t.KMS_KEY: _kms_key,
    t.MSK_CLUSTER: _msk_cluster,
    t.MSK_CONFIGURATION: _msk_configuration,
    t.MSK_TOPIC: _msk_topic,
    t.SNS_TOPIC: _arn("sns", "{name}"),
    t.RANDOM_PASSWORD: _random_password,
    t.RANDOM_ID: _random_id,
}


def kind_of(type_: str) -> ResourceType:
    """The registry's entry; unknown types (and known ones without an id rule) still get a
    stable id: `<type>-<hex>`."""
    known = TYPES.get(type_)
    if known is not None and known.id is not None:
        return known
    short = type_.rsplit(":", 1)[-1].lower()
    return ResourceType(type_, f"{short}-")


class EchoBackend:
    """Answers every registration from its inputs; the same program gives the same ids."""

    def __init__(self, region: str, account: str = "123456789012") -> None:
        self.identity = Identity(account=account, region=region)

    def create(
        self, urn: str, type_: str, name: str, inputs: dict[str, Any], custom: bool
    ) -> tuple[str | None, dict[str, Any]]:
        if not custom:
            return None, {}
        kind = kind_of(type_)
        assert kind.id is not None
        outputs = dict(inputs)
        if kind.name_key and not outputs.get(kind.name_key):
            outputs[kind.name_key] = self.autoname(name, urn, kind, outputs.get("namePrefix"))
        id_ = kind.id + digest(urn, 17) if kind.id.endswith("-") else ""
        outputs["id"] = id_
        extra = OUTPUTS.get(type_)
        if extra is not None:
            outputs.update(extra(self.identity, urn, outputs))
        if kind.id.startswith("@"):
            id_ = str(reveal(outputs[kind.id[1:]])) + kind.id_suffix
        outputs.pop("id", None)
        return id_, outputs

    def invoke(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        return answer(self.identity, token, args)

    @staticmethod
    def autoname(name: str, urn: str, kind: ResourceType, prefix: str | None = None) -> str:
        """Pulumi autonaming: `<logical name>-<7 random chars>`, cut to the type's limit; with
        a `namePrefix`, the prefix and a random suffix, as the provider does."""
        if prefix:
            return prefix + digest(urn, 26)
        suffix = "-" + digest(urn, 7)
        base = name.lower() if kind.lower else name
        return base[: kind.max_name - len(suffix)] + suffix
