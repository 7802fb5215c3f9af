"""Phase 3's cluster deployed into moto: what moto holds (the EKS cluster, the node group,
its launch template) is read back with boto3; what it cannot hold (add-ons, access entries,
the node group's target-group attachment, the Kubernetes provider and objects) is rendered,
not deployed, and listed as such."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto_helpers import Deployed, deployed, describe, failures

from components.eks.cluster import LOG_TYPES


@pytest.fixture(scope="module")
def staging3() -> Iterator[Deployed]:
    with deployed("staging", 3) as d:
        yield d


def test_the_cluster_exists_private_encrypted_and_logging(staging3: Deployed) -> None:
    name = staging3.outputs["eks_cluster_name"]
    cluster = staging3.client("eks").describe_cluster(name=name)["cluster"]
    assert cluster["version"] == "1.35"
    vpc = cluster["resourcesVpcConfig"]
    assert (vpc["endpointPrivateAccess"], vpc["endpointPublicAccess"]) == (True, False)
    (encryption,) = cluster["encryptionConfig"]
    assert encryption["resources"] == ["secrets"]
    key = staging3.client("kms").describe_key(KeyId=encryption["provider"]["keyArn"])
    assert key["KeyMetadata"]["KeyState"] == "Enabled"
    (logging,) = cluster["logging"]["clusterLogging"]
    assert sorted(logging["types"]) == sorted(LOG_TYPES) and logging["enabled"]
    assert staging3.outputs["eks_endpoint"] == cluster["endpoint"]


def test_the_node_group_starts_from_the_hardened_template(staging3: Deployed) -> None:
    eks = staging3.client("eks")
    name = staging3.outputs["eks_cluster_name"]
    (group_name,) = eks.list_nodegroups(clusterName=name)["nodegroups"]
    group = eks.describe_nodegroup(clusterName=name, nodegroupName=group_name)["nodegroup"]
    assert group["instanceTypes"] == ["m6i.large"]
    assert group["amiType"] == "AL2023_x86_64_STANDARD"
    template = staging3.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=group["launchTemplate"]["id"]
    )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    assert template["MetadataOptions"]["HttpTokens"] == "required"
    assert template["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    assert template["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True


def test_what_moto_cannot_hold_is_rendered_and_listed_not_faked(staging3: Deployed) -> None:
    rendered = {type_ for type_, _ in staging3.backend.rendered}
    assert {
        "aws:eks/addon:Addon",
        "aws:eks/accessEntry:AccessEntry",
        "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
        "aws:autoscaling/attachment:Attachment",
        "pulumi:providers:kubernetes",
        "aws:eks/podIdentityAssociation:PodIdentityAssociation",
        "kubernetes:apps/v1:Deployment",
        "kubernetes:vpcresources.k8s.aws/v1beta1:SecurityGroupPolicy",
    } <= rendered
    created = {type_ for type_, _, _ in staging3.backend.created}
    assert not rendered & created
    # What the workloads hold in AWS is deployed: each pod group, each pod role.
    names = {name for _, name, _ in staging3.backend.created}
    for workload in ("api", "clients", "campaigns", "sender", "tracing"):
        assert f"{workload}-pods" in names, workload
    for workload in ("api", "clients", "campaigns", "sender"):
        assert f"{workload}-pod-role" in names, workload
    # Still in the deployment the program saw, with ids, so the plan graph stays whole.
    addons = staging3.deployment.of_type("aws:eks/addon:Addon")
    assert len(addons) == 5 and all(a.id for a in addons)


def test_the_listener_forwards_by_weight_to_ecs_and_the_cluster(staging3: Deployed) -> None:
    elb = staging3.client("elbv2")
    (lb,) = elb.describe_load_balancers()["LoadBalancers"]
    (listener,) = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    (action,) = listener["DefaultActions"]
    groups = {
        elb.describe_target_groups(TargetGroupArns=[g["TargetGroupArn"]])["TargetGroups"][0][
            "TargetType"
        ]: g["Weight"]
        for g in action["ForwardConfig"]["TargetGroups"]
    }
    # eksTrafficPercent defaults to 0: ECS tasks (ip) take everything, the nodes nothing yet.
    assert groups == {"ip": 100, "instance": 0}


# --- verify: clean, then one misconfiguration at a time ----------------------------------------


def test_verify_passes_the_cluster_checks(staging3: Deployed) -> None:
    findings = [f for f in staging3.verify() if f.check.startswith("eks.")]
    assert failures(findings) == [], describe(findings)
    assert {f.check for f in findings} == {
        "eks.endpoint",
        "eks.secrets_encrypted",
        "eks.logging",
        "eks.nodes_family",
        "eks.nodes_imds",
    }


def test_verify_fails_an_endpoint_opened_to_the_internet(staging3: Deployed) -> None:
    eks = staging3.client("eks")
    name = staging3.outputs["eks_cluster_name"]
    # moto replaces the whole endpoint config where AWS merges it: restate the private side.
    opened = {"endpointPrivateAccess": True, "endpointPublicAccess": True}
    eks.update_cluster_config(
        name=name, resourcesVpcConfig={**opened, "publicAccessCidrs": ["0.0.0.0/0"]}
    )
    try:
        (found,) = failures(staging3.verify(), "eks.endpoint")
        assert "0.0.0.0/0" in found.detail
    finally:
        closed = {"endpointPrivateAccess": True, "endpointPublicAccess": False}
        eks.update_cluster_config(name=name, resourcesVpcConfig=closed)
    assert failures(staging3.verify(), "eks.endpoint") == []


def test_verify_fails_a_node_group_whose_template_allows_two_hops(staging3: Deployed) -> None:
    eks, ec2 = staging3.client("eks"), staging3.client("ec2")
    name = staging3.outputs["eks_cluster_name"]
    (group,) = eks.list_nodegroups(clusterName=name)["nodegroups"]
    good = eks.describe_nodegroup(clusterName=name, nodegroupName=group)["nodegroup"]
    template = good["launchTemplate"]
    # A second group started from a template version with IMDSv2 but two hops (moto cannot
    # move the existing group to a new template version).
    two_hops = {"MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2}}
    version = ec2.create_launch_template_version(
        LaunchTemplateId=template["id"],
        SourceVersion=str(template["version"]),
        LaunchTemplateData=two_hops,
    )["LaunchTemplateVersion"]["VersionNumber"]
    eks.create_nodegroup(
        clusterName=name,
        nodegroupName="two-hops",
        scalingConfig={"minSize": 1, "maxSize": 1, "desiredSize": 1},
        subnets=good["subnets"],
        nodeRole=good["nodeRole"],
        instanceTypes=good["instanceTypes"],
        launchTemplate={"id": template["id"], "version": str(version)},
    )
    try:
        (found,) = failures(staging3.verify(), "eks.nodes_imds")
        assert (found.resource, "hop limit 2" in found.detail) == ("two-hops", True)
    finally:
        eks.delete_nodegroup(clusterName=name, nodegroupName="two-hops")
    assert failures(staging3.verify(), "eks.nodes_imds") == []
