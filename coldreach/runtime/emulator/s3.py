"""S3 buckets and their settings."""

from __future__ import annotations

from typing import Any

from coldreach.runtime.emulator.backend import MotoBackend, handles
from coldreach.runtime.emulator.call import Call, Outputs, aws_tags, drop_none, pascal
from policies import tokens as t


@handles(t.BUCKET)
def bucket(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    s3 = b.client("s3")
    name = b.name(c)
    kwargs: dict[str, Any] = {"Bucket": name}
    if b.region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": b.region}
    s3.create_bucket(**kwargs)
    if c.get("tags"):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": aws_tags(c.get("tags"))})
    return name, {
        "arn": f"arn:aws:s3:::{name}",
        "bucketDomainName": f"{name}.s3.amazonaws.com",
        "bucketRegionalDomainName": f"{name}.s3.{b.region}.amazonaws.com",
        "region": b.region,
        "hostedZoneId": "Z3AQBSTGFYJSTF",
    }


@handles(t.BUCKET_PUBLIC_ACCESS_BLOCK)
def bucket_public_access(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    bucket = c.get("bucket")
    b.client("s3").put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": bool(c.get("blockPublicAcls")),
            "BlockPublicPolicy": bool(c.get("blockPublicPolicy")),
            "IgnorePublicAcls": bool(c.get("ignorePublicAcls")),
            "RestrictPublicBuckets": bool(c.get("restrictPublicBuckets")),
        },
    )
    return bucket, {}


@handles(t.BUCKET_OWNERSHIP)
def bucket_ownership(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    bucket = c.get("bucket")
    b.client("s3").put_bucket_ownership_controls(
        Bucket=bucket,
        OwnershipControls={"Rules": [{"ObjectOwnership": c.get("rule")["objectOwnership"]}]},
    )
    return bucket, {}


@handles(t.BUCKET_ENCRYPTION)
def bucket_encryption(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    bucket = c.get("bucket")
    b.client("s3").put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                drop_none(
                    {
                        "ApplyServerSideEncryptionByDefault": pascal(
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


@handles(t.BUCKET_LIFECYCLE)
def bucket_lifecycle(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    bucket = c.get("bucket")
    rules = []
    for r in c.get("rules", []):
        rule: dict[str, Any] = {"ID": r["id"], "Status": r["status"]}
        flt = r.get("filter") or {}
        rule["Filter"] = {"Prefix": flt.get("prefix", "")}
        if r.get("expiration"):
            rule["Expiration"] = pascal(r["expiration"])
        rules.append(rule)
    b.client("s3").put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": rules}
    )
    return bucket, {}


@handles(t.BUCKET_POLICY)
def bucket_policy(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    bucket = c.get("bucket")
    b.client("s3").put_bucket_policy(Bucket=bucket, Policy=c.get("policy"))
    return bucket, {}
