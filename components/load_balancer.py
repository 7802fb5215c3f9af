"""The public entry point: an ALB in the public subnets, with its access-log bucket."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.firewall import SecurityGroup

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclass(frozen=True)
class Target:
    """One target group behind the listeners and its share of the requests."""

    name: str
    """Suffix of the group's logical name; `targets` is the phase-2 group (ECS tasks)."""
    port: int
    target_type: str
    """`ip` for Fargate tasks; `instance` for cluster nodes, on the API's NodePort."""
    weight: int = 1
    """Relative share (0-999). With one target the listener forwards plainly."""


@dataclass
class LoadBalancerArgs:
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    """Public subnets: the ALB is the only thing the internet may reach."""
    targets: Sequence[Target]
    health_check_path: str
    certificate_arn: str | None
    """With a certificate: HTTPS on 443 and HTTP redirecting to it. Without: plain HTTP."""
    deletion_protection: bool
    log_retention_days: int
    protect: bool
    """Protects the access-log bucket, which holds data."""
    security_group_tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags on the security group (the topology node it is, whom it admits)."""
    depends_on: Sequence[pulumi.Resource] = ()
    """What makes the public subnets public (the VPC's internet gateway and routes): AWS
    refuses an internet-facing ALB in a VPC whose gateway is not attached yet."""


class LoadBalancer(pulumi.ComponentResource):
    """An internet-facing ALB forwarding to its target groups, weighted when there are two
    (the cutover from ECS to the cluster moves the weights, nothing else).

    Its security group admits 80 and 443 from anywhere and nothing else; it
    drops invalid headers and writes access logs to an encrypted, private
    bucket that expires old logs.
    """

    alb: aws.lb.LoadBalancer
    target_groups: dict[str, aws.lb.TargetGroup]
    """By `Target.name`."""
    security_group: SecurityGroup
    listeners: list[aws.lb.Listener]
    log_bucket: aws.s3.Bucket

    def __init__(
        self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("coldreach:edge:LoadBalancer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self._https = args.certificate_arn is not None

        self.security_group = SecurityGroup(
            f"{name}-sg",
            f"{name}: public HTTP and HTTPS",
            args.vpc_id,
            self,
            args.security_group_tags,
        )
        self.security_group.allow_from_internet(443, "HTTPS from the internet")
        self.security_group.allow_from_internet(
            80, "HTTP from the internet (redirected to HTTPS when a certificate is set)"
        )

        self.log_bucket = self._log_bucket(name, args)
        self.alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=False,
            subnets=list(args.subnet_ids),
            security_groups=[self.security_group.id],
            drop_invalid_header_fields=True,
            desync_mitigation_mode="defensive",
            enable_deletion_protection=args.deletion_protection,
            access_logs=aws.lb.LoadBalancerAccessLogsArgs(
                bucket=self.log_bucket.bucket, prefix="alb", enabled=True
            ),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self._log_policy, *args.depends_on]
            ),
        )
        self.target_groups = {
            target.name: aws.lb.TargetGroup(
                f"{name}-{target.name}",
                port=target.port,
                protocol="HTTP",
                target_type=target.target_type,
                vpc_id=args.vpc_id,
                deregistration_delay=30,
                health_check=aws.lb.TargetGroupHealthCheckArgs(
                    path=args.health_check_path,
                    matcher="200",
                    interval=15,
                    healthy_threshold=2,
                    unhealthy_threshold=3,
                ),
                opts=child,
            )
            for target in args.targets
        }
        self.listeners = self._listeners(name, args)

        self.register_outputs(
            {
                "dns_name": self.alb.dns_name,
                "url": self.url,
                "security_group_id": self.security_group.id,
                "log_bucket": self.log_bucket.bucket,
            }
        )

    @property
    def url(self) -> pulumi.Output[str]:
        scheme = "https" if self._https else "http"
        return self.alb.dns_name.apply(lambda dns: f"{scheme}://{dns}")

    def _listeners(self, name: str, args: LoadBalancerArgs) -> list[aws.lb.Listener]:
        child = pulumi.ResourceOptions(parent=self)
        forward = self._forward(args.targets)
        if args.certificate_arn is None:
            return [
                aws.lb.Listener(
                    f"{name}-http",
                    load_balancer_arn=self.alb.arn,
                    port=80,
                    protocol="HTTP",
                    default_actions=[forward],
                    opts=child,
                )
            ]
        https = aws.lb.Listener(
            f"{name}-https",
            load_balancer_arn=self.alb.arn,
            port=443,
            protocol="HTTPS",
            ssl_policy=TLS_POLICY,
            certificate_arn=args.certificate_arn,
            default_actions=[forward],
            opts=child,
        )
        redirect = aws.lb.Listener(
            f"{name}-http",
            load_balancer_arn=self.alb.arn,
            port=80,
            protocol="HTTP",
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(
                    type="redirect",
                    redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                        protocol="HTTPS", port="443", status_code="HTTP_301"
                    ),
                )
            ],
            opts=child,
        )
        return [https, redirect]

    def _forward(self, targets: Sequence[Target]) -> aws.lb.ListenerDefaultActionArgs:
        if len(targets) == 1:
            (only,) = targets
            return aws.lb.ListenerDefaultActionArgs(
                type="forward", target_group_arn=self.target_groups[only.name].arn
            )
        # No stickiness: a weight change moves new requests at once, and both platforms
        # serve the same API from the same databases.
        return aws.lb.ListenerDefaultActionArgs(
            type="forward",
            forward=aws.lb.ListenerDefaultActionForwardArgs(
                target_groups=[
                    aws.lb.ListenerDefaultActionForwardTargetGroupArgs(
                        arn=self.target_groups[t.name].arn, weight=t.weight
                    )
                    for t in targets
                ]
            ),
        )

    def _log_bucket(self, name: str, args: LoadBalancerArgs) -> aws.s3.Bucket:
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(
            f"{name}-access-logs",
            force_destroy=not args.protect,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        # S3 answers concurrent changes to one bucket's settings with "conflicting
        # conditional operation", so each setting waits for the one before.
        block = aws.s3.BucketPublicAccessBlock(
            f"{name}-access-logs",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        ownership = aws.s3.BucketOwnershipControls(
            f"{name}-access-logs",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[block]),
        )
        # ALB log delivery supports SSE-S3 only, not SSE-KMS.
        encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-access-logs",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="AES256"
                    )
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ownership]),
        )
        lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-access-logs",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-access-logs",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=args.log_retention_days
                    ),
                    # Parts of an upload that never completed are stored (and billed)
                    # until aborted; expiration does not remove them.
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=7
                    ),
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[encryption]),
        )
        # Regions older than August 2022 deliver ALB logs from a regional ELB
        # account; the invoke returns the right one for the stack's region.
        elb_account = aws.elb.get_service_account(opts=pulumi.InvokeOptions(parent=self))
        self._log_policy = aws.s3.BucketPolicy(
            f"{name}-access-logs",
            bucket=bucket.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "AlbLogDelivery",
                            "Effect": "Allow",
                            "Principal": {"AWS": elb_account.arn},
                            "Action": "s3:PutObject",
                            "Resource": pulumi.Output.concat(bucket.arn, "/alb/*"),
                        },
                        {
                            "Sid": "DenyInsecureTransport",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [bucket.arn, pulumi.Output.concat(bucket.arn, "/*")],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        },
                    ],
                }
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[lifecycle]),
        )
        return bucket
