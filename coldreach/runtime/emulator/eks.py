"""EKS clusters and managed node groups, and the EC2 launch template the nodes start from.

moto holds these; it has no add-ons, access entries or Pod Identity associations, and
the node group's Auto Scaling group exists only as a name (so the load balancer's
attachment to it is rendered, not deployed: see `MotoBackend.rendered`).
"""

from __future__ import annotations

from typing import Any

from coldreach.runtime.emulator.backend import MotoBackend, handles
from coldreach.runtime.emulator.call import Call, Outputs, drop_none, pascal
from policies import tokens as t


@handles(t.EKS_CLUSTER)
def cluster(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    name = b.name(c)
    vpc: dict[str, Any] = c.get("vpcConfig", {})
    created = b.client("eks").create_cluster(
        **drop_none(
            {
                "name": name,
                "version": c.get("version"),
                "roleArn": c.get("roleArn"),
                "resourcesVpcConfig": drop_none(
                    {
                        "subnetIds": vpc.get("subnetIds"),
                        "securityGroupIds": vpc.get("securityGroupIds"),
                        "endpointPublicAccess": vpc.get("endpointPublicAccess"),
                        "endpointPrivateAccess": vpc.get("endpointPrivateAccess"),
                        "publicAccessCidrs": vpc.get("publicAccessCidrs"),
                    }
                ),
                "logging": {
                    "clusterLogging": [
                        {"types": c.get("enabledClusterLogTypes", []), "enabled": True}
                    ]
                },
                # The EKS API is camelCase like the engine's inputs.
                "encryptionConfig": [c.get("encryptionConfig")]
                if c.get("encryptionConfig")
                else None,
                "tags": c.get("tags") or None,
            }
        )
    )["cluster"]
    # moto leaves the cluster security group out; EKS creates one in the cluster's VPC.
    subnet = b.client("ec2").describe_subnets(SubnetIds=vpc["subnetIds"][:1])["Subnets"][0]
    group = b.client("ec2").create_security_group(
        GroupName=f"eks-cluster-sg-{name}",
        Description="EKS created security group applied to ENI that is attached to EKS "
        "Control Plane master nodes, as well as any managed workloads.",
        VpcId=subnet["VpcId"],
    )["GroupId"]
    return name, {
        "arn": created["arn"],
        "endpoint": created["endpoint"],
        "certificateAuthority": {"data": created["certificateAuthority"]["data"]},
        "vpcConfig": {**vpc, "clusterSecurityGroupId": group, "vpcId": subnet["VpcId"]},
        "status": created["status"],
        "platformVersion": created.get("platformVersion"),
    }


@handles(t.EKS_NODE_GROUP)
def node_group(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    name = b.name(c)
    template = c.get("launchTemplate")
    created = b.client("eks").create_nodegroup(
        **drop_none(
            {
                "clusterName": c.get("clusterName"),
                "nodegroupName": name,
                "scalingConfig": c.get("scalingConfig"),
                "subnets": c.get("subnetIds"),
                "instanceTypes": c.get("instanceTypes"),
                "amiType": c.get("amiType"),
                "nodeRole": c.get("nodeRoleArn"),
                "capacityType": c.get("capacityType"),
                "version": c.get("version"),
                "launchTemplate": {"id": template["id"], "version": str(template["version"])}
                if template
                else None,
                "updateConfig": c.get("updateConfig"),
                "labels": c.get("labels"),
                "tags": c.get("tags") or None,
            }
        )
    )["nodegroup"]
    asgs = created["resources"]["autoScalingGroups"]
    return name, {
        "arn": created["nodegroupArn"],
        "resources": [{"autoscalingGroups": [{"name": g["name"]} for g in asgs]}],
        "status": created["status"],
    }


@handles(t.LAUNCH_TEMPLATE)
def launch_template(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    name = b.name(c)
    devices = [
        {
            "DeviceName": d["deviceName"],
            "Ebs": drop_none(
                {
                    "VolumeSize": d["ebs"].get("volumeSize"),
                    "VolumeType": d["ebs"].get("volumeType"),
                    # The provider sends these as "true"/"false" strings.
                    "Encrypted": str(d["ebs"].get("encrypted")).lower() == "true",
                    "DeleteOnTermination": str(d["ebs"].get("deleteOnTermination")).lower()
                    == "true",
                }
            ),
        }
        for d in c.get("blockDeviceMappings", [])
    ]
    data = drop_none(
        {
            "MetadataOptions": pascal(c.get("metadataOptions")),
            "BlockDeviceMappings": devices or None,
            "SecurityGroupIds": c.get("vpcSecurityGroupIds"),
        }
    )
    created = b.client("ec2").create_launch_template(
        LaunchTemplateName=name, LaunchTemplateData=data
    )["LaunchTemplate"]
    return created["LaunchTemplateId"], {
        "arn": b.arn("ec2", f"launch-template/{created['LaunchTemplateId']}"),
        "latestVersion": created["LatestVersionNumber"],
        "defaultVersion": created["DefaultVersionNumber"],
    }
