"""Cases of the EKS rules (policies/cluster.py): a compliant example per type, then one
failing example per condition, including the property-missing case. test_resource_rules.py
runs them with every other rule's cases."""

from __future__ import annotations

import json
from typing import Any

from policy_helpers import MISSING, changed

from policies import tokens as t

Case = tuple[str, str, str, dict[str, Any], str | None]

CLUSTER: dict[str, Any] = {
    "name": "eks-1a2b3c4d",
    "roleArn": "arn:aws:iam::123456789012:role/eks-role",
    "version": "1.35",
    "vpcConfig": {
        "subnetIds": ["subnet-1", "subnet-2"],
        "endpointPrivateAccess": True,
        "endpointPublicAccess": False,
    },
    "accessConfig": {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": False,
    },
    "bootstrapSelfManagedAddons": False,
    "encryptionConfig": {
        "resources": ["secrets"],
        "provider": {"keyArn": "arn:aws:kms:us-east-1:123456789012:key/k"},
    },
    "enabledClusterLogTypes": ["api", "audit", "authenticator", "controllerManager", "scheduler"],
}
TEMPLATE: dict[str, Any] = {
    "metadataOptions": {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
    }
}
NODE_GROUP: dict[str, Any] = {
    "clusterName": "eks-1a2b3c4d",
    "instanceTypes": ["m6i.large"],
    "launchTemplate": {"id": "lt-1", "version": "1"},
    "subnetIds": ["subnet-1", "subnet-2"],
}
CNI_CONFIG = {"enableNetworkPolicy": "true", "env": {"ENABLE_POD_ENI": "true"}}
ADDON: dict[str, Any] = {
    "addonName": "vpc-cni",
    "clusterName": "eks-1a2b3c4d",
    "configurationValues": json.dumps(CNI_CONFIG),
}
N: str | None = None


def vpc(**changes: Any) -> dict[str, Any]:
    return changed(CLUSTER["vpcConfig"], **changes)


def cluster(rule: str, label: str, /, *, expect: str | None = N, **changes: Any) -> Case:
    return (rule, label, t.EKS_CLUSTER, changed(CLUSTER, **changes), expect)


def template(rule: str, label: str, /, *, expect: str | None = N, **options: Any) -> Case:
    props = changed(TEMPLATE, metadataOptions=changed(TEMPLATE["metadataOptions"], **options))
    return (rule, label, t.LAUNCH_TEMPLATE, props, expect)


def nodes(rule: str, label: str, /, *, expect: str | None = N, **changes: Any) -> Case:
    return (rule, label, t.EKS_NODE_GROUP, changed(NODE_GROUP, **changes), expect)


def cni(rule: str, label: str, config: Any, /, *, expect: str | None = N) -> Case:
    return (rule, label, t.EKS_ADDON, changed(ADDON, configurationValues=config), expect)


def with_public(*cidrs: str) -> dict[str, Any]:
    return vpc(endpointPublicAccess=True, publicAccessCidrs=list(cidrs))


CASES: list[Case] = [
    # K1a: never open to the internet
    cluster("K1a", "private"),
    cluster("K1a", "runners", vpcConfig=with_public("203.0.113.0/24", "198.51.100.7/32")),
    cluster("K1a", "no-private", vpcConfig=vpc(endpointPrivateAccess=False), expect="Private"),
    cluster(
        "K1a",
        "private-missing",
        vpcConfig=vpc(endpointPrivateAccess=MISSING),
        expect="endpointPrivateAccess",
    ),
    cluster(
        "K1a",
        "public-no-cidrs",
        vpcConfig=vpc(endpointPublicAccess=True),
        expect="opens it to 0.0.0.0/0",
    ),
    cluster(
        "K1a",
        "public-missing",
        vpcConfig=vpc(endpointPublicAccess=MISSING),
        expect="no publicAccessCidrs",
    ),
    cluster("K1a", "world", vpcConfig=with_public("0.0.0.0/0"), expect="admits 0.0.0.0/0"),
    cluster("K1a", "wide", vpcConfig=with_public("10.0.0.0/8"), expect="wider than a /16"),
    # K1b (advisory): private only
    cluster("K1b", "private"),
    cluster("K1b", "public", vpcConfig=with_public("203.0.113.0/24"), expect="public endpoint"),
    cluster("K1b", "missing", vpcConfig=vpc(endpointPublicAccess=MISSING), expect="public"),
    # K2: secrets sealed with KMS
    cluster("K2", "kms"),
    cluster("K2", "missing", encryptionConfig=MISSING, expect="does not cover secrets"),
    cluster(
        "K2",
        "no-key",
        encryptionConfig={"resources": ["secrets"]},
        expect="no KMS key",
    ),
    # K3: every log type
    cluster("K3", "all"),
    cluster("K3", "missing", enabledClusterLogTypes=MISSING, expect="audit"),
    cluster("K3", "audit-only", enabledClusterLogTypes=["audit"], expect="scheduler"),
    # K5: access entries, decided add-ons
    cluster("K5", "api"),
    cluster(
        "K5",
        "config-map",
        accessConfig={
            "authenticationMode": "API_AND_CONFIG_MAP",
            "bootstrapClusterCreatorAdminPermissions": False,
        },
        expect="aws-auth",
    ),
    cluster("K5", "access-missing", accessConfig=MISSING, expect="CONFIG_MAP"),
    cluster(
        "K5",
        "creator-admin",
        accessConfig={"authenticationMode": "API"},
        expect="invisible admin",
    ),
    cluster("K5", "addons-missing", bootstrapSelfManagedAddons=MISSING, expect="unmanaged"),
    cluster("K5", "addons-true", bootstrapSelfManagedAddons=True, expect="unmanaged"),
    # K4a: IMDSv2, one hop
    template("K4a", "one-hop"),
    template("K4a", "optional", httpTokens="optional", expect="not required"),
    template("K4a", "tokens-missing", httpTokens=MISSING, expect="unset, not required"),
    template("K4a", "two-hops", httpPutResponseHopLimit=2, expect="is 2"),
    template("K4a", "hops-missing", httpPutResponseHopLimit=MISSING, expect="unset"),
    ("K4a", "no-options", t.LAUNCH_TEMPLATE, {}, "not required"),
    # K4b: nodes
    nodes("K4b", "m6i"),
    nodes("K4b", "ssh", remoteAccess={"ec2SshKey": "ops"}, expect="SSH"),
    nodes("K4b", "template-missing", launchTemplate=MISSING, expect="no launchTemplate"),
    nodes("K4b", "t3", instanceTypes=["t3.large"], expect="t family"),
    # K6: the VPC CNI
    cni("K6", "enforcing", json.dumps(CNI_CONFIG)),
    ("K6", "other-addon", t.EKS_ADDON, {"addonName": "coredns"}, None),
    cni("K6", "missing", MISSING, expect="enableNetworkPolicy"),
    cni("K6", "no-policy", json.dumps({"env": {"ENABLE_POD_ENI": "true"}}), expect="ignored"),
    cni(
        "K6",
        "no-pod-eni",
        json.dumps({"enableNetworkPolicy": "true"}),
        expect="ENABLE_POD_ENI",
    ),
]
