"""Choices a first real `pulumi up` depends on that no emulator checks."""

from __future__ import annotations

from coldreach.runtime import Deployment
from coldreach.runtime.invokes import ZONE_IDS
from components.network import CONSTRAINED_ZONE_IDS


def test_subnets_avoid_the_zone_without_newer_instance_types(program) -> None:
    """us-east-1b is use1-az3 in the offline account, as in some real ones."""
    assert ZONE_IDS["us-east-1"][1] in CONSTRAINED_ZONE_IDS
    for stack in ("dev", "prod"):
        d: Deployment = program(stack)
        zones = {s.get("availabilityZone") for s in d.of_type("aws:ec2/subnet:Subnet")}
        assert zones == {"us-east-1a", "us-east-1c"}


def test_access_logs_abort_incomplete_uploads(dev: Deployment) -> None:
    [lifecycle] = dev.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    [rule] = lifecycle.get("rules")
    assert rule["status"] == "Enabled" and rule["expiration"]["days"] > 0
    assert rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 7
