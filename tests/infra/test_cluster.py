"""Phase 3's EKS cluster, read from the evaluated program's graph: the control plane's
hardening, the node group's, the add-ons and their order, who may administer it, and the
Kubernetes provider's credentials."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from deployment_helpers import CERT

from coldreach import policy_eval
from coldreach.evaluation import evaluate_stack
from coldreach.runtime import Deployment, ProgramError, Resource
from components.eks.addons import EBS_CSI
from components.eks.cluster import ADMIN_POLICY, LOG_TYPES
from infra import phases
from infra.config import ConfigError, parse
from policies.cluster import LOG_TYPES as policy_log_types

CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ADDON = "aws:eks/addon:Addon"
ACCESS_POLICY = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
RUNNERS = "203.0.113.0/24,198.51.100.7/32"
EKS_RULES = {"K1a", "K1b", "K2", "K3", "K4a", "K4b", "K5", "K6"}


@pytest.fixture(scope="module")
def staging3(program: Callable[..., Deployment]) -> Deployment:
    return program("staging", 3)


@pytest.fixture(scope="module")
def prod3(program: Callable[..., Deployment]) -> Deployment:
    return program("prod", 3)


def only(d: Deployment, type_: str) -> Resource:
    (found,) = d.of_type(type_)
    return found


def addon(d: Deployment, name: str) -> Resource:
    (found,) = [a for a in d.of_type(ADDON) if a.get("addonName") == name]
    return found


# --- the control plane ---------------------------------------------------------------------


def test_the_api_endpoint_is_private_unless_runner_networks_are_configured(
    staging3: Deployment, program: Callable[..., Deployment]
) -> None:
    vpc = only(staging3, CLUSTER).get("vpcConfig")
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in vpc

    opened = only(program("staging", 3, eksPublicAccessCidrs=RUNNERS), CLUSTER).get("vpcConfig")
    assert opened["endpointPublicAccess"] is True
    assert opened["publicAccessCidrs"] == RUNNERS.split(",")


@pytest.mark.parametrize("cidrs", ["0.0.0.0/0", "10.0.0.0/8", "203.0.113.0/24,0.0.0.0/0"])
def test_config_refuses_an_endpoint_open_to_the_internet(cidrs: str) -> None:
    get = {"phase": "3", "dbInstanceClass": "db.t3.medium", "eksPublicAccessCidrs": cidrs}.get
    with pytest.raises(ConfigError, match="eksPublicAccessCidrs"):
        parse("staging", get, "us-east-1")


def test_secrets_are_sealed_with_the_stacks_own_rotating_key(staging3: Deployment) -> None:
    cluster = only(staging3, CLUSTER)
    (encryption,) = [cluster.get("encryptionConfig")]
    assert encryption["resources"] == ["secrets"]
    key = staging3.resolve(encryption["provider"]["keyArn"])
    assert key.type == "aws:kms/key:Key"
    assert key.get("enableKeyRotation") is True
    assert key.protect is True
    # The cluster's role may use exactly that key.
    role = staging3.resolve(cluster.get("roleArn"))
    (kms,) = [
        p
        for p in staging3.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.get("role") == role.id and "kms:Decrypt" in p.get("policy")
    ]
    (statement,) = json.loads(kms.get("policy"))["Statement"]
    assert statement["Resource"] == [key.out("arn")]


def test_every_control_plane_log_type_goes_to_a_log_group_with_retention(
    staging3: Deployment,
) -> None:
    cluster = only(staging3, CLUSTER)
    assert sorted(cluster.get("enabledClusterLogTypes")) == sorted(LOG_TYPES)
    # The program, the pack and verify name the same five.
    assert set(LOG_TYPES) == set(policy_log_types) and len(LOG_TYPES) == 5
    group = staging3.named("eks-control-plane")
    assert group.get("name") == f"/aws/eks/{cluster.get('name')}/cluster"
    assert group.get("retentionInDays") == 30
    # Created first: otherwise EKS creates it, with no retention.
    assert group.urn in cluster.dependencies


def test_creation_time_choices_are_fixed_and_the_cluster_is_protected(
    staging3: Deployment, program: Callable[..., Deployment]
) -> None:
    cluster = only(staging3, CLUSTER)
    assert cluster.get("bootstrapSelfManagedAddons") is False
    assert cluster.get("accessConfig") == {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": False,
    }
    assert cluster.protect is True
    assert cluster.get("deletionProtection") is True
    throwaway = only(program("staging", 3, ephemeral="true"), CLUSTER)
    assert throwaway.protect is False


def test_version_in_standard_support_and_upgrade_policy_per_stack(
    staging3: Deployment, prod3: Deployment
) -> None:
    assert only(staging3, CLUSTER).get("version") == "1.35"
    assert only(staging3, CLUSTER).get("upgradePolicy") == {"supportType": "STANDARD"}
    assert only(prod3, CLUSTER).get("upgradePolicy") == {"supportType": "EXTENDED"}


def test_the_deploying_role_is_cluster_admin_through_an_access_entry(
    staging3: Deployment, program: Callable[..., Deployment]
) -> None:
    (association,) = staging3.of_type(ACCESS_POLICY)
    assert association.get("policyArn") == ADMIN_POLICY
    assert association.get("accessScope") == {"type": "cluster"}
    # Offline the deploying identity is a plain user; its session context is itself.
    assert association.get("principalArn") == "arn:aws:iam::123456789012:user/offline"
    (entry,) = staging3.of_type("aws:eks/accessEntry:AccessEntry")
    assert entry.urn in association.dependencies

    roles = "arn:aws:iam::123456789012:role/deploy,arn:aws:iam::123456789012:role/break-glass"
    configured = program("staging", 3, eksAdminRoleArns=roles)
    assert sorted(a.get("principalArn") for a in configured.of_type(ACCESS_POLICY)) == sorted(
        roles.split(",")
    )


# --- add-ons ---------------------------------------------------------------------------------


def test_vpc_cni_enforces_network_policies_and_gives_pods_their_own_groups(
    staging3: Deployment,
) -> None:
    config = json.loads(addon(staging3, "vpc-cni").get("configurationValues"))
    assert config["enableNetworkPolicy"] == "true"
    assert config["env"]["ENABLE_POD_ENI"] == "true"
    # Pods with their own group reach the Pod Identity agent only in standard mode.
    assert config["env"]["POD_SECURITY_GROUP_ENFORCING_MODE"] == "standard"
    assert config["init"]["env"]["DISABLE_TCP_EARLY_DEMUX"] == "true"
    # Trunk ENIs are created by the control plane's VPC resource controller.
    role = staging3.resolve(only(staging3, CLUSTER).get("roleArn"))
    attached = [
        a.get("policyArn")
        for a in staging3.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.get("role") == role.id
    ]
    assert "arn:aws:iam::aws:policy/AmazonEKSVPCResourceController" in attached


def test_add_ons_come_in_the_order_nodes_need_them(staging3: Deployment) -> None:
    names = sorted(a.get("addonName") for a in staging3.of_type(ADDON))
    assert names == sorted(
        ["vpc-cni", "kube-proxy", "eks-pod-identity-agent", "coredns", "metrics-server"]
    )
    group = only(staging3, NODE_GROUP)
    for before in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent"):
        assert addon(staging3, before).urn in group.dependencies
    for after in ("coredns", "metrics-server"):
        assert group.urn in addon(staging3, after).dependencies


def test_a_stack_whose_tracing_keeps_a_volume_gets_the_ebs_csi_driver(
    staging3: Deployment, prod3: Deployment
) -> None:
    """Jaeger's Badger claim (prod) stays Pending unless the EBS CSI driver runs."""
    assert [a for a in staging3.of_type(ADDON) if a.get("addonName") == EBS_CSI] == []
    driver = addon(prod3, EBS_CSI)
    assert only(prod3, NODE_GROUP).urn in driver.dependencies
    [association] = driver.get("podIdentityAssociations")
    assert association["serviceAccount"] == "ebs-csi-controller-sa"
    role = next(r for r in prod3.of_type("aws:iam/role:Role")
                if r.out("arn") == association["roleArn"])  # fmt: skip
    trust = json.loads(role.get("assumeRolePolicy"))["Statement"][0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    attached = [a.get("policyArn")
                for a in prod3.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                if a.get("role") == role.id]  # fmt: skip
    assert attached == ["arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"]
    # The workloads (the claim among them) wait for it through the provider.
    provider = prod3.of_type("pulumi:providers:kubernetes")[0]
    assert driver.urn in provider.dependencies


# --- nodes -----------------------------------------------------------------------------------


def test_nodes_require_imdsv2_with_one_hop_and_encrypted_roots(staging3: Deployment) -> None:
    group = only(staging3, NODE_GROUP)
    template = staging3.by_id(group.get("launchTemplate")["id"])
    assert template.type == LAUNCH_TEMPLATE
    assert template.get("metadataOptions") == {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
    }
    (root,) = template.get("blockDeviceMappings")
    assert root["ebs"]["encrypted"] == "true" and root["ebs"]["volumeType"] == "gp3"
    assert "remoteAccess" not in group.inputs


def test_nodes_run_in_the_private_subnets_on_a_family_with_trunk_enis(
    staging3: Deployment,
) -> None:
    group = only(staging3, NODE_GROUP)
    for subnet_id in group.get("subnetIds"):
        assert staging3.by_id(subnet_id).get("mapPublicIpOnLaunch") is not True
        assert "private" in staging3.by_id(subnet_id).name
    (kind,) = group.get("instanceTypes")
    assert not kind.startswith("t")
    assert group.get("scalingConfig") == {"desiredSize": 2, "minSize": 2, "maxSize": 4}


@pytest.mark.parametrize("kind", ["t3.large", "t4g.medium"])
def test_config_refuses_a_t_family_node(kind: str) -> None:
    get = {"phase": "3", "dbInstanceClass": "db.t3.medium", "eksNodeInstanceType": kind}.get
    with pytest.raises(ConfigError, match="security groups for pods"):
        parse("staging", get, "us-east-1")


def test_node_architecture_matches_the_image_platform(
    staging3: Deployment, program: Callable[..., Deployment]
) -> None:
    (image,) = staging3.of_type("docker-build:index:Image")
    assert image.get("platforms") == ["linux/amd64"]
    assert only(staging3, NODE_GROUP).get("amiType") == "AL2023_x86_64_STANDARD"
    with pytest.raises(ProgramError, match="app image is built for x86_64"):
        program("staging", 3, eksNodeInstanceType="m6g.large")


# --- the Kubernetes provider -----------------------------------------------------------------


def test_the_provider_fetches_a_fresh_token_per_call(staging3: Deployment) -> None:
    (provider,) = staging3.of_type("pulumi:providers:kubernetes")
    kubeconfig = json.loads(provider.get("kubeconfig"))
    cluster = only(staging3, CLUSTER)
    assert kubeconfig["clusters"][0]["cluster"]["server"] == cluster.out("endpoint")
    (user,) = kubeconfig["users"]
    assert "token" not in user["user"]
    exec_ = user["user"]["exec"]
    assert exec_["command"] == "aws"
    assert exec_["args"][:4] == ["eks", "get-token", "--cluster-name", cluster.get("name")]
    assert exec_["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    # Workloads wait for admin access and a working DNS before the provider is used.
    assert addon(staging3, "coredns").urn in provider.dependencies
    assert staging3.of_type(ACCESS_POLICY)[0].urn in provider.dependencies


def test_outputs_name_the_cluster(staging3: Deployment) -> None:
    cluster = only(staging3, CLUSTER)
    assert staging3.output("eks_cluster_name") == cluster.get("name")
    assert staging3.output("eks_endpoint") == cluster.out("endpoint")


# --- the policy pack over the whole phase-3 graph ---------------------------------------------


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_phase_3_has_no_mandatory_violation(program: Callable[..., Deployment], stack: str) -> None:
    overrides = {"certificateArn": CERT} if stack == "prod" else {}
    found = policy_eval.evaluate(program(stack, 3, **overrides))
    assert [(v.rule, v.resource, v.message) for v in found if v.mandatory] == []
    cluster_rules = {v.rule for v in found if v.rule in EKS_RULES}
    # Private endpoint everywhere by default: not even the advisory K1b fires.
    assert cluster_rules == set()


def test_a_runner_restricted_public_endpoint_is_advisory_only(
    program: Callable[..., Deployment],
) -> None:
    found = policy_eval.evaluate(program("staging", 3, eksPublicAccessCidrs=RUNNERS))
    assert [v.rule for v in found if v.rule in EKS_RULES] == ["K1b"]
    assert not any(v.mandatory for v in found if v.rule in EKS_RULES)


def test_add_ons_follow_the_cluster_version(program: Callable[..., Deployment]) -> None:
    """Pinned to the default build for the configured Kubernetes version, so an upgrade of
    the control plane moves every add-on with it in the same deploy."""
    before = {
        a.get("addonName"): a.get("addonVersion") for a in program("staging", 3).of_type(ADDON)
    }
    after = {
        a.get("addonName"): a.get("addonVersion")
        for a in program("staging", 3, eksVersion="1.34").of_type(ADDON)
    }
    assert set(before) == set(after)
    assert all(before[name] and before[name] != after[name] for name in before)


def test_phase_3_builds_everything_it_declares(
    staging3: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert phases.of(3).not_built() == [] and phases.of(3).retired().not_built() == []
    assert not [m for _, m in staging3.messages if "not built" in m or "does not build" in m]
    # Should a switch ever be declared before its layer exists, the program refuses.
    monkeypatch.setattr(phases.Features, "not_built", lambda self: ["tracing"])
    with pytest.raises(ProgramError, match="needs tracing, which this program does not build"):
        evaluate_stack("staging", 3)
